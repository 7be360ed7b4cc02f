using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SeqDsl.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// A recurrent layer's input given as the embedding lookup that makes it, for the SIMD kernel to make itself: each
/// step's input rows are the table's rows at the ids, copied (times the channel scale) where the kernel copies its
/// inputs beside the states, and the table's gradient is added from the kernel's input gradient as
/// <see cref="SimdEmbedding"/>'s backward adds it — the same floats, without the (B, T, D) sequence written and read
/// back in between. <paramref name="Table"/>: the embedding's (V, D) weight; <paramref name="Ids"/>: (B, T) int64;
/// <paramref name="Padding"/>: the row whose gradient stays zero (−1: none); <paramref name="Scale"/>: (B, D) float32
/// (a SpatialDropout's scaled mask, no gradient) or null.
/// </summary>
internal sealed record EmbeddedInput(Tensor Table, Tensor Ids, long Padding, Tensor? Scale)
{
    public long Batch => Ids.shape[0];
    public long Steps => Ids.shape[1];
}

/// <summary>
/// The SIMD kernel as a libtorch autograd function: one direction of one layer over the whole sequence, its input
/// projection included (the kernel multiplies [h | x] by [W_hh | W_ih]ᵀ each step), returning the gradients of the
/// input, both weight matrices, the biases and the initial states. The rest of the engine (stacking, directions, lengths, dropout, bias layouts) is the loop kernel's
/// (<see cref="LoopRnn"/>), which calls this instead of its per-step ops when the layer's kernel is Simd.
/// </summary>
internal static class SimdRecurrence
{
    /// <summary>The cell's SIMD form, or null when the kernel cannot run it.</summary>
    public static SimdCell? CellOf(CellSpec cell) => cell switch
    {
        LstmCell { Peephole: false, LayerNorm: false } => SimdCell.Lstm,
        GruCell { ResetAfter: true } => SimdCell.GruResetAfter,
        GruCell => SimdCell.GruResetBefore,
        RnnCell { Activation: Activation.Tanh } => SimdCell.RnnTanh,
        RnnCell { Activation: Activation.Relu } => SimdCell.RnnRelu,
        RnnCell { Activation: Activation.Linear } => SimdCell.RnnLinear,
        RnnCell { Activation: Activation.Sigmoid } => SimdCell.RnnSigmoid,
        _ => null,
    };

    /// <summary>
    /// One direction of one layer: x (B, T, I), libtorch's weight_ih (G·H, I) and weight_hh (G·H, H), the input-side
    /// bias (every bias that adds before the nonlinearity; null: none), GRU reset-after's b_hh (else null), the
    /// initial state (B, H) and cell; or, instead of x (null), the lookup that makes it (<paramref name="embedded"/>: the
    /// table's gradient is then returned to the table). Returns the output time-major (T, B, H) — null when <paramref name="sequence"/>
    /// is false (the caller reads only the final states: the kernel then neither writes the output nor reads its
    /// gradient) —, the final state (B, H) and, for an LSTM, the final cell (B, H).
    /// </summary>
    public static (Tensor? Output, Tensor H, Tensor? C) Run(SimdCell cell, Tensor? x, Tensor wih, Tensor whh, Tensor? bias, Tensor? bhh,
        Tensor h0, Tensor? c0, int[]? lengths, bool sequence = true, EmbeddedInput? embedded = null)
    {
        // the weights and biases (and an embedded input's table) go in as ParameterViews: their gradients kept, not copied
        using var table = ParameterView.Of(embedded?.Table);
        // the input too: a leaf input's gradient (a benchmark's, or a user's who asks for it) is then kept, not copied,
        // when it lies as the input does (the backward writes a contiguous batch-major input's gradient batch-major; a
        // strided one's gradient comes back contiguous, which autograd still copies into the input's strides)
        using var input = InputGradientAsInput ? ParameterView.Of(x) : null;
        using var w1 = ParameterView.Of(wih)!;
        using var w2 = ParameterView.Of(whh)!;
        using var b1 = ParameterView.Of(bias);
        using var b2 = ParameterView.Of(bhh);
        if (embedded is not null) _embeddedRuns++;
        var r = SimdFunction.apply(table ?? input ?? x!, w1, w2, b1!, b2!, h0, c0!, lengths!, cell, sequence,
            embedded?.Ids!, embedded?.Scale?.contiguous()!, embedded?.Padding ?? -1L);
        return (sequence ? r[0] : null, r[1], cell == SimdCell.Lstm ? r[2] : null);
    }

