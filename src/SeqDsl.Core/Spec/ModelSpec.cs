using System.Collections.Immutable;

namespace SeqDsl.Spec;

/// <summary>
/// A model as an immutable value: a list of layers. Every builder call returns a new, checked
/// value; <see cref="ToString"/> prints the fluent expression that <see cref="ModelSyntax.Parse"/>
/// reads back; two models are equal when their layers are.
/// </summary>
public sealed record ModelSpec
{
    /// <summary>The model with no layers, the start of every builder chain.</summary>
    public static readonly ModelSpec Empty = new();

    /// <summary>The layers, input first.</summary>
    public ImmutableArray<Layer> Layers { get; init; } = ImmutableArray<Layer>.Empty;

    /// <summary>Builds a model from layers, checking arguments and structure.</summary>
    public static ModelSpec Of(IEnumerable<Layer> layers)
    {
        var m = new ModelSpec { Layers = layers.ToImmutableArray() };
        Shapes.CheckStructure(m);
        return m;
    }

    /// <summary>Whether the model reads token ids (it starts with Embed). Token ids fed to a model that does not are
    /// one-hot vectors of its input width: the one rule for language models and step-by-step generation.</summary>
    public bool ReadsTokenIds => !Layers.IsEmpty && Layers[0] is EmbedLayer;

    /// <summary>Appends a layer (checked).</summary>
    public ModelSpec Add(Layer layer)
    {
        var m = this with { Layers = Layers.Add(layer) };
        Shapes.CheckStructure(m);
        return m;
    }

    /// <summary>Token embedding (V×D); must be the first layer.</summary>
    public ModelSpec Embed(int dim, int? vocab = null, int? padding = null, string? pretrained = null, bool trainable = true) =>
        Add(new EmbedLayer(dim) { Vocab = vocab, Padding = padding, Pretrained = pretrained, Trainable = trainable });

