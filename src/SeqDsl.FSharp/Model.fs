namespace SeqDsl.FSharp

open SeqDsl.Spec

/// Short names for the option values, so pipelines read as the design card writes them:
/// `Model.dense 1 Sigmoid`, `Model.bidirectional Sum`.
[<AutoOpen>]
module Options =
    /// Identity activation.
    let Linear = Activation.Linear
    /// max(0, x).
    let Relu = Activation.Relu
    /// Logistic sigmoid.
    let Sigmoid = Activation.Sigmoid
    /// Hyperbolic tangent.
    let Tanh = Activation.Tanh
    /// Softmax over the last axis.
    let Softmax = Activation.Softmax
    /// Bidirectional merge: concatenate.
    let Concat = Merge.Concat
    /// Bidirectional merge: add.
    let Sum = Merge.Sum
    /// Bidirectional merge: multiply.
    let Mul = Merge.Mul
    /// Bidirectional merge: average.
    let Ave = Merge.Ave

/// Model building as F# pipelines over the same immutable records as the C# builder:
/// `Model.embed 32 |> Model.lstm 64 |> Model.stack 2 |> Model.dense 1 Sigmoid`.
/// Every function returns a new value; options are F# options, never nulls.
[<RequireQualifiedAccess>]
module Model =

    /// The model with no layers.
    let empty : ModelSpec = ModelSpec.Empty

    /// Starts a model with a token embedding of width `dim` (vocabulary taken from the data).
    let embed (dim: int) : ModelSpec = ModelSpec.Empty.Embed(dim)

    /// Starts a model with an embedding whose vocabulary size, padding index, pretrained file and
    /// trainability are given explicitly.
    let embedWith (dim: int) (vocab: int option) (padding: int option) (pretrained: string option) (trainable: bool) =
        ModelSpec.Empty.Embed(dim, Option.toNullable vocab, Option.toNullable padding, Option.toObj pretrained, trainable)

    /// Appends any layer record.
    let add (layer: Layer) (m: ModelSpec) = m.Add layer

    /// Appends a simple RNN layer (tanh).
    let simpleRnn (units: int) (m: ModelSpec) = m.SimpleRnn(units)

    /// Appends a simple RNN layer with an activation (Tanh, Relu, Linear).
    let simpleRnnWith (units: int) (activation: Activation) (bias: Bias) (m: ModelSpec) =
        m.SimpleRnn(units, activation, bias)

    /// Appends an LSTM layer.
    let lstm (units: int) (m: ModelSpec) = m.Lstm(units)

    /// Appends a GRU layer (libtorch's reset-after form).
    let gru (units: int) (m: ModelSpec) = m.Gru(units)

    /// Appends a GRU layer choosing reset-after (true) or the textbook reset-before form (false).
    let gruWith (units: int) (resetAfter: bool) (m: ModelSpec) = m.Gru(units, resetAfter)

    /// Sets returnSequences on the preceding recurrent layer (its other options kept).
    let returnSequences (value: bool) (m: ModelSpec) = m.ReturnSequences value

    /// Stacks the preceding recurrent layer `n` times.
    let stack (n: int) (m: ModelSpec) = m.Stack(n)

    /// Stacks the preceding recurrent layer `n` times with dropout between the layers.
    let stackWithDropout (n: int) (dropout: float) (m: ModelSpec) = m.Stack(n, dropout)

    /// Makes the preceding recurrent layer bidirectional with the given merge (Concat, Sum, Mul, Ave).
    let bidirectional (merge: Merge) (m: ModelSpec) = m.Bidirectional(merge)

    /// Appends dropout.
    let dropout (rate: float) (m: ModelSpec) = m.Dropout(rate)

    /// Appends spatial (channel) dropout.
    let spatialDropout (rate: float) (m: ModelSpec) = m.SpatialDropout(rate)

    /// Appends a dense layer with an activation.
    let dense (units: int) (activation: Activation) (m: ModelSpec) = m.Dense(units, activation)

    /// Appends additive attention pooling (scoring width = input width).
    let attention (m: ModelSpec) = m.Attention()

    /// Parses model text (the fluent expression).
    let parse (text: string) = ModelSyntax.Parse text

    /// The per-layer summary under a convention.
    let summary (input: InputSpec) (convention: Convention) (m: ModelSpec) = m.Summary(input, convention)

/// Model building as a computation expression, one layer per line:
///
///     model {
///         embed 32
///         lstm 64
///         stack 2
///         dense 1 Sigmoid
///     }
///
/// Each operation is the `Model` function of the same name; the value is the same `ModelSpec`.
type ModelBuilder() =
    member _.Yield(_: unit) : ModelSpec = ModelSpec.Empty
    member _.Zero() : ModelSpec = ModelSpec.Empty

    /// Token embedding of width `dim`.
    [<CustomOperation("embed")>]
    member _.Embed(m: ModelSpec, dim: int) = m.Embed(dim)

    /// Simple RNN (tanh).
    [<CustomOperation("simpleRnn")>]
    member _.SimpleRnn(m: ModelSpec, units: int) = m.SimpleRnn(units)

    /// LSTM.
    [<CustomOperation("lstm")>]
    member _.Lstm(m: ModelSpec, units: int) = m.Lstm(units)

    /// GRU (libtorch's reset-after form).
    [<CustomOperation("gru")>]
    member _.Gru(m: ModelSpec, units: int) = m.Gru(units)

    /// returnSequences of the preceding recurrent layer.
    [<CustomOperation("returnSequences")>]
    member _.ReturnSequences(m: ModelSpec, value: bool) = m.ReturnSequences value

    /// Stacks the preceding recurrent layer `n` times.
    [<CustomOperation("stack")>]
    member _.Stack(m: ModelSpec, n: int) = m.Stack(n)

    /// Makes the preceding recurrent layer bidirectional.
    [<CustomOperation("bidirectional")>]
    member _.Bidirectional(m: ModelSpec, merge: Merge) = m.Bidirectional(merge)

    /// Dropout of activations.
    [<CustomOperation("dropout")>]
    member _.Dropout(m: ModelSpec, rate: float) = m.Dropout(rate)

    /// Spatial (channel) dropout.
    [<CustomOperation("spatialDropout")>]
    member _.SpatialDropout(m: ModelSpec, rate: float) = m.SpatialDropout(rate)

    /// Dense layer with an activation.
    [<CustomOperation("dense")>]
    member _.Dense(m: ModelSpec, units: int, activation: Activation) = m.Dense(units, activation)

    /// Additive attention pooling.
    [<CustomOperation("attention")>]
    member _.Attention(m: ModelSpec) = m.Attention()

    /// Any layer record.
    [<CustomOperation("add")>]
    member _.Add(m: ModelSpec, layer: Layer) = m.Add layer

/// The `model { … }` builder.
[<AutoOpen>]
module ModelExpression =
    /// Builds a `ModelSpec` one layer per line (see `ModelBuilder`).
    let model = ModelBuilder()