    [ThreadStatic] private static int _embeddedRuns;

    /// <summary>Whether the input goes in through a view and a batch-major input's gradient is written batch-major, so
    /// that a leaf input's gradient (the layer benchmarks', or a user's who asks for it) is kept as its <c>.grad</c>
    /// rather than copied by autograd into the input's layout, and an upstream op receives a contiguous gradient (E7
    /// SimpleRnn's layer: the copy was 8 % of its samples; Intel Xeon @ 2.00GHz, avx512f). Off only for an A/B
    /// (<c>bench phases --input-grad-ab</c>), process-wide; the same floats either way.</summary>
    internal static bool InputGradientAsInput { get; set; } = true;

    private static readonly AsyncLocal<bool?> BlockMajorOverride = new();

    /// <summary>Whether a call lays out its own buffers block-major (RecurrentKernels.BlockRows) where it can;
    /// set false in an execution context to compare with time-major (<c>bench phases --layout-ab</c>). The same floats
    /// either way.</summary>
    internal static bool BlockMajor
    {
        get => BlockMajorOverride.Value ?? true;
        set => BlockMajorOverride.Value = value;
    }

    /// <summary>Calls so far on this thread that made an embedding lookup in the kernel (for tests and the benchmark:
    /// that the path ran).</summary>
    internal static int EmbeddedRuns => _embeddedRuns;

    /// <summary>Keeps tensors a kernel reads through raw pointers alive until this call (null entries allowed).</summary>
    private static void KeepAlive(params Tensor?[] tensors) => GC.KeepAlive(tensors);

    private static void Require(bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException("SIMD kernel: " + what);
    }

    internal static int Gates(SimdCell cell) => cell switch
    {
        SimdCell.Lstm => 4,
        SimdCell.GruResetAfter or SimdCell.GruResetBefore => 3,
        _ => 1,
    };