    /// <summary>Simple (Elman) RNN layer.</summary>
    public ModelSpec SimpleRnn(int units, Activation activation = Activation.Tanh, Bias bias = Bias.Auto,
        bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        Recurrent(new RnnCell { Activation = activation, Bias = bias }, units, returnSequences, kernel);

    /// <summary>LSTM layer.</summary>
    public ModelSpec Lstm(int units, Bias bias = Bias.Auto, double? forgetBias = null, bool peephole = false,
        bool layerNorm = false, bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        Recurrent(new LstmCell { Bias = bias, ForgetBias = forgetBias, Peephole = peephole, LayerNorm = layerNorm },
            units, returnSequences, kernel);

    /// <summary>GRU layer; <paramref name="resetAfter"/> false is the textbook (Keras reset_after=False) form.</summary>
    public ModelSpec Gru(int units, bool resetAfter = true, Bias bias = Bias.Auto, bool? returnSequences = null,
        Kernel kernel = Kernel.Auto) =>
        Recurrent(new GruCell { ResetAfter = resetAfter, Bias = bias }, units, returnSequences, kernel);

    /// <summary>A recurrent layer of any cell.</summary>
    public ModelSpec Recurrent(CellSpec cell, int units, bool? returnSequences = null, Kernel kernel = Kernel.Auto) =>
        Add(new RecurrentLayer(cell, units) { ReturnSequences = returnSequences, Kernel = kernel });

    /// <summary>Makes the preceding recurrent layer a stack of <paramref name="n"/> layers of the same cell,
    /// with <paramref name="dropout"/> applied between them (libtorch's inter-layer dropout).</summary>
    public ModelSpec Stack(int n, double dropout = 0)
    {
        var (i, r) = LastRecurrent("Stack");
        if (n < 1)
            throw SeqDslException.ForLayer(i, r, ErrorKind.Spec, "Stack count must be positive.", n.ToString(), "n ≥ 1");
        if (r.Layers != 1 || r.Dropout != 0)
            throw SeqDslException.ForLayer(i, r, ErrorKind.Spec, "Stack applied twice.", $"Stack({r.Layers}).Stack({n})",
                "one Stack(n) per recurrent layer");
        return Replace(i, r with { Layers = n, Dropout = dropout });
    }

    /// <summary>Sets returnSequences of the preceding recurrent layer (every other field kept).</summary>
    public ModelSpec ReturnSequences(bool value)
    {
        var (i, r) = LastRecurrent("ReturnSequences");
        return Replace(i, r with { ReturnSequences = value });
    }

    /// <summary>Makes the preceding recurrent layer bidirectional; outputs merged per time step.</summary>
    public ModelSpec Bidirectional(Merge merge = Merge.Concat)
    {
        var (i, r) = LastRecurrent("Bidirectional");
        if (r.Bidirectional is not null)
            throw SeqDslException.ForLayer(i, r, ErrorKind.Spec, "Bidirectional applied twice.",
                $"{r.Cell.Name} already Bidirectional({r.Bidirectional})", "one Bidirectional per recurrent layer");
        return Replace(i, r with { Bidirectional = merge });
    }

    /// <summary>Dropout of activations.</summary>
    public ModelSpec Dropout(double rate) => Add(new DropoutLayer(rate));

    /// <summary>Dropout of whole feature channels across time (Keras SpatialDropout1D).</summary>
    public ModelSpec SpatialDropout(double rate) => Add(new SpatialDropoutLayer(rate));

    /// <summary>Fully connected layer; per time step after a sequence output.</summary>
    public ModelSpec Dense(int units, Activation activation = Activation.Linear) => Add(new DenseLayer(units, activation));

    /// <summary>Additive attention pooling over the preceding sequence.</summary>
    public ModelSpec Attention(int? units = null) => Add(new AttentionLayer { Units = units });

    /// <summary>The same model with every recurrent layer on <paramref name="kernel"/> (the CLI's <c>--kernel</c>).</summary>
    public ModelSpec WithKernel(Kernel kernel) =>
        this with { Layers = [.. Layers.Select(l => l is RecurrentLayer r ? r with { Kernel = kernel } : l)] };

    /// <summary>Per-layer shapes and parameter counts for an input, under a bias convention.</summary>
    public ModelSummary Summary(InputSpec input, Convention convention = Convention.Torch) =>
        Shapes.Summarise(this, input, convention);

    /// <summary>The fluent text of the model, e.g. <c>Embed(32).Lstm(64).Stack(2).Dense(1)</c>.</summary>
    public override string ToString() => string.Join(".", Layers.Select(l => l.ToString()));

    /// <inheritdoc />
    public bool Equals(ModelSpec? other) =>
        other is not null && Layers.AsSpan().SequenceEqual(other.Layers.AsSpan());

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var l in Layers) h.Add(l);
        return h.ToHashCode();
    }

    private (int, RecurrentLayer) LastRecurrent(string what)
    {
        if (Layers.IsEmpty)
            throw new SeqDslException(ErrorKind.Spec, $"{what} needs a preceding recurrent layer, but the model is empty.");
        var i = Layers.Length - 1;
        if (Layers[i] is RecurrentLayer r) return (i, r);
        throw SeqDslException.ForLayer(i, Layers[i], ErrorKind.Spec, $"{what} applies to a recurrent layer.",
            Layers[i].Kind, "SimpleRnn, Lstm or Gru");
    }

    private ModelSpec Replace(int i, Layer layer)
    {
        var m = this with { Layers = Layers.SetItem(i, layer) };
        Shapes.CheckStructure(m);
        return m;
    }
}

/// <summary>What the model is fed: token ids from a vocabulary, or feature vectors per step.</summary>
/// <param name="Vocab">Vocabulary size, for models that start with Embed (unless Embed gives it).</param>
/// <param name="Features">Features per time step, for models that take numbers.</param>
/// <param name="SeqLen">Sequence length, when fixed (printed in shapes; null prints None).</param>
public sealed record InputSpec(int? Vocab = null, int? Features = null, int? SeqLen = null);
