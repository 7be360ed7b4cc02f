using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SeqDsl.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// The SIMD kernel as a libtorch autograd function: the recurrence of one direction of one layer, given the input
/// projection (computed by libtorch, so its gradient flows on to the input weights, the biases and the input). The
/// rest of the engine (stacking, directions, lengths, dropout, bias layouts) is the loop kernel's
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

    /// <summary>Output (B, T, H), final state (B, H) and, for an LSTM, final cell (B, H).</summary>
    public static (Tensor Output, Tensor H, Tensor? C) Run(SimdCell cell, Tensor proj, Tensor whh, Tensor? bhh, Tensor h0, Tensor? c0, int[]? lengths)
    {
        var r = SimdFunction.apply(proj, whh, bhh!, h0, c0!, lengths!, cell);
        return (r[0], r[1], cell == SimdCell.Lstm ? r[2] : null);
    }

    internal static int Gates(SimdCell cell) => cell switch
    {
        SimdCell.Lstm => 4,
        SimdCell.GruResetAfter or SimdCell.GruResetBefore => 3,
        _ => 1,
    };

    internal static unsafe float* Ptr(Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>Runs body over blocks of rows (multiples of 4 where possible), one per thread libtorch may use.</summary>
    internal static unsafe void Blocks(int rows, int scratchPerRow, int scratchFixed, Action<int, int, IntPtr> body)
    {
        var threads = Math.Max(1, Math.Min(torch.get_num_threads(), rows / 8));
        var per = (rows + threads - 1) / threads;
        per = (per + 3) / 4 * 4;
        var blocks = (rows + per - 1) / per;
        void Run(int i)
        {
            int r0 = i * per, r1 = Math.Min(rows, r0 + per);
            var n = (nuint)((r1 - r0) * scratchPerRow + scratchFixed) * sizeof(float);
            var scratch = NativeMemory.AlignedAlloc(n, 64);
            try { body(r0, r1, (IntPtr)scratch); }
            finally { NativeMemory.AlignedFree(scratch); }
        }
        if (blocks == 1) Run(0);
        else Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, Run);
    }

    private sealed class SimdFunction : autograd.MultiTensorFunction<SimdFunction>
    {
        public override string Name => "SeqDslSimdRecurrence";

        public override unsafe List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var cell = (SimdCell)vars[6];
            var lengths = vars[5] as int[];
            var proj = ((Tensor)vars[0]).contiguous();
            var whh = ((Tensor)vars[1]).contiguous();
            var bhh = (vars[2] as Tensor)?.contiguous();
            var h0 = ((Tensor)vars[3]).contiguous();
            var c0 = (vars[4] as Tensor)?.contiguous();
            int B = (int)proj.shape[0], T = (int)proj.shape[1], GH = (int)proj.shape[2], H = (int)h0.shape[1], G = Gates(cell);
            if (GH != G * H) throw new InvalidOperationException($"SIMD kernel: projection width {GH} is not {G}·{H}");
            var lstm = cell == SimdCell.Lstm;
            var wT = whh.t().contiguous();
            var output = empty(B, T, H);
            var hT = empty(B, H);
            var cT = lstm ? empty(B, H) : null;
            var rnn = G == 1;
            var gates = rnn ? null : empty(B, T, GH);
            var aux1 = lstm || !rnn ? empty(B, T, H) : null;
            var aux2 = lstm ? empty(B, T, H) : null;
            var hprev = empty(B, T, H);
            var lenHandle = lengths is null ? default : GCHandle.Alloc(lengths, GCHandleType.Pinned);
            try
            {
                var buf = new RecurrentKernels.Buffers
                {
                    B = B, T = T, H = H, G = G,
                    Len = lengths is null ? null : (int*)lenHandle.AddrOfPinnedObject(),
                    Proj = Ptr(proj), W = Ptr(whh), WT = Ptr(wT), Bhh = bhh is null ? null : Ptr(bhh),
                    H0 = Ptr(h0), C0 = c0 is null ? null : Ptr(c0),
                    Out = Ptr(output), HT = Ptr(hT), CT = cT is null ? null : Ptr(cT),
                    Gates = gates is null ? null : Ptr(gates), Aux1 = aux1 is null ? null : Ptr(aux1), Aux2 = aux2 is null ? null : Ptr(aux2),
                    HPrev = Ptr(hprev),
                };
                Blocks(B, 2 * H, RecurrentKernels.ForwardScratch(0, H, G),
                    (r0, r1, s) => RecurrentKernels.Forward(cell, buf, r0, r1, (float*)s));
            }
            finally
            {
                if (lenHandle.IsAllocated) lenHandle.Free();
            }
            ctx.save_for_backward([whh, gates!, aux1!, aux2!, hprev, output, c0!, bhh!]);
            ctx.save_data("cell", cell);
            if (lengths is not null) ctx.save_data("lengths", lengths);
            return lstm ? [output, hT, cT!] : [output, hT];
        }

        public override unsafe List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            var cell = (SimdCell)ctx.get_data("cell");
            var lengths = ctx.get_data("lengths") as int[];
            var saved = ctx.get_saved_variables();
            Tensor whh = saved[0], hprev = saved[4], output = saved[5];
            Tensor? gates = saved[1], aux1 = saved[2], aux2 = saved[3], c0 = saved[6], bhh = saved[7];
            var lstm = cell == SimdCell.Lstm;
            int B = (int)hprev.shape[0], T = (int)hprev.shape[1], H = (int)hprev.shape[2], G = Gates(cell), GH = G * H;
            var dOut = grads[0].contiguous();
            var dhT = grads[1].contiguous();
            var dcT = lstm ? grads[2].contiguous() : null;
            var dproj = empty(B, T, GH);
            var dph = cell == SimdCell.GruResetAfter ? empty(B, T, GH) : null;
            var dh0 = empty(B, H);
            var dc0 = lstm ? empty(B, H) : null;
            var lenHandle = lengths is null ? default : GCHandle.Alloc(lengths, GCHandleType.Pinned);
            try
            {
                var buf = new RecurrentKernels.Buffers
                {
                    B = B, T = T, H = H, G = G,
                    Len = lengths is null ? null : (int*)lenHandle.AddrOfPinnedObject(),
                    W = Ptr(whh), C0 = c0 is null ? null : Ptr(c0),
                    Out = Ptr(output), Gates = gates is null ? null : Ptr(gates),
                    Aux1 = aux1 is null ? null : Ptr(aux1), Aux2 = aux2 is null ? null : Ptr(aux2), HPrev = Ptr(hprev),
                    DOut = Ptr(dOut), DHT = Ptr(dhT), DCT = dcT is null ? null : Ptr(dcT),
                    DProj = Ptr(dproj), DPh = dph is null ? null : Ptr(dph), DH0 = Ptr(dh0), DC0 = dc0 is null ? null : Ptr(dc0),
                };
                Blocks(B, RecurrentKernels.BackwardScratch(1, H), 0,
                    (r0, r1, s) => RecurrentKernels.Backward(cell, buf, r0, r1, (float*)s));
            }
            finally
            {
                if (lenHandle.IsAllocated) lenHandle.Free();
            }
            // the recurrent weight's gradient: one product over every (row, step)
            var flatH = hprev.view(B * T, H);
            Tensor dW;
            if (cell == SimdCell.GruResetBefore)
            {
                var dp = dproj.view(B * T, GH);
                dW = cat([dp.narrow(1, 0, 2 * H).t().mm(flatH), dp.narrow(1, 2 * H, H).t().mm(aux1!.view(B * T, H))], 0);
            }
            else
                dW = (dph ?? dproj).view(B * T, GH).t().mm(flatH);
            var dBhh = dph is not null && bhh is not null ? dph.sum([0L, 1L]) : null;
            return [dproj, dW, dBhh!, dh0, dc0!, null!, null!];
        }
    }
}
