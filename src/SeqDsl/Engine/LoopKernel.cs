using SeqDsl.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>
/// The per-time-step kernel: unrolls a cell's step (state, x_t) → state′ over time, for cells
/// libtorch has no fused kernel for (linear RNN, GRU reset-before, peephole and layer-norm LSTMs,
/// user-defined cells) and for any cell with kernel: Loop. Same contract as the fused kernels:
/// stacking, bidirectional (backward runs over each sequence's own real steps), lengths (state
/// frozen after a sequence's end, zero outputs on padding), initial state, inter-layer dropout.
/// The input projection of all steps is one matrix product before the loop, unbound once into
/// steps. Parameters carry libtorch's names and layout.
/// </summary>
internal sealed class LoopRnn : nn.Module
{
    private readonly CellSpec _cell;
    private readonly int _units, _layers, _directions, _gates;
    private readonly double _dropout;
    private readonly Bias _bias;
    private readonly Dictionary<string, Parameter> _p = [];

    private readonly UserCellKernel? _user;
    private readonly Simd.SimdCell? _simd;

    /// <summary>The SIMD kernel's form of the cell when this layer runs on it (kernel: Simd), else null.</summary>
    public Simd.SimdCell? SimdCell => _simd;

    public LoopRnn(CellSpec cell, long input, int units, int layers, bool bidirectional, double dropout, Bias bias,
        UserCellKernel? user = null, bool simd = false) : base(simd ? "SimdRnn" : "LoopRnn")
    {
        _user = user;
        _simd = simd ? Simd.SimdRecurrence.CellOf(cell) ?? throw new ArgumentException($"the SIMD kernel cannot run {cell.Name}") : null;
        _cell = cell;
        _units = units;
        _layers = layers;
        _directions = bidirectional ? 2 : 1;
        _dropout = dropout;
        _bias = bias;
        _gates = RnnParameters.Gates(cell);
        var bound = 1.0 / Math.Sqrt(units); // libtorch's default: U(−1/√H, 1/√H) for every parameter
        for (var l = 0; l < layers; l++)
            for (var d = 0; d < _directions; d++)
            {
                var sfx = Suffix(l, d);
                var inWidth = l == 0 ? input : (long)_directions * units;
                if (cell is UserCell uc)
                {
                    foreach (var p in uc.Parameters)
                        Add(p.Name + sfx, p.Shape.Select(dim => dim.Size(inWidth, units)).ToArray(), bound);
                    continue;
                }
                Add("weight_ih" + sfx, [_gates * units, inWidth], bound);
                Add("weight_hh" + sfx, [_gates * units, units], bound);
                if (bias != Bias.None) Add("bias_ih" + sfx, [_gates * units], bound);
                if (bias == Bias.Torch || (bias == Bias.Keras && cell is GruCell { ResetAfter: true }))
                    Add("bias_hh" + sfx, [_gates * units], bound);
                if (cell is LstmCell { Peephole: true })
                    Add("weight_peephole" + sfx, [3 * units], bound);                  // w_ci, w_cf, w_co
                if (cell is LstmCell { LayerNorm: true })
                {
                    // gains start at 1 and shifts at 0, as in Ba et al.
                    AddConstant("ln_ih_weight" + sfx, [4 * units], 1);
                    AddConstant("ln_ih_bias" + sfx, [4 * units], 0);
                    AddConstant("ln_hh_weight" + sfx, [4 * units], 1);
                    AddConstant("ln_hh_bias" + sfx, [4 * units], 0);
                    AddConstant("ln_c_weight" + sfx, [units], 1);
                    AddConstant("ln_c_bias" + sfx, [units], 0);
                }
            }
    }

    private static string Suffix(int layer, int direction) => RnnParameters.Suffix(layer, direction);

    private void Add(string name, long[] shape, double bound)
    {
        var p = new Parameter(empty(shape).uniform_(-bound, bound));
        _p[name] = p;
        register_parameter(name, p);
    }

    private void AddConstant(string name, long[] shape, double value)
    {
        using var fill = value.ToScalar();
        var p = new Parameter(full(shape, fill));
        _p[name] = p;
        register_parameter(name, p);
    }

    // by name from the module, not from _p: Module.to(dtype or device) replaces the registered parameters
    private Tensor? P(string name) => _p.ContainsKey(name) ? get_parameter(name) : null;

