using SeqDsl.Spec;
using TorchSharp;

namespace SeqDsl.Engine;

/// <summary>How a spec becomes a network.</summary>
public sealed record CompileOptions
{
    /// <summary>What the network is fed (vocabulary size or feature count).</summary>
    public InputSpec Input { get; init; } = new();
    /// <summary>Bias layout for cells with <see cref="Bias.Auto"/>. Torch: libtorch's two biases (the default,
    /// because it is what the fused kernels allocate); Keras: one, the second held at zero.</summary>
    public Convention Convention { get; init; } = Convention.Torch;
    /// <summary>cpu or cuda (cuda needs a build with -p:TorchBackend=cuda).</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Seed of the weight initialisation; the same seed gives the same weights.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>Word → index map, needed when an Embed layer loads pretrained vectors.</summary>
    public IReadOnlyDictionary<string, int>? Vocabulary { get; init; }
    /// <summary>Whether kernel Auto may measure GRU and SimpleRnn layers beyond 64 units on this CPU (<see cref="KernelProbe"/>);
    /// false: a choice already kept in the cache is used, else libtorch's kernel (loading a model to use it).</summary>
    public bool MeasureKernels { get; init; } = true;
    /// <summary>Kernels an earlier run took for the layers Auto measures (<see cref="Network.MeasuredKernels"/>: layer index →
    /// Simd, or libtorch's), taken instead of measuring, so that a resumed run continues on the same kernels.</summary>
    public IReadOnlyDictionary<int, Kernel>? KernelChoices { get; init; }
    /// <summary>Receives diagnostic events (kernel choices and fallbacks, pretrained coverage).</summary>
    public Action<string>? Diagnostics { get; init; }

    internal torch.Device TorchDevice()
    {
        try
        {
            var d = torch.device(Device);
            if (d.type == DeviceType.CUDA && !CudaAvailable())
                throw new SeqDslException(ErrorKind.Runtime,
                    $"Device '{Device}' requested but CUDA is not available here (a build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU has it); use --device cpu.");
            return d;
        }
        catch (ArgumentException e)
        {
            throw new SeqDslException(ErrorKind.Spec, $"Unknown device '{Device}'. Expected: cpu, cuda or cuda:N.", e);
        }
        catch (InvalidOperationException e)
        {
            throw new SeqDslException(ErrorKind.Runtime, $"Device '{Device}' could not be initialised here: {e.Message.Split('\n')[0].Trim()}; use --device cpu.", e);
        }
    }

    /// <summary>Whether CUDA can be used; false (not an exception) where the CPU build of libtorch cannot initialise it.</summary>
    internal static bool CudaAvailable()
    {
        try { return torch.cuda.is_available(); }
        catch (InvalidOperationException) { return false; }
    }
}
