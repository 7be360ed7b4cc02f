using SeqDsl.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>A compiled layer: a TorchSharp module with SeqDsl's forward contract.</summary>
internal abstract class LayerModule(string name) : nn.Module(name)
{
    /// <summary>x: (B, T, F) for sequences or (B, F) for vectors.</summary>
    public abstract Tensor Forward(Tensor x, ForwardContext ctx);

    internal static Tensor Activate(Tensor x, Activation a) => a switch
    {
        Activation.Linear => x,
        Activation.Relu => nn.functional.relu(x),
        Activation.Sigmoid => x.sigmoid(),
        Activation.Tanh => x.tanh(),
        Activation.Softmax => x.softmax(-1),
        _ => throw new ArgumentOutOfRangeException(nameof(a)),
    };
}

internal sealed class EmbedModule : LayerModule
{
    private readonly Embedding _embedding;
    private readonly int? _padding;

    public EmbedModule(Embedding embedding, int? padding) : base("Embed")
    {
        _embedding = embedding;
        _padding = padding;
        register_module("embedding", embedding);
    }

    public Embedding Embedding => _embedding;

    // (B, T) -> (B, T, D); in training on the CPU the lookup whose backward is one pass over the tokens
    public override Tensor Forward(Tensor x, ForwardContext ctx) =>
        _embedding.weight is { } w && Simd.SimdEmbedding.Applies(w, x) ? Simd.SimdEmbedding.Lookup(w, x, _padding) : _embedding.call(x);

    /// <summary>This lookup and the SpatialDropout after it in one pass each way (the dropout's mask drawn as it would
    /// draw it, applied to each row as it is copied and to each gradient row as it is added), when the one-pass lookup
    /// runs and the dropout drops; else false and nothing is drawn.</summary>
    public bool TryForwardDropped(Tensor x, SpatialDropoutModule dropout, out Tensor y)
    {
        y = null!;
        if (_embedding.weight is not { } w || x.dim() != 2 || !Simd.SimdEmbedding.Applies(w, x) || !dropout.Drops) return false;
        using var keep = dropout.Mask(x.shape[0], w.shape[1], w.dtype, w.device);               // (B, 1, D)
        y = Simd.SimdEmbedding.Lookup(w, x, _padding, keep.view(x.shape[0], w.shape[1]));
        return true;
    }

    /// <summary>This lookup (and the SpatialDropout after it, when given) as the input of <paramref name="next"/>, whose
    /// SIMD kernel makes the lookup itself (<see cref="Simd.EmbeddedInput"/>; the dropout's mask drawn as it would draw
    /// it), when the one-pass lookup runs and <paramref name="next"/> takes it; else false and nothing is drawn.</summary>
    public bool TryForwardInto(Tensor x, SpatialDropoutModule? dropout, RecurrentModule next, ForwardContext ctx, out Tensor y)
    {
        y = null!;
        if (!Simd.SimdEmbedding.InKernel || _embedding.weight is not { } w || x.dim() != 2 || x.shape[0] == 0 || !Simd.SimdEmbedding.Applies(w, x)
            || !next.TakesEmbedded(w, ctx))
            return false;
        using var keep = dropout is { Drops: true } ? dropout.Mask(x.shape[0], w.shape[1], w.dtype, w.device) : null;   // (B, 1, D)
        y = next.ForwardEmbedded(new Simd.EmbeddedInput(w, x, _padding ?? -1, keep?.view(x.shape[0], w.shape[1])), ctx);
        return true;
    }
}

internal sealed class RecurrentModule : LayerModule
{
    private readonly nn.Module _rnn;
    private readonly RecurrentLayer _spec;
    private readonly int _index;
    private readonly bool _returnSequences;
    private readonly Action<string>? _diagnostics;
    private readonly FusedPath _path;
    private string? _lengthsPath; // how lengths were last run, reported to the diagnostics when it changes

