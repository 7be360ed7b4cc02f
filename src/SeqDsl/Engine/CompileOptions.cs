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
    /// <summary>Receives diagnostic events (kernel choices and fallbacks, pretrained coverage).</summary>
    public Action<string>? Diagnostics { get; init; }

    internal torch.Device TorchDevice()
    {
        try
        {
            var d = torch.device(Device);
            if (d.type == DeviceType.CUDA && !torch.cuda.is_available())
                throw new SeqDslException(ErrorKind.Runtime,
                    $"Device '{Device}' requested but CUDA is not available (this build uses TorchSharp-{(torch.cuda.is_available() ? "cuda" : "cpu")}; build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU).");
            return d;
        }
        catch (ArgumentException e)
        {
            throw new SeqDslException(ErrorKind.Spec, $"Unknown device '{Device}'. Expected: cpu, cuda or cuda:N.", e);
        }
    }
}
