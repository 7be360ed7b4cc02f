using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SeqDsl.Engine.Simd;

/// <summary>The cell a SIMD kernel call runs.</summary>
internal enum SimdCell { Lstm, GruResetAfter, GruResetBefore, RnnTanh, RnnRelu, RnnLinear, RnnSigmoid }

/// <summary>
/// One direction of one recurrent layer over a whole sequence, input projection included, for a block of batch rows
/// [r0, r1): the rows are independent, so threads take blocks and never meet. Layout (row-major; a block's rows of one
/// step contiguous, the steps time-major or block by block: <see cref="BlockRows"/>): hx (T + 1, B, H + I) holds, per
/// step and row, the state the step starts from and the step's input, so that one product [h | x]·[W_hh | W_ih]ᵀ
/// (wcatT, (H + I) × G·H) plus the bias gives every gate's pre-activation — the projection of the input is never
/// written to memory; hx is also what the weight gradient needs. out (T, B, H) is zero on padding; a row's steps at
/// and after its length leave its state unchanged. Per step: the register-tiled product into the gate rows (up to
/// <see cref="Sub"/> rows at once), then the gate functions and the state update while those rows are in the cache; no
/// allocation inside the loop. Backward walks the steps in reverse with the saved gates: the pre-activation gradient
/// of the step's rows (in scratch), then products for the state gradient (·W_hh) and the input gradient (·W_ih) on the
/// same rows, and the weight gradient accumulated from them and the steps' [h | x] rows every few steps while all are
/// in the cache (<see cref="GroupSteps"/>; one partial per block, added after the loop: the same thread count gives the
/// same sums).
/// Weight matrices too large for that (<see cref="GradientInLoop"/>) keep every step's pre-activation gradient
/// instead, for one product after the loop.
/// </summary>
internal static unsafe class RecurrentKernels
{
    /// <summary>Rows per sub-block: each step's product takes up to this many rows at once, so each 16-column panel of
    /// the weights is loaded once per step for all of them (a 6-row register tile after another) instead of once per
    /// few rows. Sub-blocks of 12 rows had been chosen to keep their gate rows in L1 between the product and the gate
    /// functions; whole blocks of up to 128 rows measured faster at one thread for the E7 and E4 layers (steps, 12 → 128
    /// rows, medians of four alternating runs: E7 LSTM 30.8 → 25.9 ms, GRU 22.9 → 21.3, SimpleRnn 8.3 → 7.1, E4 15.6 →
    /// 14.9) and an Lstm(64) layer on 100 inputs (forward 40.1 → 33.4 ms, `bench simd`), the same for an Lstm(256) on
    /// 1,027 (AMD EPYC, AVX2, docs/BENCHMARKS.md).</summary>
    const int Sub = 128;

    internal struct Buffers
    {
        public int B, T, H, I, G;           // G: gate blocks (4 LSTM, 3 GRU, 1 RNN)
        public int* Len;                     // lengths or null
        public float* HX;                    // (T + 1, B, H + I): state before the step, then the step's input; step T: the
                                             // final state (its input part unused). HX, Gates, Aux1 and Aux2 are laid out
                                             // as BlockMajor says (see BlockRows)
        public float* X;                     // the input, row r step t at X + r·XB + t·XT (its last axis contiguous)
        public long XB, XT;
        public long* Ids;                    // or, when X is null: (T, B) token ids — row r step t is Table row Ids[t·B + r]
        public float* Table, Scale;          // (V, I) embedding table; (B, I) factor each of row r's rows is multiplied
                                             // by (a SpatialDropout's scaled mask), or null
        public float* WcatT;                 // (H + I, G·H): [W_hh | W_ih]ᵀ
        public float* WcatTP, WP, WihP;      // the same three matrices packed in panels of 16 columns (SmallGemm.Pack)
        public float* W, Wih;                // weight_hh (G·H, H), weight_ih (G·H, I)
        public float* Bias, Bhh;             // (G·H) or null: the input-side bias (every bias but GRU reset-after's b_hh), b_hh
        public float* H0, C0;                // (B, H)
        public float* Out, HT, CT;           // (T, B, H) or null (the sequence is not asked for), (B, H), (B, H)
        public float* Gates;                 // (T, B, G·H) post-activation gates (laid out as HX)
        public bool BlockMajor;              // HX, Gates, Aux1, Aux2: each block's rows of every step together, blocks in
                                             // order, instead of every row of a step together (BlockRows)
        public float* Aux1, Aux2;            // LSTM: c_t, tanh c_t; GRU reset-after: h W_hn + b_hn; reset-before: r ⊙ h
        // backward
        public float* DOut, DHT, DCT;        // gradients of out (null: out was not produced), hT, cT
        public float* DW;                    // (blocks, G·H, H + I): per block, [dW_hh | dW_ih] summed over its rows and steps
                                             // (each block clears its own first);
                                             // null: the pre-activation gradients go to DPre (DPh) instead
        public float* DPre, DPh;             // (T, B, G·H) or null: every step's pre-activation gradient (input side; GRU
                                             // reset-after: recurrent side), for one product after the loop
        public float* DBias, DBhh;           // (B, G·H) or null: per row, the pre-activation gradient (input side; GRU
                                             // reset-after's b_hh: recurrent side) summed over the steps (the bias gradients)
        public float* DX;                    // the input's gradient, row r step t at DX + r·DXB + t·DXT (last axis
        public long DXB, DXT;                // contiguous): (T, B, I) time-major, or (B, T, I) as a batch-major input lies
        public int GroupSteps;               // steps whose weight-gradient rows go into one product (GroupSteps(rows))
        public float* DH0, DC0;
    }

    static bool Active(in Buffers b, int row, int t) => b.Len == null || t < b.Len[row];

    /// <summary>
    /// Where block [r0, r1)'s rows of an internal buffer (HX, Gates, Aux1, Aux2: <paramref name="width"/> floats a row,
    /// <paramref name="steps"/> steps) start, and how far apart its steps are: row r of step t is at the start returned +
    /// t·step + (r − r0)·width. Time-major (every row of a step together: start = buffer + r0·width, step = B·width), or
    /// block-major (this block's rows of every step together, after the r0 rows of the blocks before it: start = buffer +
    /// r0·steps·width, step = rows·width). Block-major keeps two threads' blocks apart in memory; time-major, each thread's
    /// rows of a step lie right before the other's, and a thread's hardware prefetchers may fetch lines the other is
    /// writing. (Blocks at two threads ran 10–20 % slower per row than the same rows alone, or than two separate
    /// networks' rows on two threads; block-major took the forward pass 1–9 % shorter at two threads, whole steps 0–5 %
    /// in 9 of 12 comparisons, so most of that slowdown has another cause. AMD EPYC, AVX2, docs/BENCHMARKS.md.)
    /// </summary>
    static float* BlockRows(in Buffers b, float* buffer, int width, int steps, int r0, int r1, out long step)
    {
        step = b.BlockMajor ? (long)(r1 - r0) * width : (long)b.B * width;
        if (buffer == null) return null;                                     // a buffer the cell does not use
        return b.BlockMajor ? buffer + (long)r0 * steps * width : buffer + (long)r0 * width;
    }

