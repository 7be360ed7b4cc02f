using SeqDsl.Spec;

namespace SeqDsl;

/// <summary>
/// Entry point of the fluent builder: <c>Model.Embed(32).Lstm(64).Stack(2).Dense(1, Activation.Sigmoid)</c>.
/// Each call returns a new immutable <see cref="ModelSpec"/>.
/// </summary>
public static class Model
{
    /// <summary>The empty model.</summary>
    public static ModelSpec Empty => ModelSpec.Empty;

    /// <inheritdoc cref="ModelSpec.Embed"/>
    public static ModelSpec Embed(int dim, int? vocab = null, int? padding = null, string? pretrained = null, bool trainable = true) =>
        ModelSpec.Empty.Embed(dim, vocab, padding, pretrained, trainable);

    /// <inheritdoc cref="ModelSpec.SimpleRnn"/>
    public static ModelSpec SimpleRnn(int units, Activation activation = Activation.Tanh, Bias bias = Bias.Auto,
        bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        ModelSpec.Empty.SimpleRnn(units, activation, bias, returnSequences, kernel);

    /// <inheritdoc cref="ModelSpec.Lstm"/>
    public static ModelSpec Lstm(int units, Bias bias = Bias.Auto, double? forgetBias = null, bool peephole = false,
        bool layerNorm = false, bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        ModelSpec.Empty.Lstm(units, bias, forgetBias, peephole, layerNorm, returnSequences, kernel);

    /// <inheritdoc cref="ModelSpec.Gru"/>
    public static ModelSpec Gru(int units, bool resetAfter = true, Bias bias = Bias.Auto, bool? returnSequences = null,
        Kernel kernel = Kernel.Auto) =>
        ModelSpec.Empty.Gru(units, resetAfter, bias, returnSequences, kernel);

    /// <inheritdoc cref="ModelSpec.Recurrent"/>
    public static ModelSpec Recurrent(CellSpec cell, int units, bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        ModelSpec.Empty.Recurrent(cell, units, returnSequences, kernel);

    /// <inheritdoc cref="ModelSpec.Dense"/>
    public static ModelSpec Dense(int units, Activation activation = Activation.Linear) => ModelSpec.Empty.Dense(units, activation);

    /// <inheritdoc cref="ModelSpec.Dropout"/>
    public static ModelSpec Dropout(double rate) => ModelSpec.Empty.Dropout(rate);

    /// <inheritdoc cref="ModelSpec.SpatialDropout"/>
    public static ModelSpec SpatialDropout(double rate) => ModelSpec.Empty.SpatialDropout(rate);

    /// <inheritdoc cref="ModelSpec.Attention"/>
    public static ModelSpec Attention(int? units = null) => ModelSpec.Empty.Attention(units);

    /// <inheritdoc cref="ModelSyntax.Parse"/>
    public static ModelSpec Parse(string text) => ModelSyntax.Parse(text);
}
