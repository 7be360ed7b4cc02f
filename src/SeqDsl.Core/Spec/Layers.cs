using System.Text.Json.Serialization;

namespace SeqDsl.Spec;

/// <summary>One layer of a model, as an immutable value. Layers know their text form and their
/// own argument rules; where they may stand in a model is checked by <see cref="Shapes"/>.</summary>
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

    /// <summary>The fluent text of this layer, without a leading dot.</summary>
    public abstract override string ToString();

    private protected static string Call(string name, IEnumerable<string> args) =>
        $"{name}({string.Join(", ", args)})";

    private protected static (string, string, string)? Positive(string what, long value) =>
        value > 0 ? null : ($"{what} must be positive.", value.ToString(), $"{what} ≥ 1");

    private protected static (string, string, string)? RateProblem(string what, double value) =>
        value >= 0 && value < 1 ? null : ($"{what} must lie in [0, 1).", ModelSyntax.FormatNumber(value), "0 ≤ rate < 1");
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
        Positive("Embed dim", Dim)
        ?? (Vocab is int v ? Positive("Embed vocab", v) : null)
        ?? (Padding is int p && (p < 0 || (Vocab is int v2 && p >= v2))
            ? ("Embed padding index must lie inside the vocabulary.", p.ToString(), $"0 ≤ padding < {(Vocab is int v3 ? v3 : "vocab")}")
            : null);
    /// <inheritdoc />
    public override string ToString()
    {
        var a = new List<string> { Dim.ToString() };
        if (Vocab is int v) a.Add($"vocab: {v}");
        if (Padding is int p) a.Add($"padding: {p}");
        if (Pretrained is string s) a.Add($"pretrained: {ModelSyntax.Quote(s)}");
        if (!Trainable) a.Add("trainable: false");
        return Call("Embed", a);
    }
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
    [JsonIgnore] public int OutputWidth => Bidirectional == Merge.Concat ? 2 * Units : Units;

    internal override (string, string, string)? ArgumentProblem() =>
        Positive($"{Kind} units", Units)
        ?? Cell.ArgumentProblem()
        ?? Positive("Stack count", Layers)
        ?? RateProblem("Stack dropout", Dropout)
        ?? (Dropout > 0 && Layers < 2
            ? ($"{Kind} dropout acts between stacked layers, so it needs Stack(n) with n ≥ 2.", $"Stack({Layers}, dropout: {ModelSyntax.FormatNumber(Dropout)})", "Stack(2) or more, or no dropout")
            : ((string, string, string)?)null)
        ?? (Kernel == Kernel.Fused && Cell.FusedUnavailableReason is string why
            ? ($"kernel: Fused cannot be honoured: {why}.", "kernel: Fused", "kernel: Auto or Loop")
            : ((string, string, string)?)null);

    /// <inheritdoc />
    public override string ToString()
    {
        var a = new List<string> { Units.ToString() };
        a.AddRange(Cell.TextArguments());
        if (ReturnSequences is bool rs) a.Add($"returnSequences: {(rs ? "true" : "false")}");
        if (Kernel != Kernel.Auto) a.Add($"kernel: {Kernel}");
        var s = Call(Cell.Name, a);
        if (Layers != 1 || Dropout != 0)
            s += Dropout != 0 ? $".Stack({Layers}, dropout: {ModelSyntax.FormatNumber(Dropout)})" : $".Stack({Layers})";
        if (Bidirectional is Merge m) s += m == Merge.Concat ? ".Bidirectional()" : $".Bidirectional({m})";
        return s;
    }
}

/// <summary>Dropout of individual activations during training.</summary>
/// <param name="Rate">Fraction dropped, in [0, 1).</param>
public sealed record DropoutLayer(double Rate) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Dropout";
    internal override (string, string, string)? ArgumentProblem() => RateProblem(Kind, Rate);
    /// <inheritdoc />
    public override string ToString() => $"Dropout({ModelSyntax.FormatNumber(Rate)})";
}

/// <summary>Keras SpatialDropout1D: drops whole feature channels across all time steps.</summary>
/// <param name="Rate">Fraction of channels dropped, in [0, 1).</param>
public sealed record SpatialDropoutLayer(double Rate) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "SpatialDropout";
    internal override (string, string, string)? ArgumentProblem() => RateProblem(Kind, Rate);
    /// <inheritdoc />
    public override string ToString() => $"SpatialDropout({ModelSyntax.FormatNumber(Rate)})";
}

/// <summary>Fully connected layer y = φ(x W + b); after a sequence output it applies per time step.</summary>
/// <param name="Units">Output width.</param>
/// <param name="Activation">φ.</param>
public sealed record DenseLayer(int Units, Activation Activation = Activation.Linear) : Layer
{
    /// <inheritdoc />
    [JsonIgnore] public override string Kind => "Dense";
    internal override (string, string, string)? ArgumentProblem() => Positive("Dense units", Units);
    /// <inheritdoc />
    public override string ToString() =>
        Activation == Activation.Linear ? $"Dense({Units})" : $"Dense({Units}, {Activation})";
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
    internal override (string, string, string)? ArgumentProblem() => Units is int u ? Positive("Attention units", u) : null;
    /// <inheritdoc />
    public override string ToString() => Units is int u ? $"Attention({u})" : "Attention()";
}