    /// <summary>The packed matrix's block starting at row <paramref name="row"/> and column <paramref name="col"/>, or
    /// null (the unpacked path) when there is no packed copy or the column is not at a panel boundary.</summary>
    static float* PanelAt(float* packed, int row, int col, long panelStride) =>
        packed != null && col % SmallGemm.Panel == 0 ? packed + col / SmallGemm.Panel * panelStride + (long)row * SmallGemm.Panel : null;

    // ------------------------------------------------------------------ forward

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(SimdCell cell, in Buffers b, int r0, int r1, float* scratch)
    {
        int T = b.T, H = b.H, I = b.I, GH = b.G * H, K = H + I;
        long stepH = (long)b.B * H;                                          // the output's step (time-major)
        // this block's rows of the internal buffers: row r of step t at X + t·sX + (r − r0)·width
        float* hx = BlockRows(b, b.HX, K, T + 1, r0, r1, out var sK);
        float* gates = BlockRows(b, b.Gates, GH, T, r0, r1, out var sG);
        float* aux1 = BlockRows(b, b.Aux1, H, T, r0, r1, out var sA);
        float* aux2 = BlockRows(b, b.Aux2, H, T, r0, r1, out _);                // Aux1's shape: its step is sA
        float* state = scratch;                       // (rows, H): h
        float* cstate = scratch + (r1 - r0) * H;      // (rows, H): c (LSTM)
        // (Sub, G·H) each: GRU reset-after's recurrent and input parts (only its scratch has room for them: ForwardScratch)
        float* ph = cstate + (r1 - r0) * H;
        float* px = ph + Sub * GH;
        float* whhT = b.WcatT, wihT = b.WcatT + (long)H * GH;
        long ps = (long)K * SmallGemm.Panel;                                  // panel stride of the packed [W_hh | W_ih]ᵀ
        float* whhTP = b.WcatTP, wihTP = PanelAt(b.WcatTP, H, 0, ps);
        var ahead = PrefetchAhead && Sse.IsSupported;
        for (var r = r0; r < r1; r++)
        {
            Copy(b.H0 + (long)r * H, state + (r - r0) * H, H);
            if (cell == SimdCell.Lstm) Copy(b.C0 + (long)r * H, cstate + (r - r0) * H, H);
            Copy(b.H0 + (long)r * H, hx + (long)(r - r0) * K, H);          // step 0's state
        }
        for (var t = 0; t < T; t++)
            for (var s0 = r0; s0 < r1; s0 += Sub)
            {
                var m = Math.Min(Sub, r1 - s0);
                float* a = hx + t * sK + (long)(s0 - r0) * K;
                float* g = gates + t * sG + (long)(s0 - r0) * GH;
                if (b.Ids == null)
                    for (var r = s0; r < s0 + m; r++)                         // the step's inputs beside the states
                    {
                        Copy(b.X + r * b.XB + t * b.XT, a + (long)(r - s0) * K + H, I);
                        // the row's next input (a batch-major input's rows of one step lie a whole sequence apart: more
                        // streams than the hardware prefetchers follow)
                        if (ahead && t + 1 < T) Ahead(b.X + r * b.XB + (t + 1) * b.XT, I);
                    }
                else
                {
                    for (var r = s0; r < s0 + m; r++)                         // or their embedding rows, looked up here
                    {
                        float* row = b.Table + b.Ids[(long)t * b.B + r] * I, dst = a + (long)(r - s0) * K + H;
                        if (b.Scale == null) Copy(row, dst, I);
                        else Multiply(row, b.Scale + (long)r * I, dst, I);
                    }
                    // the next step's table rows for this sub-block's rows (ids in no order: no hardware prefetcher
                    // finds them) requested now, to arrive in the L2 cache during this step (whatever PrefetchAhead says)
                    if (t + 1 < T && Sse.IsSupported)
                        for (var r = s0; r < s0 + m; r++)
                            Ahead(b.Table + b.Ids[(long)(t + 1) * b.B + r] * I, I);
                }
                switch (cell)
                {
                    case SimdCell.Lstm:
                        SmallGemm.Run(m, GH, K, a, K, b.WcatT, GH, whhTP, ps, b.Bias, 0, g, GH);
                        LstmGates(m, H, g);
                        break;
                    case SimdCell.GruResetAfter:
                        SmallGemm.Run(m, GH, H, a, K, whhT, GH, whhTP, ps, b.Bhh, 0, ph, GH);
                        SmallGemm.Run(m, GH, I, a + H, K, wihT, GH, wihTP, ps, b.Bias, 0, px, GH);
                        break;
                    case SimdCell.GruResetBefore:
                        SmallGemm.Run(m, 2 * H, K, a, K, b.WcatT, GH, whhTP, ps, b.Bias, 0, g, GH);   // r, z pre-activations
                        SmallGemm.Run(m, H, I, a + H, K, wihT + 2 * H, GH, PanelAt(wihTP, 0, 2 * H, ps), ps,
                            b.Bias == null ? null : b.Bias + 2 * H, 0, g + 2 * H, GH);
                        break;
                    default:
                        // straight into the next step's state rows, activated there in place
                        SmallGemm.Run(m, H, K, a, K, b.WcatT, H, whhTP, ps, b.Bias, 0, a + sK, K);
                        RnnActivate(cell, m, H, a + sK, K);
                        break;
                }
                for (var r = s0; r < s0 + m; r++)
                {
                    long io = t * sG + (long)(r - r0) * GH, ao = t * sA + (long)(r - r0) * H, ho = t * stepH + (long)r * H;
                    float* st = state + (r - r0) * H;
                    float* next = hx + (t + 1) * sK + (long)(r - r0) * K;
                    if (ahead && t + 1 < T)
                    {
                        // the row's lines the next step writes: where its products' tiles store — the gate rows of an
                        // LSTM and a GRU reset-before, the state row after next (hx step t + 2: the [h | x] row the next
                        // step's state goes into, a SimpleRnn's product's output) — and an LSTM's cell rows. GRU
                        // reset-after's gate and W_hn rows, each written in one pass along its row, are left to the
                        // hardware (an experiment build that requested them too: E7 GRU's forward 2–3 % longer at one
                        // thread, Intel Xeon @ 2.00GHz, avx512f)
                        if (cell is SimdCell.Lstm or SimdCell.GruResetBefore) Ahead(gates + io + sG, GH);
                        if (cell == SimdCell.Lstm)
                        {
                            Ahead(aux1 + ao + sA, H);
                            Ahead(aux2 + ao + sA, H);
                        }
                        Ahead(next + sK, K);
                    }
                    if (!Active(b, r, t))
                    {
                        if (b.Out != null) Clear(b.Out + ho, H);
                        // the weight gradient multiplies r ⊙ h by zero pre-activation gradients here: it must not be
                        // uninitialised memory (0 × NaN is NaN)
                        if (cell == SimdCell.GruResetBefore) Clear(aux1 + ao, H);
                        Copy(next - sK, next, H);                                   // the state before the step, unchanged
                        continue;
                    }
                    switch (cell)
                    {
                        case SimdCell.Lstm:
                            LstmState(H, gates + io, cstate + (r - r0) * H, aux1 + ao, aux2 + ao, st);
                            break;
                        case SimdCell.GruResetAfter:
                            GruAfterStep(H, px + (r - s0) * GH, ph + (r - s0) * GH, gates + io, aux1 + ao, st);
                            break;
                        case SimdCell.GruResetBefore:
                            GruBeforeGates(H, gates + io, st, aux1 + ao);
                            break;
                        default:
                            if (b.Out != null) Copy(next, b.Out + ho, H);
                            break;
                    }
                    if (cell is SimdCell.Lstm or SimdCell.GruResetAfter)
                    {
                        if (b.Out != null) Copy(st, b.Out + ho, H);
                        Copy(st, next, H);
                    }
                }
                if (cell == SimdCell.GruResetBefore)
                {
                    // n pre-activation: b_n + x W_nᵀ (above) + (r ⊙ h) U_nᵀ, then n and the new state
                    SmallGemm.Run(m, H, H, aux1 + t * sA + (long)(s0 - r0) * H, H, whhT + 2 * H, GH, PanelAt(whhTP, 0, 2 * H, ps), ps,
                        g + 2 * H, GH, g + 2 * H, GH);
                    for (var r = s0; r < s0 + m; r++)
                    {
                        if (!Active(b, r, t)) continue;
                        long io = t * sG + (long)(r - r0) * GH, ho = t * stepH + (long)r * H;
                        float* st = state + (r - r0) * H;
                        GruBeforeState(H, gates + io, st);
                        if (b.Out != null) Copy(st, b.Out + ho, H);
                        Copy(st, hx + (t + 1) * sK + (long)(r - r0) * K, H);
                    }
                }
            }
        for (var r = r0; r < r1; r++)
        {
            Copy(hx + T * sK + (long)(r - r0) * K, b.HT + (long)r * H, H);
            if (cell == SimdCell.Lstm) Copy(cstate + (r - r0) * H, b.CT + (long)r * H, H);
        }
    }

