using System.Text.Json.Serialization;

namespace SeqDsl.Spec;

/// <summary>One layer of a model, as an immutable value. Its text form and argument bounds come from the one table of
/// arguments (<see cref="LayerArguments"/>); rules between its arguments live here; where it may stand in a model is
/// checked by <see cref="Shapes"/>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "layer")]
[JsonDerivedType(typeof(EmbedLayer), "Embed")]
[JsonDerivedType(typeof(RecurrentLayer), "Recurrent")]
[JsonDerivedType(typeof(DropoutLayer), "Dropout")]
[JsonDerivedType(typeof(SpatialDropoutLayer), "SpatialDropout")]
[JsonDerivedType(typeof(DenseLayer), "Dense")]
[JsonDerivedType(typeof(AttentionLayer), "Attention")]
public abstract record Layer
{
    /// <summary>The layer's kind as written in model text (Embed, Lstm, Dense, …).</summary>
    [JsonIgnore] public abstract string Kind { get; }

    /// <summary>Checks the layer's own arguments; returns the problem or null.</summary>
    internal abstract (string reason, string received, string expected)? ArgumentProblem();

    /// <summary>The fluent text of this layer, without a leading dot (<see cref="LayerArguments"/> writes it).</summary>
    public sealed override string ToString() => LayerArguments.Text(this);
}

/// <summary>Token embedding: a V×D lookup table. Must be the first layer.</summary>
/// <param name="Dim">D, the embedding width.</param>
public sealed record EmbedLayer(int Dim) : Layer
{
    /// <summary>V; null: taken from the data (the vocabulary) at summary/compile time.</summary>
    public int? Vocab { get; init; }
    /// <summary>Index whose row is zero and receives no gradient (Keras/seed 002 use 0); null: none.</summary>
    public int? Padding { get; init; }
    /// <summary>Path of GloVe-format vectors to initialise from; null: random initialisation.</summary>
    public string? Pretrained { get; init; }
    /// <summary>False freezes the table (typical with pretrained vectors).</summary>
    public bool Trainable { get; init; } = true;
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Embed";
    internal override (string, string, string)? ArgumentProblem() =>
        LayerArguments.Problem(this)
        ?? (Padding is int p && (p < 0 || (Vocab is int v2 && p >= v2))
            ? ("Embed padding index must lie inside the vocabulary.", p.ToString(), $"0 ≤ padding < {(Vocab is int v3 ? v3 : "vocab")}")
            : null);
}

/// <summary>A recurrent layer: a cell unrolled over time, optionally stacked and bidirectional.</summary>
/// <param name="Cell">The cell's equations and options.</param>
/// <param name="Units">H, the hidden size.</param>
public sealed record RecurrentLayer(CellSpec Cell, int Units) : Layer
{
    /// <summary>True: output every step (B, T, H); false: the last step (B, H); null: true when a
    /// later layer needs a sequence (a recurrent layer or attention), else false.</summary>
    public bool? ReturnSequences { get; init; }
    /// <summary>Number of stacked layers of this cell (<c>.Stack(n)</c>).</summary>
    public int Layers { get; init; } = 1;
    /// <summary>Merge mode when bidirectional (<c>.Bidirectional(merge)</c>); null: unidirectional.</summary>
    public Merge? Bidirectional { get; init; }
    /// <summary>Dropout between stacked layers (libtorch's <c>dropout</c>), set by <c>.Stack(n, dropout)</c>.</summary>
    public double Dropout { get; init; }
    /// <summary>Implementation choice.</summary>
    public Kernel Kernel { get; init; } = Kernel.Auto;
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => Cell.Name;
    /// <summary>1 or 2.</summary>
    [JsonIgnore] public int Directions => Bidirectional is null ? 1 : 2;
    /// <summary>Feature width of each output step.</summary>
    [JsonIgnore] public int OutputWidth => Bidirectional == Merge.Concat ? checked(2 * Units) : Units;

    internal override (string, string, string)? ArgumentProblem() =>
        LayerArguments.Problem(this)
        ?? Cell.ArgumentProblem()
        ?? (Dropout > 0 && Layers < 2
            ? ($"{Kind} dropout acts between stacked layers, so it needs Stack(n) with n ≥ 2.", $"Stack({Layers}, dropout: {ModelSyntax.FormatNumber(Dropout)})", "Stack(2) or more, or no dropout")
            : ((string, string, string)?)null)
        ?? (Kernel == Kernel.Fused && Cell.FusedUnavailableReason is string why
            ? ($"kernel: Fused cannot be honoured: {why}.", "kernel: Fused", "kernel: Auto or Loop")
            : ((string, string, string)?)null)
        ?? (Kernel == Kernel.Simd && Cell.SimdUnavailableReason is string whySimd
            ? ($"kernel: Simd cannot be honoured: {whySimd}.", "kernel: Simd", "kernel: Auto or Loop")
            : ((string, string, string)?)null);
}

/// <summary>Dropout of individual activations during training.</summary>
/// <param name="Rate">Fraction dropped, in [0, 1).</param>
public sealed record DropoutLayer(double Rate) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Dropout";
    internal override (string, string, string)? ArgumentProblem() => LayerArguments.Problem(this);
}

/// <summary>Keras SpatialDropout1D: drops whole feature channels across all time steps.</summary>
/// <param name="Rate">Fraction of channels dropped, in [0, 1).</param>
public sealed record SpatialDropoutLayer(double Rate) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "SpatialDropout";
    internal override (string, string, string)? ArgumentProblem() => LayerArguments.Problem(this);
}

/// <summary>Fully connected layer y = φ(x W + b); after a sequence output it applies per time step.</summary>
/// <param name="Units">Output width.</param>
/// <param name="Activation">φ.</param>
public sealed record DenseLayer(int Units, Activation Activation = Activation.Linear) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Dense";
    internal override (string, string, string)? ArgumentProblem() => LayerArguments.Problem(this);
}

/// <summary>
/// Additive (Bahdanau) attention pooling over a sequence h_1..h_T (width D):
/// e_t = vᵀ tanh(W h_t + b), α = softmax(e) over real (non-padding) steps, output Σ α_t h_t (width D).
/// Parameters: W (U×D), b (U), v (U).
/// </summary>
public sealed record AttentionLayer : Layer
{
    /// <summary>U, the width of the scoring layer; null: the input width D.</summary>
    public int? Units { get; init; }
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Attention";
    internal override (string, string, string)? ArgumentProblem() => LayerArguments.Problem(this);
}