    public RecurrentModule(RecurrentLayer spec, int index, bool returnSequences, nn.Module rnn, FusedPath path, Action<string>? diagnostics = null) : base(spec.Kind)
    {
        _path = path;
        _spec = spec;
        _index = index;
        _returnSequences = returnSequences;
        _rnn = rnn;
        _diagnostics = diagnostics;
        register_module("rnn", rnn);
    }

    private void ReportLengthsPath(string path)
    {
        if (path == _lengthsPath) return;
        _lengthsPath = path;
        _diagnostics?.Invoke($"layer {_index} ({_spec.Kind}): lengths run on {path}");
    }

    public nn.Module Rnn => _rnn;

    public override Tensor Forward(Tensor x, ForwardContext ctx) => Forward(x, null, ctx);

    /// <summary>Whether this layer takes its input as the embedding lookup that makes it (<see cref="ForwardEmbedded"/>):
    /// a layer of one direction on the SIMD kernel, no per-step states kept, a float32 CPU table.</summary>
    public bool TakesEmbedded(Tensor table, ForwardContext ctx) => _rnn is LoopRnn loop && loop.TakesEmbedded(table, ctx.KeepStepStates);

    /// <summary>The layer on the embedding lookup <paramref name="input"/>, which its SIMD kernel makes itself (only
    /// where <see cref="TakesEmbedded"/>).</summary>
    public Tensor ForwardEmbedded(Simd.EmbeddedInput input, ForwardContext ctx) => Forward(null, input, ctx);

    /// <summary>The layer on x, or (x null) on the lookup <paramref name="embedded"/> (the SIMD kernel's loop only).</summary>
    private Tensor Forward(Tensor? x, Simd.EmbeddedInput? embedded, ForwardContext ctx)
    {
        RecurrentState? init = null;
        ctx.InitialStates?.TryGetValue(_index, out init);
        var lengths = ctx.Lengths;
        var H = _spec.Units;
        Tensor output;
        Tensor top; // (D, B, H): the top layer's final state per direction
        if (_rnn is LoopRnn loop)
        {
            var (o, h, c) = loop.Forward(x, lengths, init,
                ctx.KeepStepStates ? (l, d, steps) => ctx.StepStates[(_index, l, d)] = steps : null, sequences: _returnSequences, embedded);
            (output, top) = (o!, Top(h, c, ctx));                                       // o: null only without sequences
        }
        else if (x is null) throw new InvalidOperationException("an embedded input needs the SIMD kernel's loop");
        else if (lengths is not null && !ctx.KeepStates && x.device_type == DeviceType.CPU && (_spec.Directions == 1 || _spec.Layers == 1))
        {
            ReportLengthsPath("the padded fused path");
            (output, top) = PaddedForward(x, lengths, init);
        }
        else if (lengths is not null)
        {
            ReportLengthsPath(x.device_type == DeviceType.CPU
                ? "libtorch's packed path (slow on CPU: op by op per step; kernel: Loop is faster)"
                : "libtorch's packed path");
            var T = x.shape[1];
            using var packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first: true, enforce_sorted: false);
            var (packedOut, h, c) = Call(packed, init);
            using (packedOut)
                output = nn.utils.rnn.pad_packed_sequence(packedOut, batch_first: true, total_length: T).Item1; // (B, T, D·H)
            top = Top(h, c, ctx);
        }
        else
        {
            var (o, h, c) = Call(x, init); // (B, T, D·H); h: (L·D, B, H)
            (output, top) = (o, Top(h, c, ctx));
        }

