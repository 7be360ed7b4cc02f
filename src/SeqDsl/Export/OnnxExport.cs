using Google.Protobuf;
using Onnx;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Workflows;
using static TorchSharp.torch;

namespace SeqDsl.Export;

/// <summary>How a model is exported.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Carried states as graph inputs and outputs (step-by-step generation); null: for language models only.</summary>
    public bool? States { get; init; }
    /// <summary>The producer version written into the file; null: this assembly's.</summary>
    public string? ProducerVersion { get; init; }
}

/// <summary>
/// Exports a compiled network to ONNX (opset <see cref="Opset"/>): Embed as Gather, recurrent layers on ONNX's own
/// LSTM, GRU and RNN operators (gate blocks reordered from libtorch's i,f,g,o and r,z,n to ONNX's i,o,f,c and z,r,h;
/// both biases per direction; reset-after GRU as <c>linear_before_reset=1</c>, the textbook reset-before one as 0;
/// peepholes on the operator's P input), stacked and bidirectional with every merge, variable lengths on
/// <c>sequence_lens</c> (outputs after a sequence's end are zero and its final state is its own, as in SeqDsl);
/// Dense, Attention with masked softmax, Dropout and SpatialDropout as identity. Layer-norm LSTMs and user cells are
/// refused with the layer named. The graph's interface and the model's preparation travel in the file's metadata
/// (<see cref="ExportMetadata"/>), so the file alone is enough to use the model (SeqDsl.Runtime, any ONNX Runtime host).
/// </summary>
public static class OnnxExport
{
    /// <summary>The ONNX operator set the graphs use (LSTM/GRU/RNN 14, Softmax 13, Squeeze with axes as input).</summary>
    public const int Opset = 17;
    /// <summary>The ONNX IR version written (8 goes with opset 17).</summary>
    public const long IrVersion = 8;

