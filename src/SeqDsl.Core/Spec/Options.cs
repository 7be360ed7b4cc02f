namespace SeqDsl.Spec;

/// <summary>Activation of a Dense layer or a simple RNN cell.</summary>
public enum Activation
{
    /// <summary>Identity (Keras "linear", no activation).</summary>
    Linear,
    /// <summary>max(0, x).</summary>
    Relu,
    /// <summary>1 / (1 + e^−x).</summary>
    Sigmoid,
    /// <summary>Hyperbolic tangent.</summary>
    Tanh,
    /// <summary>Softmax over the last axis.</summary>
    Softmax,
}

/// <summary>How a bidirectional layer combines the forward and (time-realigned) backward outputs.</summary>
public enum Merge
{
    /// <summary>[forward; backward] along features (2H).</summary>
    Concat,
    /// <summary>forward + backward (H).</summary>
    Sum,
    /// <summary>forward ⊙ backward (H).</summary>
    Mul,
    /// <summary>(forward + backward) / 2 (H).</summary>
    Ave,
}

/// <summary>
/// Parameter-count convention for biases. PyTorch/libtorch keeps two bias vectors per gate set
/// (b_ih and b_hh); Keras keeps one (and a second, recurrent one for GRU reset_after).
/// </summary>
public enum Convention
{
    /// <summary>Two bias vectors (libtorch's layout).</summary>
    Torch,
    /// <summary>One bias vector (Keras's layout).</summary>
    Keras,
}

/// <summary>Bias layout of a recurrent cell.</summary>
public enum Bias
{
    /// <summary>Follow the convention the model is summarised or compiled under.</summary>
    Auto,
    /// <summary>Two bias vectors, b_ih and b_hh (libtorch).</summary>
    Torch,
    /// <summary>One bias vector (Keras); GRU reset-after adds its recurrent bias.</summary>
    Keras,
    /// <summary>No bias at all.</summary>
    None,
}

/// <summary>Which implementation runs a recurrent layer.</summary>
public enum Kernel
{
    /// <summary>The fused libtorch kernel when the cell's semantics allow it, else the loop (reported).</summary>
    Auto,
    /// <summary>libtorch's fused RNN/LSTM/GRU (its native CPU kernels, oneDNN only where <see cref="FusedPath"/> says; cuDNN on GPU); an error when impossible.</summary>
    Fused,
    /// <summary>A per-time-step unroll of the cell's step function.</summary>
    Loop,
    /// <summary>SeqDsl's own CPU kernel (C# SIMD: AVX2/FMA, AVX-512 where the CPU has it): the whole sequence per call,
    /// the recurrent product, gate functions and state update fused per step, batch rows split across threads.
    /// LSTM, GRU (both reset forms) and SimpleRnn; an error for other cells and on a GPU.</summary>
    Simd,
}
