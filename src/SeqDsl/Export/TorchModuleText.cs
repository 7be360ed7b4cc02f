using System.Globalization;
using System.Text;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;

namespace SeqDsl.Export;

/// <summary>
/// Writes model.py: <c>SeqDslModel</c>, an <c>nn.Module</c> holding <c>layers</c>, one module per SeqDsl layer (so that its
/// <c>state_dict()</c> keys are SeqDsl's parameter names), with SeqDsl's forward: <c>model(x, lengths=None)</c>, lengths
/// packing post-padded rows, a recurrent layer returning every step or its top layer's final state with directions merged.
/// </summary>
internal static class TorchModuleText
{
    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Py(bool b) => b ? "True" : "False";

    private static string Lower<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    public static string Write(Network net, IReadOnlyList<TorchWeights.StateTensor> layout)
    {
        var spec = net.Spec;
        var shapes = layout.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        var version = typeof(TorchModuleText).Assembly.GetName().Version?.ToString(3) ?? "0";
        var output = net.Summary.Output;
        var input = spec.ReadsTokenIds
            ? $"int64 [batch, time] token ids (vocabulary {shapes["layers.0.embedding.weight"][0]})"
            : $"float32 [batch, time, {net.Options.Input.Features}] feature vectors (a language model without Embed reads one-hot vectors of its token ids)";
        var outputText = $"float32 [batch, {(output.Sequence ? "time, " : "")}{output.Features}] ({Lower(net.OutputActivation)} activation)";
        var keras = layout.Where(t => t.FoldsInto is not null).Select(t => t.Name).ToList();
        var notes = new StringBuilder();
        if (keras.Count > 0)
            notes.Append($"""

                The model uses the Keras bias layout (one bias per gate set): {string.Join(", ", keras)} are zero here. PyTorch
                may train them; SeqDsl adds them into the matching bias_ih when it loads the weights back.

                """);

        var layers = new StringBuilder();
        for (var i = 0; i < spec.Layers.Length; i++)
        {
            var p = $"layers.{i}";
            string module = spec.Layers[i] switch
            {
                EmbedLayer e => $"Embed(nn.Embedding({shapes[$"{p}.embedding.weight"][0]}, {e.Dim}{(e.Padding is int pad ? $", padding_idx={pad}" : "")}), trainable={Py(e.Trainable)})",
                RecurrentLayer r => Recurrent(r, i, spec, shapes),
                DenseLayer d => $"Dense(nn.Linear({shapes[$"{p}.linear.weight"][1]}, {d.Units}), activation=\"{Lower(d.Activation)}\")",
                AttentionLayer => $"Attention(nn.Linear({shapes[$"{p}.w.weight"][1]}, {shapes[$"{p}.w.weight"][0]}), nn.Linear({shapes[$"{p}.v.weight"][1]}, 1, bias=False))",
                DropoutLayer d => $"Dropout({F(d.Rate)})",
                SpatialDropoutLayer s => $"SpatialDropout({F(s.Rate)})",
                var l => throw SeqDslException.ForLayer(i, l, ErrorKind.Spec, "This layer has no PyTorch form.", l.Kind, "Embed, SimpleRnn, Lstm, Gru, Dense, Attention, Dropout or SpatialDropout"),
            };
            layers.Append($"            {module},  # {i}: {spec.Layers[i]}\n");
        }

        return $$""""
            """SeqDsl model {{spec}} as a PyTorch module (SeqDsl {{version}}, {{Lower(net.Options.Convention)}} convention).

            SeqDslModel().state_dict() has exactly the keys and shapes of model.pt and model.safetensors:

                import torch
                from model import SeqDslModel, load_safetensors
                model = SeqDslModel()
                model.load_state_dict(torch.load("model.pt"))  # or load_safetensors("model.safetensors")
                model.eval()
                y = model(x)            # x: {{input}}
                y = model(x, lengths)   # lengths: int64 [batch], each row's true length (rows padded at the end)

            y: {{outputText}}.

            The forward is SeqDsl's: a recurrent layer returns every step (padding steps zero) or its top layer's final state
            (with lengths each row's own last step; the backward direction's state after reading back to step 1),
            bidirectional outputs merged as declared; dropout only in training mode. Text preparation (tokenizer, vocabulary)
            is not part of this file: it is in the SeqDsl model directory and the ONNX export.
            {{notes}}"""
            import json
            import struct

            import torch
            from torch import nn
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


            def merge(forward, backward, how):
                if how == "concat":
                    return torch.cat([forward, backward], -1)
                if how == "sum":
                    return forward + backward
                if how == "mul":
                    return forward * backward
                return (forward + backward) / 2  # ave


            ACTIVATIONS = {
                "linear": lambda x: x,
                "relu": torch.relu,
                "sigmoid": torch.sigmoid,
                "tanh": torch.tanh,
                "softmax": lambda x: torch.softmax(x, -1),
            }


            class Embed(nn.Module):
                def __init__(self, embedding, trainable=True):
                    super().__init__()
                    self.embedding = embedding
                    self.embedding.weight.requires_grad_(trainable)

                def forward(self, x, lengths):
                    return self.embedding(x)


            class Recurrent(nn.Module):
                """nn.LSTM / nn.GRU / nn.RNN (batch_first) with SeqDsl's outputs."""

                def __init__(self, rnn, merge=None, return_sequences=False):
                    super().__init__()
                    self.rnn = rnn
                    self.merge = merge
                    self.return_sequences = return_sequences

                def forward(self, x, lengths):
                    if lengths is None:
                        out, state = self.rnn(x)
                    else:
                        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
                        out, state = self.rnn(packed)
                        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
                    units = self.rnn.hidden_size
                    if self.return_sequences:
                        if self.merge is None or self.merge == "concat":
                            return out
                        return merge(out[..., :units], out[..., units:], self.merge)
                    h = state[0] if isinstance(self.rnn, nn.LSTM) else state
                    top = h.view(self.rnn.num_layers, 2 if self.rnn.bidirectional else 1, h.shape[1], units)[-1]
                    return top[0] if self.merge is None else merge(top[0], top[1], self.merge)


            class Dense(nn.Module):
                def __init__(self, linear, activation="linear"):
                    super().__init__()
                    self.linear = linear
                    self.activation = activation

                def forward(self, x, lengths):
                    return ACTIVATIONS[self.activation](self.linear(x))


            class Attention(nn.Module):
                """Additive attention pooling: e_t = v . tanh(W h_t + b), softmax over each row's real steps, sum of a_t h_t."""

                def __init__(self, w, v):
                    super().__init__()
                    self.w = w
                    self.v = v

                def forward(self, x, lengths):
                    scores = self.v(torch.tanh(self.w(x))).squeeze(-1)
                    if lengths is not None:
                        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
                        scores = scores.masked_fill(steps >= lengths.to(x.device).unsqueeze(1), float("-inf"))
                    alpha = torch.softmax(scores, -1)
                    return (alpha.unsqueeze(-1) * x).sum(1)


            class Dropout(nn.Module):
                def __init__(self, rate):
                    super().__init__()
                    self.rate = rate

                def forward(self, x, lengths):
                    return nn.functional.dropout(x, self.rate, self.training)


            class SpatialDropout(nn.Module):
                """Drops whole feature channels of a (batch, time, channels) sequence, the same ones at every step."""

                def __init__(self, rate):
                    super().__init__()
                    self.rate = rate

                def forward(self, x, lengths):
                    if not self.training or self.rate == 0:
                        return x
                    keep = torch.empty(x.shape[0], 1, x.shape[2], dtype=x.dtype, device=x.device).bernoulli_(1 - self.rate)
                    return x * keep / (1 - self.rate)


            class SeqDslModel(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.layers = nn.ModuleList([
            {{layers}}        ])

                def forward(self, x, lengths=None):
                    for layer in self.layers:
                        x = layer(x, lengths)
                    return x


            def load_safetensors(path):
                """Reads a .safetensors file into a state dict, without the safetensors package."""
                types = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
                         "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
                with open(path, "rb") as f:
                    data = f.read()
                (n,) = struct.unpack("<Q", data[:8])
                header = json.loads(data[8:8 + n])
                header.pop("__metadata__", None)
                state = {}
                for name, t in header.items():
                    begin, end = (8 + n + o for o in t["data_offsets"])
                    dtype = types[t["dtype"]]
                    state[name] = (torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if end > begin
                                   else torch.empty(0, dtype=dtype)).reshape(t["shape"])
                return state

            """";
    }

    private static string Recurrent(RecurrentLayer r, int index, ModelSpec spec, IReadOnlyDictionary<string, long[]> shapes)
    {
        var prefix = RnnParameters.Prefix(index);
        var module = RnnParameters.TorchModule(r.Cell)!;
        var w = shapes[$"{prefix}.weight_ih{RnnParameters.Suffix(0, 0)}"];
        var bias = shapes.ContainsKey($"{prefix}.bias_ih{RnnParameters.Suffix(0, 0)}");
        var args = new List<string> { w[1].ToString(CultureInfo.InvariantCulture), r.Units.ToString(CultureInfo.InvariantCulture) };
        if (r.Layers > 1) args.Add($"num_layers={r.Layers}");
        if (r.Cell is RnnCell c) args.Add($"nonlinearity=\"{Lower(c.Activation)}\"");
        if (!bias) args.Add("bias=False");
        args.Add("batch_first=True");
        if (r.Layers > 1 && r.Dropout > 0) args.Add($"dropout={F(r.Dropout)}");
        if (r.Bidirectional is not null) args.Add("bidirectional=True");
        var rest = new List<string>();
        if (r.Bidirectional is Merge m) rest.Add($"merge=\"{Lower(m)}\"");
        if (Shapes.ReturnsSequences(spec, index)) rest.Add("return_sequences=True");
        return $"Recurrent(nn.{module}({string.Join(", ", args)}){string.Concat(rest.Select(x => ", " + x))})";
    }
}
