using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>Weight initialisers, applied to parameters selected by name.</summary>
public abstract record Init
{
    /// <summary>U(low, high).</summary>
    public sealed record Uniform(double Low, double High) : Init;
    /// <summary>N(mean, std²).</summary>
    public sealed record Normal(double Mean, double Std) : Init;
    /// <summary>Glorot/Xavier uniform (fan-in and fan-out of a 2-D weight).</summary>
    public sealed record Xavier(double Gain = 1.0) : Init;
    /// <summary>Orthogonal (Saxe et al.): the whole matrix, as Keras's <c>orthogonal</c> recurrent initialiser treats its
    /// (H, G·H) recurrent kernel (libtorch's (G·H, H) weight gets orthonormal columns, Keras's orthonormal rows: the same
    /// matrix transposed), so each gate's H × H block is a slice of it, not orthogonal on its own. <paramref name="PerGate"/>
    /// orthogonalises each gate block instead (every block's singular values 1).</summary>
    public sealed record Orthogonal(double Gain = 1.0, bool PerGate = false) : Init;
    /// <summary>Every element set to one value.</summary>
    public sealed record Constant(double Value) : Init;

    internal void Apply(Tensor p, string name)
    {
        using var _ = no_grad();
        switch (this)
        {
            case Uniform u: nn.init.uniform_(p, u.Low, u.High); break;
            case Normal n: nn.init.normal_(p, n.Mean, n.Std); break;
            case Constant c:
                using (var value = c.Value.ToScalar()) nn.init.constant_(p, value);
                break;
            case Xavier x when p.dim() >= 2: nn.init.xavier_uniform_(p, x.Gain); break;
            case Orthogonal o when p.dim() >= 2:
                var rows = p.shape[0];
                var cols = p.shape[1];
                if (o.PerGate && rows > cols && rows % cols == 0)
                    foreach (var block in p.chunk(rows / cols, 0)) nn.init.orthogonal_(block, o.Gain);
                else
                    nn.init.orthogonal_(p, o.Gain);
                break;
            case Xavier or Orthogonal:
                throw new Spec.SeqDslException(Spec.ErrorKind.Spec,
                    $"{GetType().Name} initialisation needs a matrix, but parameter '{name}' has shape [{string.Join(", ", p.shape)}].");
        }
    }
}