    /// <summary>Scratch floats one forward block needs.</summary>
    public static int ForwardScratch(SimdCell cell, int rows, int H) =>
        2 * rows * H + (cell == SimdCell.GruResetAfter ? 2 * Sub * SimdRecurrence.Gates(cell) * H : 0);

    /// <summary>The gate functions of m rows of LSTM pre-activations [i | f | g | o] (row stride 4H), in place: every
    /// vector independent of the others, so the out-of-order core overlaps their long exp → reciprocal chains (one row's
    /// functions and state update in one dependent sequence ran at about a third of the throughput: 11.6 % of E4's step).
    /// Rows past a sequence's end are activated too and never read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void LstmGates(int m, int H, float* g)
    {
        for (var r = 0; r < m; r++, g += 4 * H)
        {
            Activate<SigmoidFn>(g, 2 * H);                                      // i, f
            Activate<TanhFn>(g + 2 * H, H);                                     // g
            Activate<SigmoidFn>(g + 3 * H, H);                                  // o
        }
    }

    // ---- the per-unit passes: each a struct with its row pointers, its arithmetic written once for any vector width
    // (IUnitPass.Lanes) and for one unit (IUnitPass.Unit, the plain path); EachUnit runs it over a row

    /// <summary>One per-unit pass over a row's units: its arithmetic on the vector of units starting at u (all its lanes
    /// with <see cref="WholeStrip"/>, those of the mask with <see cref="MaskedStrip"/>), and on unit u alone.</summary>
    internal interface IUnitPass
    {
        void Lanes<V, L, S>(int u, V mask) where V : struct where L : struct, ILanes<V> where S : struct, IStrip;
        void Unit(int u);
    }

    /// <summary>A pass over units [0, n): on 16 lanes (the AVX-512 path, unless <see cref="SimdMath.WideGates"/> is off)
    /// or 8 (AVX2) — whole vectors, then one masked vector for the units left (H = 50: units 48–49), not the scalar
    /// functions — or one unit at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void EachUnit<P>(ref P pass, int n) where P : struct, IUnitPass
    {
        if (SimdMath.Use512) EachVector<P, Vector512<float>, Lanes512>(ref pass, n);
        else if (SimdMath.UseAvx2) EachVector<P, Vector256<float>, Lanes256>(ref pass, n);
        else
            for (var u = 0; u < n; u++) pass.Unit(u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void EachVector<P, V, L>(ref P pass, int n) where P : struct, IUnitPass where V : struct where L : struct, ILanes<V>
    {
        var u = 0;
        for (; u + L.Count <= n; u += L.Count) pass.Lanes<V, L, WholeStrip>(u, default);
        if (u < n) pass.Lanes<V, L, MaskedStrip>(u, L.FirstLanes(n - u));
    }

    /// <summary>x ← F(x) over n floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Activate<F>(float* x, int n) where F : struct, IGateFunction
    {
        var pass = new ActivatePass<F> { X = x };
        EachUnit(ref pass, n);
    }

    struct ActivatePass<F> : IUnitPass where F : struct, IGateFunction
    {
        public float* X;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip =>
            L.Store<S>(X + u, m, F.Of<V, L>(L.Load<S>(X + u, m)));

        public void Unit(int u) => X[u] = F.Of(X[u]);
    }

    /// <summary>One row's LSTM state update from its activated gates g: c_t (into c and cOut), tanh c_t, h_t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void LstmState(int H, float* g, float* c, float* cOut, float* tcOut, float* h)
    {
        var pass = new LstmStatePass { H = H, G = g, C = c, COut = cOut, TcOut = tcOut, Hs = h };
        EachUnit(ref pass, H);
    }

    struct LstmStatePass : IUnitPass
    {
        public int H;
        public float* G, C, COut, TcOut, Hs;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var cn = L.MultiplyAdd(L.Load<S>(G + H + u, m), L.Load<S>(C + u, m), L.Multiply(L.Load<S>(G + u, m), L.Load<S>(G + 2 * H + u, m)));
            var tc = SimdMath.Tanh<V, L>(cn);
            L.Store<S>(C + u, m, cn); L.Store<S>(COut + u, m, cn); L.Store<S>(TcOut + u, m, tc);
            L.Store<S>(Hs + u, m, L.Multiply(L.Load<S>(G + 3 * H + u, m), tc));
        }

        public void Unit(int u)
        {
            var cn = G[H + u] * C[u] + G[u] * G[2 * H + u];
            var tc = SimdMath.Tanh(cn);
            C[u] = cn; COut[u] = cn; TcOut[u] = tc;
            Hs[u] = G[3 * H + u] * tc;
        }
    }

    /// <summary>One row's GRU (reset-after) step from its input projection p and recurrent pre-activation ph: the gates
    /// r, z, n into g, ph's n part into phnOut, the new state into h.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruAfterStep(int H, float* p, float* ph, float* g, float* phnOut, float* h)
    {
        var pass = new GruAfterPass { H = H, P = p, Ph = ph, G = g, PhnOut = phnOut, Hs = h };
        EachUnit(ref pass, H);
    }

    struct GruAfterPass : IUnitPass
    {
        public int H;
        public float* P, Ph, G, PhnOut, Hs;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var r = SimdMath.Sigmoid<V, L>(L.Add(L.Load<S>(P + u, m), L.Load<S>(Ph + u, m)));
            var z = SimdMath.Sigmoid<V, L>(L.Add(L.Load<S>(P + H + u, m), L.Load<S>(Ph + H + u, m)));
            var phn = L.Load<S>(Ph + 2 * H + u, m);
            var n = SimdMath.Tanh<V, L>(L.MultiplyAdd(r, phn, L.Load<S>(P + 2 * H + u, m)));
            var hv = L.Load<S>(Hs + u, m);
            L.Store<S>(G + u, m, r); L.Store<S>(G + H + u, m, z); L.Store<S>(G + 2 * H + u, m, n); L.Store<S>(PhnOut + u, m, phn);
            L.Store<S>(Hs + u, m, L.MultiplyAdd(z, L.Subtract(hv, n), n));                 // (1 − z) n + z h
        }

        public void Unit(int u)
        {
            var r = SimdMath.Sigmoid(P[u] + Ph[u]);
            var z = SimdMath.Sigmoid(P[H + u] + Ph[H + u]);
            var phn = Ph[2 * H + u];
            var n = SimdMath.Tanh(P[2 * H + u] + r * phn);
            G[u] = r; G[H + u] = z; G[2 * H + u] = n; PhnOut[u] = phn;
            Hs[u] = n + z * (Hs[u] - n);
        }
    }