    /// <summary>Exports a network with its task description and text preparation; returns the serialized model.</summary>
    /// <exception cref="SeqDslException">A layer has no ONNX form (layer-norm LSTM, user cell); the message names it.</exception>
    public static byte[] ToBytes(Network net, TaskInfo task, TextPreprocessing? text, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        var states = options.States ?? task.Kind == TaskKind.LanguageModel;
        var g = new GraphBuilder();
        var spec = net.Spec;
        CheckExportable(spec);
        var parameters = net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        float[] Values(string name) => parameters.TryGetValue(name, out var p)
            ? p.detach().cpu().to_type(ScalarType.Float32).data<float>().ToArray()
            : throw new InvalidOperationException($"parameter {name} not found");
        bool Has(string name) => parameters.ContainsKey(name);

        // a language model without Embed reads its token ids as one-hot vectors (TaskInfo.OneHot); other models read features
        int? oneHot = spec.ReadsTokenIds ? null : task.OneHot ?? (task.Kind == TaskKind.LanguageModel ? net.OneHotWidth : null);
        var ids = spec.ReadsTokenIds || oneHot is not null;
        var inputWidth = spec.ReadsTokenIds ? net.Summary.Rows[0].Params / ((EmbedLayer)spec.Layers[0]).Dim : net.Options.Input.Features ?? 0;
        var graphInterface = new GraphInterface
        {
            InputKind = ids ? GraphInput.Ids : GraphInput.Features,
            InputWidth = inputWidth,
            OutputSequence = net.Summary.Output.Sequence,
            OutputWidth = net.Summary.Output.Features,
            OutputActivation = net.OutputActivation,
        };
        g.Input(graphInterface.Input, ids ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float,
            ids ? ["batch", "time"] : ["batch", "time", inputWidth]);
        g.Input(graphInterface.Lengths, TensorProto.Types.DataType.Int64, ["batch"]);

        var x = graphInterface.Input;
        if (oneHot is int v)
        {
            // one-hot of the ids: (ids[..., None] == 0..V−1) as floats
            var range = g.Constant("onehot_range", Enumerable.Range(0, v).Select(i => (long)i).ToArray(), [v]);
            x = g.Node("Cast", [g.Node("Equal", [g.Unsqueeze(x, -1), range])], [("to", (long)TensorProto.Types.DataType.Float)]);
        }
        var seqLens = g.Node("Cast", [graphInterface.Lengths], [("to", (long)TensorProto.Types.DataType.Int32)], "sequence_lens");
        var graphStates = new List<GraphState>();
        for (var i = 0; i < spec.Layers.Length; i++)
        {
            var layer = spec.Layers[i];
            var prefix = $"layers.{i}";
            switch (layer)
            {
                case EmbedLayer e:
                    x = g.Node("Gather", [g.Initializer($"{prefix}.embedding.weight", Values($"{prefix}.embedding.weight"), [inputWidth, e.Dim]), x]);
                    break;
                case DropoutLayer or SpatialDropoutLayer:
                    break; // identity at inference
                case DenseLayer d:
                {
                    var w = Values($"{prefix}.linear.weight");
                    var inWidth = w.Length / d.Units;
                    x = g.Node("Add", [g.Node("MatMul", [x, g.Initializer($"{prefix}.linear.weight_t", Transpose(w, d.Units, inWidth), [inWidth, d.Units])]),
                        g.Initializer($"{prefix}.linear.bias", Values($"{prefix}.linear.bias"), [d.Units])]);
                    x = d.Activation switch
                    {
                        Activation.Linear => x,
                        Activation.Sigmoid => g.Node("Sigmoid", [x]),
                        Activation.Tanh => g.Node("Tanh", [x]),
                        Activation.Relu => g.Node("Relu", [x]),
                        Activation.Softmax => g.Node("Softmax", [x], [("axis", -1L)]),
                        _ => throw new ArgumentOutOfRangeException(nameof(layer)),
                    };
                    break;
                }
                case AttentionLayer:
                {
                    var w = Values($"{prefix}.w.weight");
                    var vv = Values($"{prefix}.v.weight");
                    var units = vv.Length;
                    var width = w.Length / units;
                    var hidden = g.Node("Tanh", [g.Node("Add", [
                        g.Node("MatMul", [x, g.Initializer($"{prefix}.w.weight_t", Transpose(w, units, width), [width, units])]),
                        g.Initializer($"{prefix}.w.bias", Values($"{prefix}.w.bias"), [units])])]);
                    var scores = g.Squeeze(g.Node("MatMul", [hidden, g.Initializer($"{prefix}.v.weight_t", vv, [units, 1])]), 2); // (B, T)
                    // padding steps (t ≥ length) get −∞ before the softmax, as in SeqDsl
                    var steps = g.Node("Range", [g.Constant($"{prefix}.zero", [0L], []), g.Node("Gather", [g.Node("Shape", [x]), g.Constant($"{prefix}.one", [1L], [])]),
                        g.Constant($"{prefix}.step", [1L], [])]);
                    var padding = g.Node("GreaterOrEqual", [g.Unsqueeze(steps, 0), g.Unsqueeze(graphInterface.Lengths, 1)]);
                    scores = g.Node("Where", [padding, g.Constant($"{prefix}.minus_infinity", [float.NegativeInfinity], []), scores]);
                    var alpha = g.Node("Softmax", [scores], [("axis", -1L)]);
                    x = g.Node("ReduceSum", [g.Node("Mul", [g.Unsqueeze(alpha, -1), x]), g.Constant($"{prefix}.time_axis", [1L], [1])], [("keepdims", 0L)]);
                    break;
                }
                case RecurrentLayer r:
                    x = Recurrent(g, r, i, x, seqLens, Shapes.ReturnsSequences(spec, i), net.Options.Convention, Values, Has, states, graphStates);
                    break;
                default:
                    throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, "This layer has no ONNX form.", layer.Kind, "Embed, SimpleRnn, Lstm, Gru, Dense, Dropout, SpatialDropout or Attention");
            }
        }
        g.Output(g.Node("Identity", [x], name: graphInterface.Output), TensorProto.Types.DataType.Float,
            graphInterface.OutputSequence ? ["batch", "time", graphInterface.OutputWidth] : ["batch", graphInterface.OutputWidth]);
        graphInterface = graphInterface with { States = graphStates };

        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "SeqDsl",
            ProducerVersion = options.ProducerVersion ?? typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "0",
            DocString = $"{spec} — exported by SeqDsl",
            Graph = g.Build("seqdsl"),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in new ExportMetadata(spec.ToString(), task, text, graphInterface).ToProperties())
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        var bytes = model.ToByteArray();
        ExportMetadata.Seal(bytes); // the file carries its own SHA-256: a changed byte is refused when it is loaded
        return bytes;
    }

    /// <summary>Exports a saved model directory to <paramref name="path"/> (written atomically); returns the graph's interface.</summary>
    public static GraphInterface Save(TrainedModel model, string path, OnnxExportOptions? options = null)
    {
        var bytes = ToBytes(model.Network, model.Info, model.Text, options);
        Training.Durable.ReplaceFile(path, bytes);
        return ExportMetadata.FromProperties(
            ModelProto.Parser.ParseFrom(bytes).MetadataProps.ToDictionary(p => p.Key, p => p.Value), path).Interface;
    }

    /// <summary>Refuses, naming the layer, a model with a layer ONNX's operators cannot express.</summary>
    public static void CheckExportable(ModelSpec spec)
    {
        for (var i = 0; i < spec.Layers.Length; i++)
        {
            if (spec.Layers[i] is not RecurrentLayer r) continue;
            string? why = r.Cell switch
            {
                LstmCell { LayerNorm: true } => "ONNX's LSTM operator has no layer normalisation",
                UserCell u => $"the user cell {u.CellName} is C# code, not an ONNX operator",
                RnnCell { Activation: not (Activation.Tanh or Activation.Relu or Activation.Linear or Activation.Sigmoid) } c => $"ONNX's RNN operator has no {c.Activation} activation",
                _ => null,
            };
            if (why is not null)
                throw SeqDslException.ForLayer(i, r, ErrorKind.Spec, $"This layer cannot be exported to ONNX: {why}.",
                    r.ToString(), "Lstm (plain or peephole), Gru (either reset form) or SimpleRnn (tanh, relu, linear)");
        }
    }

    private static string Recurrent(GraphBuilder g, RecurrentLayer r, int index, string x, string seqLens, bool returnSequences,
        Convention convention, Func<string, float[]> values, Func<string, bool> has, bool states, List<GraphState> graphStates)
    {
        var H = r.Units;
        var D = r.Directions;
        var (op, gates, order) = r.Cell switch
        {
            LstmCell => ("LSTM", 4, new[] { 0, 3, 1, 2 }),   // libtorch i,f,g,o → ONNX i,o,f,c
            GruCell => ("GRU", 3, new[] { 1, 0, 2 }),        // libtorch r,z,n → ONNX z,r,h
            _ => ("RNN", 1, new[] { 0 }),
        };
        var prefix = RnnParameters.Prefix(index);
        string? stateH = null, stateC = null;
        if (states)
        {
            stateH = $"state_h_{index}";
            g.Input(stateH, TensorProto.Types.DataType.Float, [r.Layers * D, "batch", H]);
            if (r.Cell is LstmCell)
            {
                stateC = $"state_c_{index}";
                g.Input(stateC, TensorProto.Types.DataType.Float, [r.Layers * D, "batch", H]);
            }
        }
        var seq = g.Node("Transpose", [x], [("perm", new long[] { 1, 0, 2 })]);  // (T, B, I): ONNX Runtime's recurrent kernels are time-major
        string y = "", yh = "";
        var finalH = new List<string>();
        var finalC = new List<string>();
        for (var l = 0; l < r.Layers; l++)
        {
            var w = new List<float>();
            var rr = new List<float>();
            var b = new List<float>();
            var p = new List<float>();
            long inWidth = 0;
            for (var d = 0; d < D; d++)
            {
                var sfx = RnnParameters.Suffix(l, d);
                var wih = values($"{prefix}.weight_ih{sfx}");
                inWidth = wih.Length / (gates * H);
                w.AddRange(Reorder(wih, order, H * inWidth));
                rr.AddRange(Reorder(values($"{prefix}.weight_hh{sfx}"), order, (long)H * H));
                if (has($"{prefix}.bias_ih{sfx}") || has($"{prefix}.bias_hh{sfx}"))
                {
                    // a held-at-zero second bias (Keras layout on the fused kernel) is zero, so adding it changes nothing
                    b.AddRange(has($"{prefix}.bias_ih{sfx}") ? Reorder(values($"{prefix}.bias_ih{sfx}"), order, H) : new float[gates * H]);
                    b.AddRange(has($"{prefix}.bias_hh{sfx}") ? Reorder(values($"{prefix}.bias_hh{sfx}"), order, H) : new float[gates * H]);
                }
                if (r.Cell is LstmCell { Peephole: true })
                    p.AddRange(Reorder(values($"{prefix}.weight_peephole{sfx}"), [0, 2, 1], H)); // c_i, c_f, c_o → ONNX i, o, f
            }
            var name = $"{prefix}_l{l}";
            string Slice(string state) => g.Node("Slice", [state, g.Constant($"{name}.{state}.start", [(long)l * D], [1]),
                g.Constant($"{name}.{state}.end", [(long)(l + 1) * D], [1]), g.Constant($"{name}.{state}.axis", [0L], [1])]);
            var inputs = new List<string>
            {
                seq,
                g.Initializer($"{name}.W", w.ToArray(), [D, gates * H, inWidth]),
                g.Initializer($"{name}.R", rr.ToArray(), [D, gates * H, H]),
                b.Count > 0 ? g.Initializer($"{name}.B", b.ToArray(), [D, 2 * gates * H]) : "",
                seqLens,
                stateH is null ? "" : Slice(stateH),
            };
            if (r.Cell is LstmCell)
            {
                inputs.Add(stateC is null ? "" : Slice(stateC));
                if (p.Count > 0) inputs.Add(g.Initializer($"{name}.P", p.ToArray(), [D, 3 * H]));
            }
            while (inputs[^1] == "") inputs.RemoveAt(inputs.Count - 1);
            var attributes = new List<(string, object)> { ("hidden_size", (long)H), ("direction", D == 2 ? "bidirectional" : "forward") };
            switch (r.Cell)
            {
                case GruCell gru:
                    attributes.Add(("linear_before_reset", gru.ResetAfter ? 1L : 0L));
                    break;
                case RnnCell rnn:
                {
                    var (act, alpha, beta) = rnn.Activation switch
                    {
                        Activation.Relu => ("Relu", (float?)null, (float?)null),
                        Activation.Sigmoid => ("Sigmoid", null, null),
                        Activation.Linear => ("Affine", 1f, 0f),
                        _ => ("Tanh", null, null),
                    };
                    attributes.Add(("activations", Enumerable.Repeat(act, D).ToArray()));
                    if (alpha is float a) attributes.Add(("activation_alpha", Enumerable.Repeat(a, D).ToArray()));
                    if (beta is float bb) attributes.Add(("activation_beta", Enumerable.Repeat(bb, D).ToArray()));
                    break;
                }
            }
            var outputs = g.NodeOutputs(op, inputs, r.Cell is LstmCell ? 3 : 2, attributes, name);
            (y, yh) = (outputs[0], outputs[1]);                  // Y (T, D, B, H), Y_h (D, B, H)
            finalH.Add(yh);
            if (r.Cell is LstmCell) finalC.Add(outputs[2]);
            // the next layer reads (T, B, D·H)
            seq = D == 1 ? g.Squeeze(y, 1) : g.Node("Reshape", [g.Node("Transpose", [y], [("perm", new long[] { 0, 2, 1, 3 })]), g.Constant($"{name}.flat", [0L, 0L, -1L], [3])]);
        }
        if (states)
        {
            var outH = $"next_state_h_{index}";
            g.Output(finalH.Count == 1 ? g.Node("Identity", [finalH[0]], name: outH) : g.Node("Concat", finalH, [("axis", 0L)], outH),
                TensorProto.Types.DataType.Float, [r.Layers * D, "batch", H]);
            string? outC = null;
            if (r.Cell is LstmCell)
            {
                outC = $"next_state_c_{index}";
                g.Output(finalC.Count == 1 ? g.Node("Identity", [finalC[0]], name: outC) : g.Node("Concat", finalC, [("axis", 0L)], outC),
                    TensorProto.Types.DataType.Float, [r.Layers * D, "batch", H]);
                graphStates.Add(new GraphState(stateH!, outH, r.Layers * D, H));
                graphStates.Add(new GraphState(stateC!, outC, r.Layers * D, H));
            }
            else
            {
                graphStates.Add(new GraphState(stateH!, outH, r.Layers * D, H));
            }
        }
        if (returnSequences)
        {
            var batchMajor = g.Node("Transpose", [y], [("perm", new long[] { 2, 0, 1, 3 })]); // (B, T, D, H)
            if (D == 1) return g.Squeeze(batchMajor, 2);
            return r.Bidirectional == Merge.Concat
                ? g.Node("Reshape", [batchMajor, g.Constant($"{prefix}.concat", [0L, 0L, -1L], [3])])
                : MergeDirections(g, g.Gather(batchMajor, 0, 2), g.Gather(batchMajor, 1, 2), r.Bidirectional!.Value);
        }
        // the last step: the top layer's final state per direction (each sequence's own end; the backward direction
        // after reading back to its first step)
        return D == 1 ? g.Squeeze(yh, 0) : MergeDirections(g, g.Gather(yh, 0, 0), g.Gather(yh, 1, 0), r.Bidirectional!.Value);
    }

    private static string MergeDirections(GraphBuilder g, string forward, string backward, Merge merge) => merge switch
    {
        Merge.Concat => g.Node("Concat", [forward, backward], [("axis", -1L)]),
        Merge.Sum => g.Node("Add", [forward, backward]),
        Merge.Mul => g.Node("Mul", [forward, backward]),
        Merge.Ave => g.Node("Mul", [g.Node("Add", [forward, backward]), g.Constant($"half_{g.Count}", [0.5f], [])]),
        _ => throw new ArgumentOutOfRangeException(nameof(merge)),
    };

    /// <summary>Gate blocks of <paramref name="block"/> values each, in the order <paramref name="order"/> names them.</summary>
    private static float[] Reorder(float[] values, int[] order, long block)
    {
        var result = new float[values.Length];
        for (var k = 0; k < order.Length; k++)
            Array.Copy(values, order[k] * block, result, k * block, block);
        return result;
    }

    /// <summary>A row-major (rows × cols) matrix transposed.</summary>
    private static float[] Transpose(float[] m, long rows, long cols)
    {
        var t = new float[m.Length];
        for (long i = 0; i < rows; i++)
            for (long j = 0; j < cols; j++)
                t[j * rows + i] = m[i * cols + j];
        return t;
    }
}