    /// <summary>x: (B, T, I). Returns output (B, T, D·H) and final states (L·D, B, H). Without
    /// <paramref name="sequences"/> the caller reads only the final states: the top layer's output may then be null
    /// (the SIMD kernel neither writes it nor reads its gradient). <paramref name="embedded"/>, with x null: the input as
    /// the embedding lookup that makes it, which the SIMD kernel makes itself (<see cref="TakesEmbedded"/>).</summary>
    public (Tensor? output, Tensor h, Tensor? c) Forward(Tensor? x, Tensor? lengths, RecurrentState? init,
        Action<int, int, Tensor[]>? keepSteps = null, bool sequences = true, Simd.EmbeddedInput? embedded = null)
    {
        var B = embedded?.Batch ?? x!.shape[0];
        var T = embedded?.Steps ?? x!.shape[1];
        var device = (embedded?.Table ?? x!).device;
        var dtype = (embedded?.Table ?? x!).dtype;
        var lstm = _cell.StateArity == 2;
        // the batch's lengths as the SIMD kernel reads them (a local: concurrent forwards share the module)
        var simdLengths = _simd is not null && lengths is not null
            ? lengths.to(ScalarType.Int32).cpu().data<int>().ToArray().Select(l => (int)Math.Clamp(l, 0, T)).ToArray()
            : null;
        Tensor? mask = null, reverse = null;
        if (lengths is not null)
        {
            var len = lengths.to(device);
            var steps = Kept.Arange(T, device).unsqueeze(0);                          // (1, T)
            mask = (steps < len.unsqueeze(1)).unsqueeze(-1);                           // (B, T, 1)
            // index that reverses each sequence within its own length; padding stays in place
            reverse = where(steps < len.unsqueeze(1), len.unsqueeze(1).sub(Kept.One).sub(steps), steps); // (B, T)
        }
        var hs = new List<Tensor>();
        var cs = new List<Tensor>();
        Tensor? input = x;
        for (var l = 0; l < _layers; l++)
        {
            var outs = new List<Tensor>();
            for (var d = 0; d < _directions; d++)
            {
                var k = l * _directions + d;
                var h0 = init?.H[k] ?? zeros(B, _units, dtype: dtype, device: device);
                var c0 = lstm ? init?.C?[k] ?? zeros(B, _units, dtype: dtype, device: device) : null;
                var (o, h, c, steps) = l == 0 && embedded is not null
                    ? RunSimd(_simd!.Value, null, Suffix(l, d), h0, c0, simdLengths, sequences || l < _layers - 1, embedded)
                    : RunDirection(d == 0 ? input! : Reverse(input!, reverse), Suffix(l, d), mask, h0, c0, keepSteps is not null,
                        simdLengths, sequence: sequences || l < _layers - 1);
                if (keepSteps is not null) keepSteps(l, d, steps!); // each direction's steps in its own reading order
                if (o is not null) outs.Add(d == 0 ? o : Reverse(o, reverse));
                hs.Add(h);
                if (c is not null) cs.Add(c);
            }
            input = outs.Count == 0 ? null : outs.Count == 1 ? outs[0] : cat(outs, -1);  // (B, T, D·H)
            if (l < _layers - 1 && _dropout > 0) input = nn.functional.dropout(input!, _dropout, training);
        }
        return (input, stack(hs), lstm ? stack(cs) : null);
    }

    private (Tensor output, Tensor h, Tensor? c, Tensor[]? steps) RunUser(UserCell cell, Tensor x, string sfx, Tensor? mask, Tensor h, Tensor? c, bool keep)
    {
        var ps = new CellParameters(cell.Parameters.ToDictionary(p => p.Name, p => P(p.Name + sfx)!));
        var input = _user!.Project?.Invoke(x, ps) ?? x;                                 // (B, T, K), once
        var T = x.shape[1];
        var outputs = new Tensor[T];
        var kept = keep ? new Tensor[T] : null;
        Tensor[] state = cell.Arity == 2 ? [h, c!] : [h];
        var inputSteps = input.unbind(1);
        for (var t = 0; t < T; t++)
        {
            var next = _user.Step(inputSteps[t], state, ps);
            if (next.Length != cell.Arity)
                throw new SeqDslException(ErrorKind.Shape, $"The step function of {cell.CellName} returned {next.Length} state tensors.")
                { Received = next.Length.ToString(), Expected = cell.Arity.ToString() };
            if (keep)
            {
                next[0].retain_grad();
                kept![t] = next[0];
            }
            if (mask is not null)
            {
                var m = mask.select(1, t);                                             // (B, 1)
                outputs[t] = next[0] * m;
                state = state.Zip(next, (old, @new) => where(m, @new, old)).ToArray();
            }
            else
            {
                outputs[t] = next[0];
                state = next;
            }
        }
        return (stack(outputs, 1), state[0], cell.Arity == 2 ? state[1] : null, kept);
    }