    /// <summary>GRU (reset-before), one row: r and z activated in place, r ⊙ h into rhOut.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruBeforeGates(int H, float* g, float* h, float* rhOut)
    {
        var pass = new GruBeforeGatePass { H = H, G = g, Hs = h, RhOut = rhOut };
        EachUnit(ref pass, H);
    }

    struct GruBeforeGatePass : IUnitPass
    {
        public int H;
        public float* G, Hs, RhOut;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var r = SimdMath.Sigmoid<V, L>(L.Load<S>(G + u, m));
            L.Store<S>(G + u, m, r);
            L.Store<S>(G + H + u, m, SimdMath.Sigmoid<V, L>(L.Load<S>(G + H + u, m)));
            L.Store<S>(RhOut + u, m, L.Multiply(r, L.Load<S>(Hs + u, m)));
        }

        public void Unit(int u)
        {
            var r = SimdMath.Sigmoid(G[u]);
            G[u] = r;
            G[H + u] = SimdMath.Sigmoid(G[H + u]);
            RhOut[u] = r * Hs[u];
        }
    }

    /// <summary>GRU (reset-before), one row: n activated in place, the new state into h.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruBeforeState(int H, float* g, float* h)
    {
        var pass = new GruBeforeStatePass { H = H, G = g, Hs = h };
        EachUnit(ref pass, H);
    }

    struct GruBeforeStatePass : IUnitPass
    {
        public int H;
        public float* G, Hs;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var n = SimdMath.Tanh<V, L>(L.Load<S>(G + 2 * H + u, m));
            L.Store<S>(G + 2 * H + u, m, n);
            var z = L.Load<S>(G + H + u, m);
            L.Store<S>(Hs + u, m, L.MultiplyAdd(z, L.Subtract(L.Load<S>(Hs + u, m), n), n));   // z h + (1 − z) n
        }

        public void Unit(int u)
        {
            var n = SimdMath.Tanh(G[2 * H + u]);
            G[2 * H + u] = n;
            Hs[u] = n + G[H + u] * (Hs[u] - n);
        }
    }

    /// <summary>The activation of m pre-activation rows (row stride ld) in place: the new states (as
    /// <see cref="LstmGates"/>, all rows' vectors in one independent stream; rows past a sequence's end are then
    /// overwritten by the state they keep).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RnnActivate(SimdCell cell, int m, int H, float* h, long ld)
    {
        for (var r = 0; r < m; r++, h += ld)
            switch (cell)
            {
                case SimdCell.RnnTanh: Activate<TanhFn>(h, H); break;
                case SimdCell.RnnRelu: Activate<ReluFn>(h, H); break;
                case SimdCell.RnnSigmoid: Activate<SigmoidFn>(h, H); break;
            }
    }

    // ------------------------------------------------------------------ backward

    /// <summary>Scratch floats one backward block needs per row (besides H fixed ones: a zero row): the state gradients,
    /// and when the weight gradient is accumulated in the loop, <paramref name="steps"/> (<see cref="GroupSteps"/>)
    /// steps' pre-activation gradients and, when they are more than one, copies of their [h | x] rows (GRU reset-before:
    /// and r ⊙ h).</summary>
    public static int BackwardScratchPerRow(SimdCell cell, int H, int I, int steps)
    {
        int G = SimdRecurrence.Gates(cell);
        if (!GradientInLoop(H, I, G)) return 4 * H;
        var pre = (cell == SimdCell.GruResetAfter ? 2 : 1) * G * H;
        var rows = steps > 1 ? H + I + (cell == SimdCell.GruResetBefore ? H : 0) : 0;
        return 4 * H + steps * (pre + rows);
    }

    /// <summary>How many steps' rows one weight-gradient product takes in a block of <paramref name="rows"/> rows: enough
    /// for about 128 rows. Each C tile of Aᵀ·B loads and stores its accumulators once per product, so a few rows per
    /// product (E4: 32 rows at one thread, 16 at two) spend much of it on that: Aᵀ·B with C 200 × 82 ran at 53 GFLOP/s
    /// over 16 rows, 63 over 32, 67 over 256 (AMD EPYC, AVX2). The rows go in step order, each element's FMA chain
    /// unchanged: the same sums as one product per step.</summary>
    public static int GroupSteps(int rows) => rows <= 0 ? 1 : Math.Clamp(128 / rows, 1, Math.Max(1, MaxGroupSteps ?? 8));

    private static readonly AsyncLocal<int?> GroupLimit = new();

    /// <summary>An upper bound on <see cref="GroupSteps"/> in this execution context (a test compares 1 with the
    /// default), or null.</summary>
    internal static int? MaxGroupSteps
    {
        get => GroupLimit.Value;
        set => GroupLimit.Value = value;
    }

    /// <summary>Whether the weight gradient is accumulated inside the loop (every few steps): while [dW_hh | dW_ih] (G·H ×
    /// (H + I) floats, read and written each time) takes at most half the L2 cache, 64K floats — every layer Auto gives
    /// this kernel up to 64 units and 192 inputs (Lstm(64) on 100 inputs, 42K floats: backward 66.4 ms in the loop,
    /// 68.5–69.0 ms after it). Larger ones keep every step's pre-activation gradient for one blocked product after the
    /// loop (Lstm(256) on 1,027 inputs: backward 94 ms that way, 131 ms step by step). AMD EPYC, AVX2, one thread.</summary>
    public static bool GradientInLoop(int H, int I, int G) => (long)G * H * (H + I) <= 65536;

    /// <summary>One block's backward; its weight gradient goes to partial <paramref name="block"/> of b.DW (cleared here first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(SimdCell cell, in Buffers b, int block, int r0, int r1, float* scratch)
    {
        int T = b.T, H = b.H, I = b.I, GH = b.G * H, K = H + I, rows = r1 - r0;
        long stepG = (long)b.B * GH, stepH = (long)b.B * H;                 // DPre, DPh; DOut: time-major
        float* hxB = BlockRows(b, b.HX, K, T + 1, r0, r1, out var sK);
        float* gates = BlockRows(b, b.Gates, GH, T, r0, r1, out var sG);
        float* aux1 = BlockRows(b, b.Aux1, H, T, r0, r1, out var sA);
        float* aux2 = BlockRows(b, b.Aux2, H, T, r0, r1, out _);                // Aux1's shape: its step is sA
        float* dh = scratch, dc = scratch + rows * H, dhNew = dc + rows * H, direct = dhNew + rows * H;
        float* zero = direct + rows * H;              // H zeros: the output's gradient when no output was produced
        // in the loop, for S steps: (S, rows, G·H) pre-activation gradients (input side), GRU reset-after's recurrent
        // side, and when S > 1 the steps' (S, rows, H + I) [h | x] rows and GRU reset-before's (S, rows, H) r ⊙ h rows
        float* dW = b.DW == null ? null : b.DW + (long)block * GH * K;  // (G·H, H + I): [dW_hh | dW_ih]
        var S = dW == null ? 1 : Math.Max(1, b.GroupSteps);
        long groupG = (long)S * rows * GH;
        float* dpreGroup = zero + H;
        float* dphGroup = dpreGroup + groupG;
        float* hxGroup = dphGroup + (cell == SimdCell.GruResetAfter ? groupG : 0);
        float* auxGroup = hxGroup + (long)S * rows * K;
        var slot = 0;
        // every cell here adds each row's pre-activation gradients to its bias gradients in the per-unit passes that
        // compute them (GRU reset-before: z's and n's in its first pass, r's in its second, after the product r's
        // gradient needs) — the GRUs only while GruBiasInPass is on; otherwise, and by default for a new cell, in a pass
        // over the rows after the products
        var biasInBack = cell is SimdCell.Lstm or SimdCell.RnnTanh or SimdCell.RnnRelu or SimdCell.RnnLinear or SimdCell.RnnSigmoid
            || ((cell is SimdCell.GruResetAfter or SimdCell.GruResetBefore) && GruBiasInPass);
        var ahead = PrefetchAhead && Sse.IsSupported;
        Clear(zero, H);
        if (dW != null) Clear(dW, GH * K);                                  // this block's partial, summed from zero
        for (var r = r0; r < r1; r++)
        {
            Copy(b.DHT + (long)r * H, dh + (r - r0) * H, H);
            if (cell == SimdCell.Lstm) Copy(b.DCT + (long)r * H, dc + (r - r0) * H, H);
        }
        for (var t = T - 1; t >= 0; t--)
        {
            // the step's pre-activation gradient rows: scratch (its slot in the group), or kept for the product after the loop
            float* dpre = dW != null ? dpreGroup + slot * (long)rows * GH : b.DPre + t * stepG + (long)r0 * GH;
            float* dph = dW != null ? dphGroup + slot * (long)rows * GH : b.DPh == null ? null : b.DPh + t * stepG + (long)r0 * GH;
            for (var s0 = r0; s0 < r1; s0 += Sub)
            {
                var m = Math.Min(Sub, r1 - s0);
                var allActive = true;
                for (var r = s0; r < s0 + m; r++)
                {
                    long io = (long)(r - r0) * GH, gi = t * sG + (long)(r - r0) * GH, ao = t * sA + (long)(r - r0) * H,
                        ho = t * stepH + (long)r * H;
                    float* hPrev = hxB + t * sK + (long)(r - r0) * K;
                    var k = (r - r0) * H;
                    if (ahead && t > 0)
                    {
                        // the row's lines the previous step reads: its gates, saved rows (an LSTM's c_{t−2} and tanh
                        // c_{t−1}) and [h | x] row, the output's gradient; and the input-gradient row its product writes
                        // (on padding too: the step before may be the row's last)
                        if (gates != null) Ahead(gates + gi - sG, GH);
                        if (cell == SimdCell.Lstm)
                        {
                            if (t > 1) Ahead(aux1 + ao - 2 * sA, H);
                            Ahead(aux2 + ao - sA, H);
                        }
                        else if (aux1 != null) Ahead(aux1 + ao - sA, H);
                        Ahead(hPrev - sK, K);
                        if (b.DOut != null) Ahead(b.DOut + ho - stepH, H);
                        Ahead(b.DX + (t - 1) * b.DXT + r * b.DXB, I);
                    }
                    if (!Active(b, r, t))
                    {
                        allActive = false;
                        Clear(dpre + io, GH);
                        if (cell == SimdCell.GruResetAfter) Clear(dph + io, GH);
                        Clear(direct + k, H);
                        continue;
                    }
                    float* dOut = b.DOut != null ? b.DOut + ho : zero;
                    float* db = BiasRow(b.DBias, biasInBack, r, GH);
                    switch (cell)
                    {
                        case SimdCell.Lstm:
                            LstmBack(H, gates + gi, aux2 + ao, t > 0 ? aux1 + ao - sA : b.C0 + (long)r * H, dOut, dh + k, dc + k, dpre + io, db);
                            break;
                        case SimdCell.GruResetAfter:
                            GruAfterBack(H, gates + gi, aux1 + ao, hPrev, dOut, dh + k, dpre + io, dph + io, direct + k, db,
                                BiasRow(b.DBhh, biasInBack, r, GH));
                            break;
                        case SimdCell.GruResetBefore:
                            GruBeforeBackN(H, gates + gi, hPrev, dOut, dh + k, dpre + io, direct + k, db);
                            break;
                        default:
                            RnnBack(cell, H, hPrev + sK, dOut, dh + k, dpre + io, db);      // the step's new state
                            break;
                    }
                }
                float* dp = dpre + (long)(s0 - r0) * GH;
                // the state gradient through the weights: straight into dh when every row of the sub-block is active (its
                // rows of dh are read above, not after; GRU reset-before's d(r ⊙ h) between its two products reads only
                // what the first wrote), else beside it, copied for the active rows below (inactive rows keep theirs)
                float* dn = allActive ? dh + (s0 - r0) * H : dhNew + (s0 - r0) * H;
                float* dd = direct + (s0 - r0) * H;
                long wps = (long)GH * SmallGemm.Panel;                        // panel stride of packed W_hh and W_ih
                switch (cell)
                {
                    case SimdCell.Lstm:
                        SmallGemm.Run(m, H, GH, dp, GH, b.W, H, b.WP, wps, null, 0, dn, H);
                        break;
                    case SimdCell.GruResetAfter:
                        SmallGemm.Run(m, H, GH, dph + (long)(s0 - r0) * GH, GH, b.W, H, b.WP, wps, dd, H, dn, H);
                        break;
                    case SimdCell.GruResetBefore:
                        // d(r ⊙ h) = dn_pre · U_n, then the r, z gradients, then the state gradient through U_rz
                        SmallGemm.Run(m, H, H, dp + 2 * H, GH, b.W + 2L * H * H, H, PanelAt(b.WP, 2 * H, 0, wps), wps, null, 0, dn, H);
                        for (var r = s0; r < s0 + m; r++)
                        {
                            if (!Active(b, r, t)) continue;
                            GruBeforeBackRz(H, gates + t * sG + (long)(r - r0) * GH, hxB + t * sK + (long)(r - r0) * K, dn + (r - s0) * H,
                                dpre + (long)(r - r0) * GH, dd + (r - s0) * H, BiasRow(b.DBias, biasInBack, r, GH));
                        }
                        SmallGemm.Run(m, H, 2 * H, dp, GH, b.W, H, b.WP, wps, dd, H, dn, H);
                        break;
                    default:
                        SmallGemm.Run(m, H, H, dp, GH, b.W, H, b.WP, wps, null, 0, dn, H);
                        break;
                }
                // the input's gradient, while the pre-activation rows are in the cache (zero on padding)
                SmallGemm.Run(m, I, GH, dp, GH, b.Wih, I, b.WihP, wps, null, 0, b.DX + t * b.DXT + s0 * b.DXB, b.DXB);
                if (!allActive || !biasInBack)
                    for (var r = s0; r < s0 + m; r++)
                    {
                        if (!allActive && Active(b, r, t)) Copy(dn + (r - s0) * H, dh + (r - r0) * H, H);
                        if (biasInBack) continue;
                        // the bias gradients, per row, while the pre-activation rows are in the cache (zero on padding)
                        long io = (long)(r - r0) * GH;
                        if (b.DBias != null) Add(dpre + io, b.DBias + (long)r * GH, GH);
                        if (b.DBhh != null) Add(dph + io, b.DBhh + (long)r * GH, GH);
                    }
            }
            if (dW == null) continue;
            // the weight gradient: the group's pre-activation gradient rows against their [h | x] rows (zero on padding),
            // steps in the order they ran — one step's rows as they lie in HX, or S steps' rows copied beside each other
            float* hx = hxB + t * sK;
            float* rh = cell == SimdCell.GruResetBefore ? aux1 + t * sA : null;
            if (S > 1)
            {
                Copy(hx, hxGroup + slot * (long)rows * K, rows * K);
                if (rh != null) Copy(rh, auxGroup + slot * (long)rows * H, rows * H);
            }
            if (++slot < S && t > 0) continue;
            var n = slot * rows;
            if (S > 1)
            {
                hx = hxGroup;
                rh = auxGroup;
            }
            slot = 0;
            switch (cell)
            {
                case SimdCell.GruResetAfter:
                    SmallGemm.AccumulateAtB(n, GH, H, dphGroup, GH, hx, K, dW, K);
                    SmallGemm.AccumulateAtB(n, GH, I, dpreGroup, GH, hx + H, K, dW + H, K);
                    break;
                case SimdCell.GruResetBefore:
                    // W_hh's r and z rows meet h, its n rows r ⊙ h (saved, zero on padding)
                    SmallGemm.AccumulateAtB(n, 2 * H, H, dpreGroup, GH, hx, K, dW, K);
                    SmallGemm.AccumulateAtB(n, H, H, dpreGroup + 2 * H, GH, rh, H, dW + 2L * H * K, K);
                    SmallGemm.AccumulateAtB(n, GH, I, dpreGroup, GH, hx + H, K, dW + H, K);
                    break;
                default:
                    SmallGemm.AccumulateAtB(n, GH, K, dpreGroup, GH, hx, K, dW, K);
                    break;
            }
        }
        for (var r = r0; r < r1; r++)
        {
            Copy(dh + (r - r0) * H, b.DH0 + (long)r * H, H);
            if (cell == SimdCell.Lstm) Copy(dc + (r - r0) * H, b.DC0 + (long)r * H, H);
        }
    }

    /// <summary>Row r's row of a (B, G·H) bias gradient (DBias, DBhh), when the per-unit passes add to it
    /// (<paramref name="inPass"/>) and there is one.</summary>
    static float* BiasRow(float* rows, bool inPass, int r, int GH) => inPass && rows != null ? rows + (long)r * GH : null;

    /// <summary>LSTM step backward: gates i, f, g, o (post-activation), tanh c_t, c_{t−1}; dc carried in place; the
    /// pre-activation gradient into dp and, when db is not null, added to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void LstmBack(int H, float* g, float* tc, float* cPrev, float* dOut, float* dh, float* dc, float* dp, float* db)
    {
        var pass = new LstmBackPass { H = H, G = g, Tc = tc, CPrev = cPrev, DOut = dOut, Dh = dh, Dc = dc, Dp = dp, Db = db };
        EachUnit(ref pass, H);
    }

    struct LstmBackPass : IUnitPass
    {
        public int H;
        public float* G, Tc, CPrev, DOut, Dh, Dc, Dp, Db;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var one = L.One;
            var i = L.Load<S>(G + u, m); var f = L.Load<S>(G + H + u, m);
            var gg = L.Load<S>(G + 2 * H + u, m); var o = L.Load<S>(G + 3 * H + u, m);
            var t = L.Load<S>(Tc + u, m);
            var dht = L.Add(L.Load<S>(Dh + u, m), L.Load<S>(DOut + u, m));
            var dct = L.MultiplyAdd(L.Multiply(dht, o), L.MultiplyAddNegated(t, t, one), L.Load<S>(Dc + u, m));
            var di = L.Multiply(L.Multiply(dct, gg), L.Multiply(i, L.Subtract(one, i)));
            var df = L.Multiply(L.Multiply(dct, L.Load<S>(CPrev + u, m)), L.Multiply(f, L.Subtract(one, f)));
            var dg = L.Multiply(L.Multiply(dct, i), L.MultiplyAddNegated(gg, gg, one));
            var dO = L.Multiply(L.Multiply(dht, t), L.Multiply(o, L.Subtract(one, o)));
            L.Store<S>(Dp + u, m, di);
            L.Store<S>(Dp + H + u, m, df);
            L.Store<S>(Dp + 2 * H + u, m, dg);
            L.Store<S>(Dp + 3 * H + u, m, dO);
            L.Store<S>(Dc + u, m, L.Multiply(dct, f));
            if (Db == null) return;
            L.Store<S>(Db + u, m, L.Add(L.Load<S>(Db + u, m), di));
            L.Store<S>(Db + H + u, m, L.Add(L.Load<S>(Db + H + u, m), df));
            L.Store<S>(Db + 2 * H + u, m, L.Add(L.Load<S>(Db + 2 * H + u, m), dg));
            L.Store<S>(Db + 3 * H + u, m, L.Add(L.Load<S>(Db + 3 * H + u, m), dO));
        }

        public void Unit(int u)
        {
            float i = G[u], f = G[H + u], gg = G[2 * H + u], o = G[3 * H + u], t = Tc[u];
            var dht = Dh[u] + DOut[u];
            var dct = Dc[u] + dht * o * (1 - t * t);
            Dp[u] = dct * gg * i * (1 - i);
            Dp[H + u] = dct * CPrev[u] * f * (1 - f);
            Dp[2 * H + u] = dct * i * (1 - gg * gg);
            Dp[3 * H + u] = dht * t * o * (1 - o);
            Dc[u] = dct * f;
            if (Db == null) return;
            Db[u] += Dp[u];
            Db[H + u] += Dp[H + u];
            Db[2 * H + u] += Dp[2 * H + u];
            Db[3 * H + u] += Dp[3 * H + u];
        }
    }

    /// <summary>GRU (reset-after) step backward: the projection's gradient [r, z, n], the recurrent
    /// pre-activation's gradient [r, z, r ⊙ n], and the direct part of the state gradient z ⊙ dh; the first two added to
    /// db and dbh (the input-side and recurrent biases' gradients) when those are not null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruAfterBack(int H, float* g, float* phn, float* hPrev, float* dOut, float* dh, float* dp, float* dph, float* direct,
        float* db, float* dbh)
    {
        var pass = new GruAfterBackPass
            { H = H, G = g, Phn = phn, HPrev = hPrev, DOut = dOut, Dh = dh, Dp = dp, Dph = dph, Direct = direct, Db = db, Dbh = dbh };
        EachUnit(ref pass, H);
    }

    struct GruAfterBackPass : IUnitPass
    {
        public int H;
        public float* G, Phn, HPrev, DOut, Dh, Dp, Dph, Direct, Db, Dbh;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var one = L.One;
            var r = L.Load<S>(G + u, m); var z = L.Load<S>(G + H + u, m); var n = L.Load<S>(G + 2 * H + u, m);
            var dht = L.Add(L.Load<S>(Dh + u, m), L.Load<S>(DOut + u, m));
            var dan = L.Multiply(L.Multiply(dht, L.Subtract(one, z)), L.MultiplyAddNegated(n, n, one));
            var dar = L.Multiply(L.Multiply(dan, L.Load<S>(Phn + u, m)), L.Multiply(r, L.Subtract(one, r)));
            var daz = L.Multiply(L.Multiply(dht, L.Subtract(L.Load<S>(HPrev + u, m), n)), L.Multiply(z, L.Subtract(one, z)));
            var dhn = L.Multiply(dan, r);
            L.Store<S>(Dp + u, m, dar); L.Store<S>(Dp + H + u, m, daz); L.Store<S>(Dp + 2 * H + u, m, dan);
            L.Store<S>(Dph + u, m, dar); L.Store<S>(Dph + H + u, m, daz); L.Store<S>(Dph + 2 * H + u, m, dhn);
            L.Store<S>(Direct + u, m, L.Multiply(dht, z));
            if (Db != null)
            {
                L.Store<S>(Db + u, m, L.Add(L.Load<S>(Db + u, m), dar));
                L.Store<S>(Db + H + u, m, L.Add(L.Load<S>(Db + H + u, m), daz));
                L.Store<S>(Db + 2 * H + u, m, L.Add(L.Load<S>(Db + 2 * H + u, m), dan));
            }
            if (Dbh == null) return;
            L.Store<S>(Dbh + u, m, L.Add(L.Load<S>(Dbh + u, m), dar));
            L.Store<S>(Dbh + H + u, m, L.Add(L.Load<S>(Dbh + H + u, m), daz));
            L.Store<S>(Dbh + 2 * H + u, m, L.Add(L.Load<S>(Dbh + 2 * H + u, m), dhn));
        }

        public void Unit(int u)
        {
            float r = G[u], z = G[H + u], n = G[2 * H + u];
            var dht = Dh[u] + DOut[u];
            var dan = dht * (1 - z) * (1 - n * n);
            var dar = dan * Phn[u] * r * (1 - r);
            var daz = dht * (HPrev[u] - n) * z * (1 - z);
            Dp[u] = dar; Dp[H + u] = daz; Dp[2 * H + u] = dan;
            Dph[u] = dar; Dph[H + u] = daz; Dph[2 * H + u] = dan * r;
            Direct[u] = dht * z;
            if (Db != null)
            {
                Db[u] += dar; Db[H + u] += daz; Db[2 * H + u] += dan;
            }
            if (Dbh == null) return;
            Dbh[u] += dar; Dbh[H + u] += daz; Dbh[2 * H + u] += Dph[2 * H + u];
        }
    }

    /// <summary>GRU (reset-before) backward, first half: the n pre-activation's gradient, z's, and z ⊙ dh; the first two
    /// added to db's n and z parts when db is not null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruBeforeBackN(int H, float* g, float* hPrev, float* dOut, float* dh, float* dp, float* direct, float* db)
    {
        var pass = new GruBeforeBackNPass { H = H, G = g, HPrev = hPrev, DOut = dOut, Dh = dh, Dp = dp, Direct = direct, Db = db };
        EachUnit(ref pass, H);
    }

    struct GruBeforeBackNPass : IUnitPass
    {
        public int H;
        public float* G, HPrev, DOut, Dh, Dp, Direct, Db;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var one = L.One;
            var z = L.Load<S>(G + H + u, m); var n = L.Load<S>(G + 2 * H + u, m);
            var dht = L.Add(L.Load<S>(Dh + u, m), L.Load<S>(DOut + u, m));
            var dan = L.Multiply(L.Multiply(dht, L.Subtract(one, z)), L.MultiplyAddNegated(n, n, one));
            var daz = L.Multiply(L.Multiply(dht, L.Subtract(L.Load<S>(HPrev + u, m), n)), L.Multiply(z, L.Subtract(one, z)));
            L.Store<S>(Dp + 2 * H + u, m, dan);
            L.Store<S>(Dp + H + u, m, daz);
            L.Store<S>(Direct + u, m, L.Multiply(dht, z));
            if (Db == null) return;
            L.Store<S>(Db + H + u, m, L.Add(L.Load<S>(Db + H + u, m), daz));
            L.Store<S>(Db + 2 * H + u, m, L.Add(L.Load<S>(Db + 2 * H + u, m), dan));
        }

        public void Unit(int u)
        {
            float z = G[H + u], n = G[2 * H + u];
            var dht = Dh[u] + DOut[u];
            Dp[2 * H + u] = dht * (1 - z) * (1 - n * n);
            Dp[H + u] = dht * (HPrev[u] - n) * z * (1 - z);
            Direct[u] = dht * z;
            if (Db == null) return;
            Db[H + u] += Dp[H + u];
            Db[2 * H + u] += Dp[2 * H + u];
        }
    }

    /// <summary>GRU (reset-before) backward, second half, given d(r ⊙ h): r's gradient (added to db's r part when db is
    /// not null) and r ⊙ d(r ⊙ h) added to the direct part.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void GruBeforeBackRz(int H, float* g, float* hPrev, float* dRh, float* dp, float* direct, float* db)
    {
        var pass = new GruBeforeBackRzPass { G = g, HPrev = hPrev, DRh = dRh, Dp = dp, Direct = direct, Db = db };
        EachUnit(ref pass, H);
    }

    struct GruBeforeBackRzPass : IUnitPass
    {
        public float* G, HPrev, DRh, Dp, Direct, Db;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var r = L.Load<S>(G + u, m); var drh = L.Load<S>(DRh + u, m);
            var dar = L.Multiply(L.Multiply(drh, L.Load<S>(HPrev + u, m)), L.Multiply(r, L.Subtract(L.One, r)));
            L.Store<S>(Dp + u, m, dar);
            L.Store<S>(Direct + u, m, L.MultiplyAdd(drh, r, L.Load<S>(Direct + u, m)));
            if (Db != null) L.Store<S>(Db + u, m, L.Add(L.Load<S>(Db + u, m), dar));
        }

        public void Unit(int u)
        {
            var r = G[u];
            Dp[u] = DRh[u] * HPrev[u] * r * (1 - r);
            Direct[u] += DRh[u] * r;
            if (Db != null) Db[u] += Dp[u];
        }
    }

    /// <summary>SimpleRnn step backward from the step's new state h: the pre-activation gradient into dp and, when db is
    /// not null, added to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void RnnBack(SimdCell cell, int H, float* h, float* dOut, float* dh, float* dp, float* db)
    {
        var pass = new RnnBackPass { Cell = cell, Hs = h, DOut = dOut, Dh = dh, Dp = dp, Db = db };
        EachUnit(ref pass, H);
    }

    struct RnnBackPass : IUnitPass
    {
        public SimdCell Cell;
        public float* Hs, DOut, Dh, Dp, Db;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Lanes<V, L, S>(int u, V m) where V : struct where L : struct, ILanes<V> where S : struct, IStrip
        {
            var d = L.Add(L.Load<S>(Dh + u, m), L.Load<S>(DOut + u, m));
            var y = L.Load<S>(Hs + u, m);
            var p = Cell switch
            {
                SimdCell.RnnTanh => L.Multiply(d, L.MultiplyAddNegated(y, y, L.One)),
                SimdCell.RnnRelu => L.WherePositive(y, d),
                SimdCell.RnnSigmoid => L.Multiply(d, L.Multiply(y, L.Subtract(L.One, y))),
                _ => d,
            };
            L.Store<S>(Dp + u, m, p);
            if (Db != null) L.Store<S>(Db + u, m, L.Add(L.Load<S>(Db + u, m), p));
        }

        public void Unit(int u)
        {
            var d = Dh[u] + DOut[u];
            var y = Hs[u];
            Dp[u] = Cell switch
            {
                SimdCell.RnnTanh => d * (1 - y * y),
                SimdCell.RnnRelu => y > 0 ? d : 0,
                SimdCell.RnnSigmoid => d * y * (1 - y),
                _ => d,
            };
            if (Db != null) Db[u] += Dp[u];
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>to = x ⊙ y, n floats: a table row times its SpatialDropout scale row, here and in the embedding's own
    /// scaled lookup (<see cref="SimdEmbedding"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Multiply(float* x, float* y, float* to, int n)
    {
        var u = 0;
        if (Avx.IsSupported)
            for (; u + 8 <= n; u += 8) Avx.Store(to + u, Avx.Multiply(Avx.LoadVector256(x + u), Avx.LoadVector256(y + u)));
        for (; u < n; u++) to[u] = x[u] * y[u];
    }

    /// <summary>Whether the loops request each row's lines of the next step (forward) or the previous one (backward) in
    /// the row pass before. The saved buffers are written once in the forward pass and read once in the backward, a whole
    /// sequence apart, and are far larger than an L2 cache (E7's LSTM: 25.6 MB a forward pass), so most of their lines
    /// come from further away; and a product's tile stores a burst of whole lines across its rows (twelve on the
    /// AVX-512 path), each read before it is written. Requested a step ahead (prefetcht1: into L2 on Intel CPUs), they
    /// are near when the step comes: E7's and E4's layers 4–11 % shorter at one thread, −2 to 6 % at two (`bench
    /// phases --layer --prefetch-ab`, Intel Xeon @ 2.00GHz, avx512f; docs/BENCHMARKS.md, twelfth pass). That switch
    /// turns it off for an A/B, process-wide (the embedding rows' requests stay). The same floats either way.</summary>
    internal static bool PrefetchAhead { get; set; } = true;

    /// <summary>Whether a GRU's backward pass adds each row's pre-activation gradients to its bias gradients as it
    /// computes them (in the per-unit passes, like an LSTM's), rather than in a pass over the rows after the step's
    /// products, which read them back: E7's GRU layer (reset-after) backward 6–14 % shorter at one and two threads, the
    /// whole step's with E7's own reset-before GRU 1–15 % (two runs each of `bench phases --gru-bias-ab`, with
    /// `--layer`, then with `--model`; Intel Xeon @ 2.00GHz, avx512f; docs/BENCHMARKS.md). Each bias element gets the
    /// same additions in the same order either way: the same floats. Off only for an A/B, process-wide.</summary>
    internal static bool GruBiasInPass { get; set; } = true;

    /// <summary>Requests the lines of n floats from p into the L2 cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Ahead(float* p, int n)
    {
        var bytes = n * sizeof(float);
        if (bytes <= 0) return;
        var q = (byte*)p;
        for (var line = 0; line < bytes; line += 64) Sse.Prefetch1(q + line);
        if (((nint)q & 63) != 0) Sse.Prefetch1(q + bytes - 1);             // a row not on a line boundary: one more line
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Copy(float* from, float* to, int n)
    {
        // rows of a few dozen floats, many times per step: vector moves inline beat a call to memmove (which took 10 % of
        // a SimpleRnn training step); the buffers never overlap
        var u = 0;
        if (Avx.IsSupported)
            for (; u + 8 <= n; u += 8) Avx.Store(to + u, Avx.LoadVector256(from + u));
        for (; u < n; u++) to[u] = from[u];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Clear(float* p, int n)
    {
        var u = 0;
        if (Avx.IsSupported)
            for (; u + 8 <= n; u += 8) Avx.Store(p + u, Vector256<float>.Zero);
        for (; u < n; u++) p[u] = 0;
    }

    /// <summary>to += from, n floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Add(float* from, float* to, int n)
    {
        var u = 0;
        if (SimdMath.UseAvx2)
            for (; u + 8 <= n; u += 8)
                Avx.Store(to + u, Avx.Add(Avx.LoadVector256(to + u), Avx.LoadVector256(from + u)));
        for (; u < n; u++) to[u] += from[u];
    }
}
