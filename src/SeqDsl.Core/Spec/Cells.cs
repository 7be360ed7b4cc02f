using System.Text.Json.Serialization;

namespace SeqDsl.Spec;

/// <summary>
/// A recurrent cell's equations and options, as a value. State never lives here: a cell is
/// the description of one step (state, x_t) → (state′, y_t); the engine owns the loop.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "cell")]
[JsonDerivedType(typeof(RnnCell), "SimpleRnn")]
[JsonDerivedType(typeof(LstmCell), "Lstm")]
[JsonDerivedType(typeof(GruCell), "Gru")]
[JsonDerivedType(typeof(UserCell), "User")]
public abstract record CellSpec
{
    /// <summary>The name the cell has in model text (SimpleRnn, Lstm, Gru).</summary>
    [JsonIgnore] public abstract string Name { get; }

    /// <summary>Bias layout; <see cref="Bias.Auto"/> follows the model's convention.</summary>
    public Bias Bias { get; init; } = Bias.Auto;

    /// <summary>Number of state tensors (1: h; 2: h and c).</summary>
    [JsonIgnore] public abstract int StateArity { get; }

    /// <summary>The bias layout actually used under a convention.</summary>
    public Bias EffectiveBias(Convention convention) =>
        Bias != Bias.Auto ? Bias : convention == Convention.Torch ? Bias.Torch : Bias.Keras;

    /// <summary>Parameters of one direction of one layer with input size <paramref name="input"/> and <paramref name="units"/> units.</summary>
    public abstract long ParameterCount(long input, long units, Convention convention);

    /// <summary>Why libtorch's fused kernel cannot run this cell, or null when it can.</summary>
    [JsonIgnore] public abstract string? FusedUnavailableReason { get; }

    /// <summary>Why SeqDsl's SIMD kernel cannot run this cell, or null when it can.</summary>
    [JsonIgnore] public virtual string? SimdUnavailableReason => null;

    /// <summary>Checks rules of the cell's own definition (user cells); argument bounds are in <see cref="LayerArguments"/>.</summary>
    internal virtual (string reason, string received, string expected)? ArgumentProblem() => null;

    private protected static long Biases(Bias bias, long gates, long units, long extraKerasRecurrent = 0) => bias switch
    {
        Bias.Torch => checked(2 * gates * units),
        Bias.Keras => checked(gates * units + extraKerasRecurrent),
        Bias.None => 0,
        _ => throw new InvalidOperationException("Bias.Auto must be resolved first"),
    };
}

/// <summary>
/// Simple (Elman) RNN: h_t = φ(x_t W_xh + h_{t−1} W_hh + b), φ ∈ {tanh, relu, linear}.
/// The bias-free linear form is seed 000's counting RNN s_t = x_t·U + s_{t−1}·W.
/// </summary>
public sealed record RnnCell : CellSpec
{
    /// <summary>φ; libtorch's fused kernel supports Tanh and Relu.</summary>
    public Activation Activation { get; init; } = Activation.Tanh;
    /// <inheritdoc />
    [JsonIgnore] public override string Name => "SimpleRnn";
    /// <inheritdoc />
    [JsonIgnore] public override int StateArity => 1;
    /// <inheritdoc />
    public override long ParameterCount(long input, long units, Convention convention) =>
        checked(units * input + units * units + Biases(EffectiveBias(convention), 1, units));
    /// <inheritdoc />
    [JsonIgnore] public override string? FusedUnavailableReason => Activation switch
    {
        Activation.Tanh or Activation.Relu => null,
        _ => $"libtorch's RNN kernel has no {Activation} activation",
    };

    /// <inheritdoc />
    [JsonIgnore] public override string? SimdUnavailableReason =>
        Activation == Activation.Softmax ? "the SIMD kernel has no Softmax state activation" : null;
}

/// <summary>
/// LSTM: i,f,o = σ(x W_x· + h_{t−1} W_h· + b·), g = tanh(x W_xg + h_{t−1} W_hg + b_g);
/// c_t = f ⊙ c_{t−1} + i ⊙ g; h_t = o ⊙ tanh(c_t). Gate order in stacked weights: i, f, g, o.
/// Peephole (Gers &amp; Schmidhuber): i and f also see w_ci ⊙ c_{t−1}, w_cf ⊙ c_{t−1}, and o sees w_co ⊙ c_t
/// (3H parameters). Layer norm (Ba et al. 2016): gates = LN(x W_x) + LN(h W_h) + b and
/// h_t = o ⊙ tanh(LN(c_t)), each LN with a gain and a shift (18H parameters). Both run on the loop kernel.
/// </summary>
public sealed record LstmCell : CellSpec
{
    /// <summary>Initial value of the forget-gate bias; null: 1 under the Keras layout (unit_forget_bias), libtorch's default otherwise.</summary>
    public double? ForgetBias { get; init; }
    /// <summary>Peephole connections (loop kernel only).</summary>
    public bool Peephole { get; init; }
    /// <summary>Layer-normalised LSTM (loop kernel only).</summary>
    public bool LayerNorm { get; init; }
    /// <inheritdoc />
    [JsonIgnore] public override string Name => "Lstm";
    /// <inheritdoc />
    [JsonIgnore] public override int StateArity => 2;
    /// <inheritdoc />
    public override long ParameterCount(long input, long units, Convention convention) =>
        checked(4 * (units * input + units * units) + Biases(EffectiveBias(convention), 4, units)
            + (Peephole ? 3 * units : 0) + (LayerNorm ? 18 * units : 0));
    /// <inheritdoc />
    [JsonIgnore] public override string? FusedUnavailableReason =>
        Peephole ? "libtorch's LSTM kernel has no peephole connections"
        : LayerNorm ? "libtorch's LSTM kernel has no layer normalisation"
        : null;

    /// <inheritdoc />
    [JsonIgnore] public override string? SimdUnavailableReason =>
        Peephole ? "the SIMD kernel has no peephole connections"
        : LayerNorm ? "the SIMD kernel has no layer normalisation"
        : null;
}

/// <summary>
/// GRU, in two formulations.
/// Reset-after (libtorch/cuDNN, Keras default): r,z = σ(x W_x· + b_i· + h W_h· + b_h·);
/// n = tanh(x W_xn + b_in + r ⊙ (h W_hn + b_hn)); h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.
/// Reset-before (d2l, seeds 000/001, Keras reset_after=False): h̃ = tanh(x W_xh + (r ⊙ h) W_hh + b_h);
/// h_t = z ⊙ h_{t−1} + (1 − z) ⊙ h̃. Gate order in stacked weights: r, z, n.
/// </summary>
public sealed record GruCell : CellSpec
{
    /// <summary>True: reset applied after the recurrent product (libtorch). False: before (textbook; loop kernel).</summary>
    public bool ResetAfter { get; init; } = true;
    /// <inheritdoc />
    [JsonIgnore] public override string Name => "Gru";
    /// <inheritdoc />
    [JsonIgnore] public override int StateArity => 1;
    /// <inheritdoc />
    public override long ParameterCount(long input, long units, Convention convention) =>
        checked(3 * (units * input + units * units)
            + Biases(EffectiveBias(convention), 3, units, extraKerasRecurrent: ResetAfter ? 3 * units : 0));
    /// <inheritdoc />
    [JsonIgnore] public override string? FusedUnavailableReason =>
        ResetAfter ? null : "libtorch's GRU kernel is reset-after; resetAfter: false needs the loop kernel";
}