    private static Tensor Reverse(Tensor x, Tensor? reverse) =>
        reverse is null ? x.flip(1) : x.gather(1, reverse.unsqueeze(-1).expand(x.shape));

    /// <summary>Whether <see cref="Forward"/> takes its input as an embedding lookup (<see cref="Simd.EmbeddedInput"/>):
    /// on the SIMD kernel, one direction, no per-step states kept, a float32 CPU table.</summary>
    public bool TakesEmbedded(Tensor table, bool keepSteps) =>
        _simd is not null && _directions == 1 && !keepSteps && table.dtype == ScalarType.Float32 && table.device_type == DeviceType.CPU;

    /// <summary>One direction of one layer on the SIMD kernel, whose input is x or, with x null, the lookup that makes
    /// it; the output is null when <paramref name="sequence"/> is false.</summary>
    private (Tensor? output, Tensor h, Tensor? c, Tensor[]? steps) RunSimd(Simd.SimdCell simdCell, Tensor? x, string sfx, Tensor h, Tensor? c,
        int[]? simdLengths, bool sequence, Simd.EmbeddedInput? embedded = null)
    {
        var (bias, bhh) = InputBias(sfx);
        // the kernel projects the input itself; its output is time-major
        var (so, sh, sc) = Simd.SimdRecurrence.Run(simdCell, x, P("weight_ih" + sfx)!, P("weight_hh" + sfx)!, bias,
            _cell is GruCell { ResetAfter: true } ? bhh : null, h, c, simdLengths, sequence, embedded);
        return (so?.transpose(0, 1), sh, sc, null);
    }

    /// <summary>The bias the input projection adds — every additive bias of direction <paramref name="sfx"/> in one
    /// vector, except GRU reset-after's b_hh, which stays inside the step (reset-after multiplies its n part by r) —
    /// and b_hh itself.</summary>
    private (Tensor? Input, Tensor? Bhh) InputBias(string sfx)
    {
        var bih = P("bias_ih" + sfx);
        var bhh = P("bias_hh" + sfx);
        return (bih is null ? bhh : bhh is null || _cell is GruCell { ResetAfter: true } ? bih : bih.Plus(bhh), bhh);
    }