        if (_returnSequences)
        {
            if (_spec.Bidirectional is not Merge merge || merge == Merge.Concat) return output;
            // libtorch aligns the backward direction to forward time: output[:, t, H:] is the
            // backward state after reading t..T, so the halves merge step by step.
            return MergeDirections(output.narrow(-1, 0, H), output.narrow(-1, H, H), merge);
        }
        // last step: the final state of the top layer; for the backward direction that is its
        // state after reading back to t = 1 (Keras semantics), and with lengths each sequence's own end
        return _spec.Bidirectional is Merge m ? MergeDirections(top[0], top[1], m) : top[0];
    }

    /// <summary>Records the final states when asked and returns the top layer's, (D, B, H).</summary>
    private Tensor Top(Tensor h, Tensor? c, ForwardContext ctx)
    {
        if (ctx.KeepStates) ctx.FinalStates[_index] = new RecurrentState(h, c);
        return h.view(_spec.Layers, _spec.Directions, h.shape[1], _spec.Units)[_spec.Layers - 1];
    }

    /// <summary>
    /// Post-padded rows with lengths on the fused kernel without packing. On CPU libtorch runs a packed
    /// sequence cell by cell, op by op, at each step; the unpacked call is one fused kernel call (oneDNN when it was measured), 6–15×
    /// faster at the textbooks' sizes (docs/BENCHMARKS.md). The forward direction reads each sequence's
    /// last token before any padding, so its outputs at real steps are the packed ones and its final
    /// state is its output at the sequence's own last step. The backward direction must start at that
    /// last token: it runs on the rows rotated so that the padding comes first, and its outputs are
    /// rotated back; its final state is then its output at step 1. That second call also computes a
    /// forward direction, unused, so a bidirectional layer costs two fused calls — still far below the
    /// packed path. A stacked bidirectional call would feed the lower layer's unrotated backward outputs
    /// upward, so only single-layer bidirectional calls come here; and neither the lower layers' nor the
    /// cell's final states are gathered, so callers that keep final states take the packed path.
    /// </summary>
    private (Tensor Output, Tensor Top) PaddedForward(Tensor x, Tensor lengths, RecurrentState? init)
    {
        using var scope = NewDisposeScope();
        var H = _spec.Units;
        var T = x.shape[1];
        var lens = lengths.to(x.device).unsqueeze(1);                                   // (B, 1)
        var steps = Kept.Arange(T, x.device).unsqueeze(0);                              // (1, T)
        var padding = (steps >= lens).unsqueeze(-1);                                    // (B, T, 1)
        var (output, _, _) = Call(x, init);
        var lastStep = lens.sub(Kept.One).clamp_min(Kept.Zero).unsqueeze(-1).expand(-1, 1, H); // (B, 1, H)
        var forwardFinal = output.narrow(-1, 0, H).gather(1, lastStep).squeeze(1);      // (B, H)
        if (_spec.Directions == 1)
            return scope.MoveToOuter(output.masked_fill(padding, Kept.Zero), forwardFinal.unsqueeze(0));
        using var length = T.ToScalar();
        var rotated = x.gather(1, steps.Plus(lens).remainder(length).unsqueeze(-1).expand(-1, -1, x.shape[2])); // padding first
        var (outputRotated, _, _) = Call(rotated, init);
        var backward = outputRotated.narrow(-1, H, H).gather(1, steps.Plus(T).sub(lens).remainder(length).unsqueeze(-1).expand(-1, -1, H));
        output = cat([output.narrow(-1, 0, H), backward], -1).masked_fill(padding, Kept.Zero);
        return scope.MoveToOuter(output, stack([forwardFinal, backward.select(1, 0)]));
    }

    private static Tensor MergeDirections(Tensor forward, Tensor backward, Merge merge) => merge switch
    {
        Merge.Concat => cat([forward, backward], -1),
        Merge.Sum => forward.Plus(backward),
        Merge.Mul => forward * backward,
        Merge.Ave => forward.Plus(backward).div(Kept.Two),
        _ => throw new ArgumentOutOfRangeException(nameof(merge)),
    };

    private (Tensor, Tensor, Tensor?) Call(Tensor x, RecurrentState? s)
    {
        switch (_rnn)
        {
            case LSTM lstm:
                var (o, h, c) = Backend.RunLstm(_path, () => lstm.forward(x, s is null ? null : (s.H, s.C ?? zeros_like(s.H))));
                return (o, h, c);
            case GRU gru:
                var (og, hg) = gru.forward(x, s?.H);
                return (og, hg, null);
            case RNN rnn:
                var (or, hr) = rnn.forward(x, s?.H);
                return (or, hr, null);
            default:
                throw new InvalidOperationException("unknown recurrent module");
        }
    }

    private (nn.utils.rnn.PackedSequence, Tensor, Tensor?) Call(nn.utils.rnn.PackedSequence x, RecurrentState? s)
    {
        switch (_rnn)
        {
            case LSTM lstm:
                var (o, h, c) = Backend.RunLstm(_path, () => lstm.call(x, s is null ? null : (s.H, s.C ?? zeros_like(s.H))));
                return (o, h, c);
            case GRU gru:
                var (og, hg) = gru.call(x, s?.H);
                return (og, hg, null);
            case RNN rnn:
                var (or, hr) = rnn.call(x, s?.H);
                return (or, hr, null);
            default:
                throw new InvalidOperationException("unknown recurrent module");
        }
    }
}

