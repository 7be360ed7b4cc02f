using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>Small tensor helpers the engine and the loops share.</summary>
public static class Tensors
{
    /// <summary>One-hot encoding of ids: (…) → (…, classes) float32 (language models without Embed).</summary>
    public static Tensor OneHot(Tensor ids, int classes) => nn.functional.one_hot(ids, classes).to_type(ScalarType.Float32);
}

/// <summary>
/// TorchSharp Scalars that outlive the native calls they are passed to, and the tensor operations that need them.
/// A TorchSharp <see cref="TorchSharp.Scalar"/> frees its native value in its finalizer. One made by an implicit
/// conversion (<c>t.masked_fill(m, 0)</c>, <c>t * 0.5</c>) is referenced by nothing once its handle has been read, so
/// in optimised code a garbage collection during the native call can free the value libtorch is still reading (seen in
/// CI as "Expected false to be true" from <c>c10::Scalar::toFloat</c> in <c>masked_fill</c>, and once in <c>add</c>).
/// TorchSharp's own <c>a + b</c>, <c>a.add_(b)</c>, <c>1 - t</c>, <c>t % n</c>, <c>arange(n)</c> and <c>t.square()</c>
/// make such temporaries inside (its pull requests #1434 and #1496 are about them). The engine therefore passes only
/// Scalars it holds: these, which live as long as the process, or ones made with <c>ToScalar()</c> under a
/// <c>using</c>. ScalarLifetimeTests read the compiled assemblies for implicit conversions and for calls into the
/// TorchSharp methods that make them.
/// </summary>
internal static class Kept
{
    /// <summary>The integer 0.</summary>
    public static readonly TorchSharp.Scalar Zero = TorchSharp.ScalarExtensionMethods.ToScalar(0);
    /// <summary>The integer 1: the alpha of a plain add.</summary>
    public static readonly TorchSharp.Scalar One = TorchSharp.ScalarExtensionMethods.ToScalar(1);
    /// <summary>The integer 2.</summary>
    public static readonly TorchSharp.Scalar Two = TorchSharp.ScalarExtensionMethods.ToScalar(2);
    /// <summary>−∞ (a double).</summary>
    public static readonly TorchSharp.Scalar NegativeInfinity = TorchSharp.ScalarExtensionMethods.ToScalar(double.NegativeInfinity);

    /// <summary>a + b (TorchSharp's <c>a + b</c>, its alpha held).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b in place (TorchSharp's <c>a.add_(b)</c>, its alpha held).</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>1 − a, computed as TorchSharp's <c>1 - a</c> computes it: −a + 1.</summary>
    public static Tensor OneMinus(this Tensor a)
    {
        using var negative = a.negative();
        return negative.add(One, One);
    }

    /// <summary>a + s for a scalar s (TorchSharp's <c>a + s</c>).</summary>
    public static Tensor Plus(this Tensor a, double s)
    {
        using var scalar = TorchSharp.ScalarExtensionMethods.ToScalar(s);
        return a.add(scalar, One);
    }

    /// <summary>a + n for an integer n, keeping an integer tensor's type (TorchSharp's <c>a + n</c>).</summary>
    public static Tensor Plus(this Tensor a, long n)
    {
        using var scalar = TorchSharp.ScalarExtensionMethods.ToScalar(n);
        return a.add(scalar, One);
    }

    /// <summary>a · s for a scalar s (TorchSharp's <c>a * s</c>).</summary>
    public static Tensor Times(this Tensor a, double s)
    {
        using var scalar = TorchSharp.ScalarExtensionMethods.ToScalar(s);
        return a.mul(scalar);
    }

    /// <summary>0, 1, …, n − 1 as int64 (TorchSharp's <c>arange(n)</c>, whose start and step are temporaries).</summary>
    public static Tensor Arange(long n, Device? device = null)
    {
        using var stop = TorchSharp.ScalarExtensionMethods.ToScalar(n);
        return arange(Zero, stop, One, device: device);
    }
}