    /// <summary>One direction of one layer; the output may be null when <paramref name="sequence"/> is false (the
    /// SIMD kernel's).</summary>
    private (Tensor? output, Tensor h, Tensor? c, Tensor[]? steps) RunDirection(Tensor x, string sfx, Tensor? mask, Tensor h, Tensor? c, bool keep,
        int[]? simdLengths = null, bool sequence = true)
    {
        if (_cell is UserCell user) return RunUser(user, x, sfx, mask, h, c, keep);
        // the SIMD kernel runs the whole recurrence in one call, in float32 on the CPU; per-step states for diagnostics
        // need the loop's graph, and a network moved to float64 (a reference) runs the loop's ops
        if (_simd is Simd.SimdCell simdCell && !keep && x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU && x.shape[0] > 0)
            return RunSimd(simdCell, x, sfx, h, c, simdLengths, sequence);
        var wih = P("weight_ih" + sfx)!;
        var whh = P("weight_hh" + sfx)!;
        var H = _units;
        var resetBefore = _cell is GruCell { ResetAfter: false };
        // every additive bias goes into the one input projection before the loop (InputBias)
        var (bias, bhh) = InputBias(sfx);
        var peep = P("weight_peephole" + sfx);
        var layerNorm = _cell is LstmCell { LayerNorm: true };
        long[] gatesShape = [4L * H];
        // layer norm normalises x W_x before the bias is added; still one product for all steps
        var proj = layerNorm
            ? nn.functional.layer_norm(nn.functional.linear(x, wih), gatesShape, P("ln_ih_weight" + sfx), P("ln_ih_bias" + sfx))
                  .Plus(bias ?? zeros(1, device: x.device))
            : nn.functional.linear(x, wih, bias);                                      // (B, T, G·H), one product
        var whhT = whh.t();                                                            // (H, G·H)
        var T = x.shape[1];
        var outputs = new Tensor[T];
        var kept = keep ? new Tensor[T] : null;
        var whhRzT = resetBefore ? whh.narrow(0, 0, 2 * H).t() : null;
        var whhNT = resetBefore ? whh.narrow(0, 2 * H, H).t() : null;
        // once per call, not per step: layer-norm parameters and the three peephole vectors
        var (lnHhW, lnHhB) = layerNorm ? (P("ln_hh_weight" + sfx), P("ln_hh_bias" + sfx)) : (null, null);
        var (lnCW, lnCB) = layerNorm ? (P("ln_c_weight" + sfx), P("ln_c_bias" + sfx)) : (null, null);
        var (peepI, peepF, peepO) = peep is null ? (null, null, null) : (peep.narrow(0, 0, H), peep.narrow(0, H, H), peep.narrow(0, 2 * H, H));
        // one unbind, not T selects: each select's backward would materialise a zero (B, T, G·H) gradient
        var projSteps = proj.unbind(1);
        for (var t = 0; t < T; t++)
        {
            var p = projSteps[t];                                                      // (B, G·H)
            Tensor hNew;
            Tensor? cNew = null;
            switch (_cell)
            {
                case RnnCell rnn:
                    hNew = LayerModule.Activate(addmm(p, h, whhT, 1, 1), rnn.Activation);   // p + h W_hh^T
                    break;
                case LstmCell when peep is null && !layerNorm:
                {
                    var gates = addmm(p, h, whhT, 1, 1);                               // (B, 4H): i, f, g, o
                    var sig = gates.sigmoid();
                    cNew = (sig.narrow(1, H, H) * c!).Plus(sig.narrow(1, 0, H) * gates.narrow(1, 2 * H, H).tanh());
                    hNew = sig.narrow(1, 3 * H, H) * cNew.tanh();
                    break;
                }
                case LstmCell:
                {
                    var recurrent = h.matmul(whhT);                                    // (B, 4H)
                    if (layerNorm)
                        recurrent = nn.functional.layer_norm(recurrent, gatesShape, lnHhW, lnHhB);
                    var gates = p.Plus(recurrent);
                    var i = gates.narrow(1, 0, H);
                    var f = gates.narrow(1, H, H);
                    var o = gates.narrow(1, 3 * H, H);
                    if (peepI is not null)
                    {
                        // peepholes: the input and forget gates see c_{t−1}, the output gate sees c_t
                        i = i.Plus(peepI * c!);
                        f = f.Plus(peepF! * c!);
                    }
                    cNew = (f.sigmoid() * c!).Plus(i.sigmoid() * gates.narrow(1, 2 * H, H).tanh());
                    if (peepO is not null) o = o.Plus(peepO * cNew);
                    var cOut = layerNorm ? nn.functional.layer_norm(cNew, [H], lnCW, lnCB) : cNew;
                    hNew = o.sigmoid() * cOut.tanh();
                    break;
                }
                case GruCell when !resetBefore:
                {
                    var ph = nn.functional.linear(h, whh, bhh);                        // (B, 3H): r, z, n
                    var rz = p.narrow(1, 0, 2 * H).Plus(ph.narrow(1, 0, 2 * H)).sigmoid();
                    var z = rz.narrow(1, H, H);
                    var n = p.narrow(1, 2 * H, H).Plus(rz.narrow(1, 0, H) * ph.narrow(1, 2 * H, H)).tanh();
                    hNew = (z.OneMinus() * n).Plus(z * h);
                    break;
                }
                default:
                {
                    var rz = addmm(p.narrow(1, 0, 2 * H), h, whhRzT!, 1, 1).sigmoid();      // r, z
                    var z = rz.narrow(1, H, H);
                    var n = addmm(p.narrow(1, 2 * H, H), rz.narrow(1, 0, H) * h, whhNT!, 1, 1).tanh();
                    hNew = (z * h).Plus(z.OneMinus() * n);
                    break;
                }
            }
            if (keep)
            {
                hNew.retain_grad();
                kept![t] = hNew;
            }
            if (mask is not null)
            {
                var m = mask.select(1, t);                                             // (B, 1)
                h = where(m, hNew, h);
                if (cNew is not null) c = where(m, cNew, c!);
                outputs[t] = hNew * m;
            }
            else
            {
                h = hNew;
                c = cNew;
                outputs[t] = hNew;
            }
        }
        return (stack(outputs, 1), h, c, kept);                                        // (B, T, H)
    }
}