internal sealed class DenseModule : LayerModule
{
    private readonly Linear _linear;
    private readonly Activation _activation;

    public DenseModule(DenseLayer spec, long inputWidth) : base("Dense")
    {
        _activation = spec.Activation;
        _linear = nn.Linear(inputWidth, spec.Units);
        register_module("linear", _linear);
    }

    /// <summary>The pre-activation output (logits), for losses that fuse the activation.</summary>
    public Tensor Logits(Tensor x) => _linear.call(x);

    public Activation Activation => _activation;

    public override Tensor Forward(Tensor x, ForwardContext ctx) => Activate(_linear.call(x), _activation);
}

internal sealed class DropoutModule(double rate) : LayerModule("Dropout")
{
    public override Tensor Forward(Tensor x, ForwardContext ctx) =>
        rate > 0 ? nn.functional.dropout(x, rate, training) : x;
}

/// <summary>Drops whole feature channels of a (B, T, C) sequence, the same channels at every step.</summary>
internal sealed class SpatialDropoutModule(double rate) : LayerModule("SpatialDropout")
{
    /// <summary>Whether a forward pass now drops channels (training, a rate above zero).</summary>
    public bool Drops => training && rate > 0;

    /// <summary>A fresh (B, 1, C) mask, kept channels 1 / (1 − rate), dropped 0.</summary>
    public Tensor Mask(long B, long C, ScalarType dtype, Device device)
    {
        // the mask scaled first: one pass over x forward and one backward, not a product and then a division
        var keep = empty(B, 1, C, dtype: dtype, device: device).bernoulli_(1 - rate);
        using var kept = (1 - rate).ToScalar();
        return keep.div_(kept);
    }

    public override Tensor Forward(Tensor x, ForwardContext ctx)
    {
        if (!Drops) return x;
        using var keep = Mask(x.shape[0], x.shape[2], x.dtype, x.device);
        return x * keep;
    }
}

/// <summary>Additive attention pooling: e_t = vᵀ tanh(W h_t + b), α = softmax over real steps, Σ α_t h_t.</summary>
internal sealed class AttentionModule : LayerModule
{
    private readonly Linear _w;
    private readonly Linear _v;

    public AttentionModule(long inputWidth, long units) : base("Attention")
    {
        _w = nn.Linear(inputWidth, units);
        _v = nn.Linear(units, 1, hasBias: false);
        register_module("w", _w);
        register_module("v", _v);
    }

    public override Tensor Forward(Tensor x, ForwardContext ctx)
    {
        var scores = _v.call(_w.call(x).tanh()).squeeze(-1); // (B, T)
        if (ctx.Lengths is Tensor lengths)
        {
            var steps = Kept.Arange(x.shape[1], x.device).unsqueeze(0);              // (1, T)
            var padding = steps >= lengths.to(x.device).unsqueeze(1);                 // (B, T)
            scores = scores.masked_fill(padding, Kept.NegativeInfinity);
        }
        var alpha = scores.softmax(-1);                                               // (B, T)
        ctx.AttentionWeights = alpha;
        return (alpha.unsqueeze(-1) * x).sum(1);                                      // (B, D)
    }
}