    internal static unsafe float* Ptr(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>A (B, T, F) float32 tensor as rows of F contiguous floats: the tensor itself when it is contiguous or
    /// the time-major transpose of a contiguous one (what a lower layer or this kernel's backward hands on), else a
    /// contiguous copy. Row b, step t starts at Data + b·StrideB + t·StrideT.</summary>
    internal static unsafe (Tensor Owner, long StrideB, long StrideT) Rows(Tensor x)
    {
        if (x.is_contiguous()) return (x, x.stride(0), x.stride(1));
        if (x.stride(2) == 1 && x.transpose(0, 1).is_contiguous()) return (x.transpose(0, 1), x.stride(0), x.stride(1));
        var c = x.contiguous();
        return (c, c.stride(0), c.stride(1));
    }

    /// <summary>How <see cref="Blocks"/> splits <paramref name="rows"/> rows: blocks of Per rows (multiples of 4 where
    /// possible), one per thread libtorch may use, at most one per 8 rows.</summary>
    internal static (int Count, int Per) Split(int rows)
    {
        if (rows == 0) return (0, 0);
        var threads = Math.Max(1, Math.Min(torch.get_num_threads(), rows / 8));
        var per = (rows + threads - 1) / threads;
        per = (per + 3) / 4 * 4;
        return ((rows + per - 1) / per, per);
    }

    /// <summary>Runs body(block, r0, r1, scratch) over the blocks of a <see cref="Split"/> of <paramref name="rows"/>
    /// rows (computed once by the caller: per-block buffers are sized by it), in parallel (<see cref="Team"/>).</summary>
    internal static unsafe void Blocks(int rows, (int Count, int Per) split, int scratchPerRow, int scratchFixed, Action<int, int, int, IntPtr> body)
    {
        var (blocks, per) = split;
        if (blocks == 0) return;
        void Run(int i)
        {
            int r0 = i * per, r1 = Math.Min(rows, r0 + per);
            var n = (nuint)((r1 - r0) * scratchPerRow + scratchFixed) * sizeof(float);
            var scratch = NativeMemory.AlignedAlloc(n, 64);
            try
            {
                using (Denormals.Flush()) body(i, r0, r1, (IntPtr)scratch);
            }
            finally { NativeMemory.AlignedFree(scratch); }
        }
        Team.Run(blocks, Run);
    }

    /// <summary>One kernel call: pins the lengths, packs the weights its products read, and runs
    /// <paramref name="body"/> over blocks of rows (<see cref="Blocks"/>).</summary>
    private static unsafe void Launch(RecurrentKernels.Buffers buf, int[]? lengths, bool backward, (int Count, int Per) split,
        int scratchPerRow, int scratchFixed, Action<RecurrentKernels.Buffers, int, int, int, IntPtr> body)
    {
        fixed (int* len = lengths)                                                         // null when there are no lengths
        {
            buf.Len = len;
            var packed = Packed.Of(ref buf, buf.H, buf.I, buf.G * buf.H, backward);
            try
            {
                var ready = buf;
                Blocks(buf.B, split, scratchPerRow, scratchFixed, (i, r0, r1, s) => body(ready, i, r0, r1, s));
            }
            finally
            {
                packed.Free();
            }
        }
    }

    /// <summary>Packed copies of the weights one call's products read (SmallGemm.Pack), in native memory.</summary>
    private unsafe struct Packed
    {
        private float* _a, _b;

        public static Packed Of(ref RecurrentKernels.Buffers buf, int H, int I, int GH, bool backward)
        {
            var p = new Packed();
            if (!SmallGemm.UsesPacked) return p;                                            // no path here reads a packed copy
            if (backward)
            {
                p._a = Alloc(SmallGemm.PackedSize(GH, H));
                try { p._b = Alloc(SmallGemm.PackedSize(GH, I)); }
                catch { p.Free(); throw; }
                SmallGemm.Pack(GH, H, buf.W, H, p._a);
                SmallGemm.Pack(GH, I, buf.Wih, I, p._b);
                buf.WP = p._a;
                buf.WihP = p._b;
            }
            else
            {
                p._a = Alloc(SmallGemm.PackedSize(H + I, GH));
                SmallGemm.Pack(H + I, GH, buf.WcatT, GH, p._a);
                buf.WcatTP = p._a;
            }
            return p;
        }

        private static float* Alloc(long floats) => (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);

        public void Free()
        {
            if (_a != null) NativeMemory.AlignedFree(_a);
            if (_b != null) NativeMemory.AlignedFree(_b);
            _a = _b = null;
        }
    }

    /// <summary>dW_hh and dW_ih as products over every (step, row) of the kept pre-activation gradients and the saved
    /// [h | x] rows (T, B, H + I) (GRU reset-before: W_hh's n rows meet r ⊙ h, <paramref name="rh"/>) — time-major, as
    /// the forward lays them out for layers whose weight gradient is not accumulated in the loop.</summary>
    private static (Tensor Whh, Tensor Wih) WeightGradients(SimdCell cell, Tensor hx, Tensor dpre, Tensor? dph, Tensor? rh, int H, int I)
    {
        long rows = hx.shape[0] * hx.shape[1], GH = dpre.shape[2];
        var flat = hx.reshape(rows, H + I);
        var dp = dpre.view(rows, GH);                                                              // rows may be 0 (T = 0)
        switch (cell)
        {
            case SimdCell.GruResetAfter:
                return (dph!.view(rows, GH).t().mm(flat.narrow(1, 0, H)), dp.t().mm(flat.narrow(1, H, I)));
            case SimdCell.GruResetBefore:
                return (cat([dp.narrow(1, 0, 2 * H).t().mm(flat.narrow(1, 0, H)), dp.narrow(1, 2 * H, H).t().mm(rh!.view(rows, H))], 0),
                    dp.t().mm(flat.narrow(1, H, I)));
            default:
                var dW = dp.t().mm(flat);                                                          // (G·H, H + I)
                return (dW.narrow(1, 0, H).contiguous(), dW.narrow(1, H, I).contiguous());
        }
    }

    /// <summary>(n, R, C) contiguous partials summed over the first axis, element by element in partial order
    /// (((p0 + p1) + p2) + …).</summary>
    internal static unsafe Tensor SumPartials(Tensor partials)
    {
        Require(partials.dtype == ScalarType.Float32 && partials.dim() == 3 && partials.shape[0] >= 1 && partials.is_contiguous(),
            "the partials must be one or more contiguous float32 (n, R, C)");
        long n = partials.shape[0], size = partials.shape[1] * partials.shape[2];
        var sum = empty(partials.shape[1], partials.shape[2], dtype: ScalarType.Float32);
        float* p = Ptr(partials), s = Ptr(sum);
        long e = 0;
        if (SimdMath.UseAvx2)
            for (; e + 8 <= size; e += 8)
            {
                var v = Avx.LoadVector256(p + e);
                for (long j = 1; j < n; j++) v = Avx.Add(v, Avx.LoadVector256(p + j * size + e));
                Avx.Store(s + e, v);
            }
        for (; e < size; e++)
        {
            var v = p[e];
            for (long j = 1; j < n; j++) v += p[j * size + e];
            s[e] = v;
        }
        GC.KeepAlive(partials);
        return sum;
    }

    private sealed class SimdFunction : autograd.MultiTensorFunction<SimdFunction>
    {
        public override string Name => "SeqDslSimdRecurrence";

        public override unsafe List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var cell = (SimdCell)vars[8];
            var sequence = (bool)vars[9];
            var lengths = vars[7] as int[];
            var x = (Tensor)vars[0];                                                       // or the embedding's table
            var ids = vars[10] as Tensor;                                                  // (B, T) when x is the table
            var scale = vars[11] as Tensor;
            var padding = (long)vars[12];
            var wih = ((Tensor)vars[1]).contiguous();
            var whh = ((Tensor)vars[2]).contiguous();
            var bias = (vars[3] as Tensor)?.contiguous();
            var bhh = (vars[4] as Tensor)?.contiguous();
            var h0 = ((Tensor)vars[5]).contiguous();
            var c0 = (vars[6] as Tensor)?.contiguous();
            int B = (int)(ids ?? x).shape[0], T = (int)(ids ?? x).shape[1], I = (int)x.shape[^1], H = (int)h0.shape[1], G = Gates(cell), GH = G * H;
            Require(x.dtype == ScalarType.Float32 && x.device_type == DeviceType.CPU, "the input is not float32 on the CPU");
            Require(ids is null || (ids.dtype == ScalarType.Int64 && ids.dim() == 2 && x.dim() == 2 && x.is_contiguous()
                                    && (scale is null || (scale.dtype == ScalarType.Float32 && scale.shape.SequenceEqual(new long[] { B, I })))),
                "an embedded input needs int64 (B, T) ids, a contiguous (V, D) table and a float32 (B, D) scale");
            // an embedded input: the ids in step order, each checked against the table
            var flat = ids is null ? null : SimdEmbedding.TimeMajor(ids);
            var pid = flat is null ? null : SimdEmbedding.CheckIds(flat, x.shape[0]);
            foreach (var (t, rows, cols, name) in new (Tensor?, long, long, string)[]
                         { (wih, GH, I, "weight_ih"), (whh, GH, H, "weight_hh"), (h0, B, H, "h0"), (c0, B, H, "c0") })
                if (t is not null)
                    Require(t.dtype == ScalarType.Float32 && t.device_type == DeviceType.CPU && t.shape.SequenceEqual(new[] { rows, cols }),
                        $"{name} is {t.dtype} [{string.Join(", ", t.shape)}] on {t.device_type}, not float32 [{rows}, {cols}] on the CPU");
            foreach (var (t, name) in new (Tensor?, string)[] { (bias, "bias"), (bhh, "bias_hh") })
                if (t is not null)
                    Require(t.dtype == ScalarType.Float32 && t.shape.SequenceEqual(new long[] { GH }), $"{name} is not float32 [{GH}]");
            var lstm = cell == SimdCell.Lstm;
            Require(!lstm || c0 is not null, "an LSTM needs its initial cell");
            Require(lengths is null || lengths.Length == B, $"{lengths?.Length} lengths for {B} rows");
            var (xData, xB, xT) = ids is null ? Rows(x) : (x, 0, 0);                      // the kernel copies rows of I floats
            // hx, gates, aux1, aux2: the kernel's own, saved for its backward; with more than one block of rows, each
            // block's rows of every step lie together (block-major: RecurrentKernels.BlockRows) — except when the weight
            // gradient is one product after the loop, which reads hx time-major
            var split = Split(B);
            var blockMajor = BlockMajor && RecurrentKernels.GradientInLoop(H, I, G);
            var hx = empty(T + 1, B, H + I, dtype: ScalarType.Float32);                   // filled by the kernel, step by step
            var wcatT = cat([whh, wih], 1).t().contiguous();                               // (H + I, G·H)
            var output = empty(sequence ? T : 0, B, H, dtype: ScalarType.Float32);         // not asked for: an empty stand-in
            var hT = empty(B, H, dtype: ScalarType.Float32);
            var cT = lstm ? empty(B, H, dtype: ScalarType.Float32) : null;
            var rnn = G == 1;
            var gates = rnn ? null : empty(T, B, GH, dtype: ScalarType.Float32);
            var aux1 = rnn ? null : empty(T, B, H, dtype: ScalarType.Float32);
            var aux2 = lstm ? empty(T, B, H, dtype: ScalarType.Float32) : null;
            Launch(new RecurrentKernels.Buffers
                {
                    B = B, T = T, H = H, I = I, G = G,
                    HX = Ptr(hx), X = ids is not null || B * T * I == 0 ? null : Ptr(xData), XB = xB, XT = xT,
                    Ids = pid, Table = ids is null ? null : Ptr(x), Scale = scale is null ? null : Ptr(scale),
                    WcatT = Ptr(wcatT), W = Ptr(whh), Wih = Ptr(wih),
                    Bias = bias is null ? null : Ptr(bias), Bhh = bhh is null ? null : Ptr(bhh),
                    H0 = Ptr(h0), C0 = c0 is null ? null : Ptr(c0),
                    Out = sequence ? Ptr(output) : null, HT = Ptr(hT), CT = cT is null ? null : Ptr(cT),
                    Gates = gates is null ? null : Ptr(gates), Aux1 = aux1 is null ? null : Ptr(aux1), Aux2 = aux2 is null ? null : Ptr(aux2),
                    BlockMajor = blockMajor,
                }, lengths, backward: false, split, 2 * H, RecurrentKernels.ForwardScratch(cell, 0, H),
                (b, _, r0, r1, s) => RecurrentKernels.Forward(cell, b, r0, r1, (float*)s));
            // the kernel read and wrote through pointers into these: alive until it returned
            KeepAlive(xData, flat, scale, wcatT, wih, whh, bias, bhh, h0, c0, hx, output, hT, cT, gates, aux1, aux2);
            ctx.save_for_backward([wih, whh, hx, gates!, aux1!, aux2!, c0!, flat!, scale!]);
            if (ids is not null) ctx.save_data("table", (Rows: x.shape[0], Padding: padding));
            ctx.save_data("cell", cell);
            ctx.save_data("layout", (Split: split, BlockMajor: blockMajor));           // the backward reads hx & co. as written
            // the input's gradient is written as the input lies when that is batch-major (B, T, I), as a leaf input or an
            // upstream layer's batch-first output is: a time-major one, handed back transposed, was copied by autograd
            // into the input's layout. (With one step both layouts are the same: time-major then.)
            ctx.save_data("batchMajorInput", InputGradientAsInput && ids is null && T > 1 && xT == I && xB == (long)T * I);
            ctx.save_data("sequence", sequence);
            ctx.save_data("grads", (Bias: bias is not null, Bhh: bhh is not null));
            if (lengths is not null) ctx.save_data("lengths", lengths);
            return lstm ? [output, hT, cT!] : [output, hT];
        }

        public override unsafe List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            var cell = (SimdCell)ctx.get_data("cell");
            var sequence = (bool)ctx.get_data("sequence");
            var lengths = ctx.get_data("lengths") as int[];
            var (hasBias, hasBhh) = ((bool, bool))ctx.get_data("grads");
            var saved = ctx.get_saved_variables();
            Tensor wih = saved[0], whh = saved[1], hx = saved[2];
            Tensor? gates = saved[3], aux1 = saved[4], aux2 = saved[5], c0 = saved[6], ids = saved[7], scale = saved[8];
            var lstm = cell == SimdCell.Lstm;
            int T = (int)hx.shape[0] - 1, B = (int)hx.shape[1], H = (int)whh.shape[1], I = (int)wih.shape[1], G = Gates(cell), GH = G * H;
            var dOut = sequence ? grads[0].contiguous() : null;
            var dhT = grads[1].contiguous();
            var dcT = lstm ? grads[2].contiguous() : null;
            // the weight gradients, [dW_hh | dW_ih]: one partial per block of rows, summed over its steps by the kernel;
            // or, for a [dW_hh | dW_ih] too large for the cache, one product after the loop over every step's kept
            // pre-activation gradients
            var inLoop = RecurrentKernels.GradientInLoop(H, I, G);
            // the forward's blocks and layout (its hx & co. are read as it wrote them)
            ((int Count, int Per) Split, bool BlockMajor) layout = (((int, int), bool))ctx.get_data("layout");
            var (split, blockMajor) = layout;
            var groupSteps = RecurrentKernels.GroupSteps(split.Per);
            // (each block clears its own partial; none when there are no rows: one zero partial)
            var dW = !inLoop ? null
                : split.Count == 0 ? zeros(1, GH, H + I, dtype: ScalarType.Float32) : empty(split.Count, GH, H + I, dtype: ScalarType.Float32);
            var dpre = inLoop ? null : empty(T, B, GH, dtype: ScalarType.Float32);
            var dph = inLoop || cell != SimdCell.GruResetAfter ? null : empty(T, B, GH, dtype: ScalarType.Float32);
            var batchMajorX = (bool)ctx.get_data("batchMajorInput");
            var dx = batchMajorX ? empty(B, T, I, dtype: ScalarType.Float32) : empty(T, B, I, dtype: ScalarType.Float32);
            var dh0 = empty(B, H, dtype: ScalarType.Float32);
            var dc0 = lstm ? empty(B, H, dtype: ScalarType.Float32) : null;
            var dBiasRows = hasBias ? zeros(B, GH, dtype: ScalarType.Float32) : null;  // summed over steps by the kernel
            var dBhhRows = hasBhh ? zeros(B, GH, dtype: ScalarType.Float32) : null;
            Launch(new RecurrentKernels.Buffers
                {
                    B = B, T = T, H = H, I = I, G = G,
                    HX = Ptr(hx), W = Ptr(whh), Wih = Ptr(wih), C0 = c0 is null ? null : Ptr(c0),
                    Gates = gates is null ? null : Ptr(gates),
                    Aux1 = aux1 is null ? null : Ptr(aux1), Aux2 = aux2 is null ? null : Ptr(aux2),
                    DOut = dOut is null ? null : Ptr(dOut), DHT = Ptr(dhT), DCT = dcT is null ? null : Ptr(dcT),
                    DW = dW is null ? null : Ptr(dW), DPre = dpre is null ? null : Ptr(dpre), DPh = dph is null ? null : Ptr(dph),
                    DBias = dBiasRows is null ? null : Ptr(dBiasRows), DBhh = dBhhRows is null ? null : Ptr(dBhhRows), DX = Ptr(dx),
                    DXB = batchMajorX ? (long)T * I : I, DXT = batchMajorX ? I : (long)B * I, DH0 = Ptr(dh0), DC0 = dc0 is null ? null : Ptr(dc0),
                    GroupSteps = groupSteps, BlockMajor = blockMajor,
                }, lengths, backward: true, split, RecurrentKernels.BackwardScratchPerRow(cell, H, I, groupSteps), H,
                (b, i, r0, r1, s) => RecurrentKernels.Backward(cell, b, i, r0, r1, (float*)s));
            KeepAlive(hx, whh, wih, c0, gates, aux1, aux2, dOut, dhT, dcT, dW, dpre, dph, dBiasRows, dBhhRows, dx, dh0, dc0);
            Tensor dWhh, dWih;
            if (dW is not null)
            {
                // the partials added in block order (the same order for the same thread count), here rather than by
                // libtorch's sum: E4's two 200 × 82 partials were over libtorch's grain, and its OpenMP workers, woken for
                // so small a sum, then spun on the cores the next kernel call wants
                var sum = dW.shape[0] == 1 ? dW[0] : SumPartials(dW);
                dWhh = sum.narrow(1, 0, H).contiguous();
                dWih = sum.narrow(1, H, I).contiguous();
            }
            else
            {
                Require(!blockMajor, "the weight gradient after the loop reads hx time-major");
                (dWhh, dWih) = WeightGradients(cell, hx.narrow(0, 0, T), dpre!, dph, aux1, H, I);
            }
            var dBias = dBiasRows?.sum([0L]);
            var dBhh = dBhhRows?.sum([0L]);
            // an embedded input: the table's gradient from the input's, in step order as the kernel wrote it
            Tensor dInput;
            if (ids is null) dInput = batchMajorX ? dx : dx.transpose(0, 1);
            else
            {
                var (rowsV, padding) = ((long, long))ctx.get_data("table");
                dInput = SimdEmbedding.TableGradient(dx.view(-1, I), ids, scale, rowsV, padding);
            }
            return [dInput, dWih, dWhh, dBias!, dBhh!, dh0, dc0!, null!, null!, null!, null!, null!, null!];
        }
    }
}
