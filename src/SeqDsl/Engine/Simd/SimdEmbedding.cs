using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// An embedding lookup for training on the CPU whose backward pass adds each token's gradient row into a dense table
/// in one pass over the tokens (with several threads, each takes a range of the table's rows). libtorch's CPU
/// embedding backward sorts the indices and reduces per distinct row; at the textbooks' sizes (E7: 25,600 tokens of
/// 32 dimensions into 8,000 rows) E7's backward took 2.5–5.1 ms longer with it than with this lookup (AMD EPYC, AVX2;
/// docs/BENCHMARKS.md). The gradient is the same dense table libtorch's non-sparse
/// embedding produces, the padding row's gradient zero; repeated ids are summed in time-major token order (step by
/// step, rows within a step), so the sums are deterministic — and may differ from libtorch's in the last bits.
/// <para>(B, T) ids are looked up time-major: the result is a (B, T, D) view of (T, B, D) memory, the layout the SIMD
/// recurrent kernel reads and writes, so the input rows it copies each step are contiguous and the gradient it hands
/// back is read in order (the layers in between keep the layout: elementwise dropout does).</para>
/// <para>A SpatialDropout right after the embedding can run inside the lookup (<see cref="Lookup"/>'s channel scale): each
/// row is scaled as it is copied and each gradient row as it is added, instead of a product over the whole (B, T, D)
/// sequence each way.</para>
/// <para>A recurrent layer on the SIMD kernel right after the lookup makes it itself, in its step loop
/// (<see cref="EmbeddedInput"/>), with this class's checks and gradient.</para>
/// <para><c>SEQDSL_FUSED_EMBEDDING=0</c> turns this lookup off (libtorch's embedding then runs), for comparisons.</para>
/// </summary>
internal static class SimdEmbedding
{
    /// <summary>Whether the lookup may run (false when SEQDSL_FUSED_EMBEDDING=0).</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("SEQDSL_FUSED_EMBEDDING") != "0";

    /// <summary>Whether a recurrent layer on the SIMD kernel right after the lookup (a SpatialDropout between them
    /// allowed) makes the lookup itself (<see cref="EmbeddedInput"/>); false when SEQDSL_EMBEDDING_IN_KERNEL=0, for
    /// comparisons (tests set it).</summary>
    public static bool InKernel
    {
        get => InKernelOverride.Value ?? InKernelDefault;
        // in this execution context only (a test or benchmark comparing both, without touching other threads' work)
        internal set => InKernelOverride.Value = value;
    }

    private static readonly bool InKernelDefault = Environment.GetEnvironmentVariable("SEQDSL_EMBEDDING_IN_KERNEL") != "0";
    private static readonly AsyncLocal<bool?> InKernelOverride = new();

    /// <summary>Whether <see cref="Lookup"/> runs this table and these ids: a float32 CPU table, contiguous, with a
    /// gradient to take, int64 ids, each under 2³¹ bytes (what a span over the memory takes).</summary>
    public static bool Applies(Tensor weight, Tensor ids) =>
        Enabled && weight.dtype == ScalarType.Float32 && weight.device_type == DeviceType.CPU && weight.is_contiguous()
        && weight.requires_grad && is_grad_enabled() && ids.dtype == ScalarType.Int64
        && weight.numel() <= int.MaxValue / sizeof(float) && ids.numel() * weight.shape[1] <= int.MaxValue / sizeof(float);

    /// <summary>weight (V, D) rows at <paramref name="ids"/> (int64, any shape; (B, T) time-major underneath): (…ids, D).
    /// <paramref name="padding"/>: the row whose gradient stays zero, or null. <paramref name="scale"/>: for (B, T) ids,
    /// a (B, D) float32 factor each of row b's looked-up rows is multiplied by (a SpatialDropout's scaled mask; no
    /// gradient), or null. The table goes in as a <see cref="ParameterView"/> (its gradient kept, not copied).</summary>
    public static Tensor Lookup(Tensor weight, Tensor ids, long? padding, Tensor? scale = null)
    {
        using var table = ParameterView.Of(weight)!;
        return Function.apply(table, ids, padding ?? -1, scale!)[0];
    }

    /// <summary>(B, T) ids in step order, (T·B) contiguous: token n = t·B + b. (reshape alone can return a strided
    /// view — one step, or a batch of one, cut from a longer one.)</summary>
    internal static Tensor TimeMajor(Tensor ids) => ids.t().reshape(-1).contiguous();

    /// <summary>The contiguous int64 ids' first element, after checking that every id names one of the table's
    /// <paramref name="V"/> rows.</summary>
    internal static unsafe long* CheckIds(Tensor ids, long V)
    {
        var pid = (long*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(ids.bytes));
        for (long n = 0, N = ids.numel(); n < N; n++)
            if ((ulong)pid[n] >= (ulong)V)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {pid[n]} is outside the embedding's {V} rows");
        return pid;
    }

    /// <summary>The (V, D) table's gradient from the gradient rows <paramref name="g"/> (N, D) of the N looked-up rows
    /// (contiguous, in the order of <paramref name="ids"/>, contiguous int64), each times its scale row n mod B when
    /// <paramref name="scale"/> (B, D) is given; the <paramref name="padding"/> row's gradient zero (−1: none).</summary>
    internal static unsafe Tensor TableGradient(Tensor g, Tensor ids, Tensor? scale, long V, long padding)
    {
        long D = g.shape[^1], N = ids.numel();
        var dw = empty(V, D, dtype: ScalarType.Float32);
        var pg = SimdRecurrence.Ptr(g);
        var pw = SimdRecurrence.Ptr(dw);
        var pid = (long*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(ids.bytes));
        var ps = scale is null ? null : SimdRecurrence.Ptr(scale);
        var B = scale is null ? 1 : scale.shape[0];
        var avx = SimdMath.UseAvx2;
        // each chunk owns a range of the table's rows: it zeroes them, then adds the tokens whose ids fall in it, in
        // token order — every row's sum in the same order for any number of chunks, so the result is the same. (A
        // chunk of frequent ids — tokenizers number words by frequency — does more of the adds than another.)
        Chunked.Run(V, D, (v0, v1) => Function.GradientRows(v0, v1, pw, pg, pid, ps, N, B, D, padding, avx));
        GC.KeepAlive(g);                                                       // the pointers above are into these
        GC.KeepAlive(ids);
        GC.KeepAlive(scale);
        return dw;
    }

    private sealed class Function : autograd.MultiTensorFunction<Function>
    {
        public override string Name => "SeqDslEmbedding";

        public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var weight = (Tensor)vars[0];
            var ids = (Tensor)vars[1];
            var padding = (long)vars[2];
            var scale = (vars[3] as Tensor)?.contiguous();
            var timeMajor = ids.dim() == 2;
            if (scale is not null && (!timeMajor || scale.dtype != ScalarType.Float32 || !scale.shape.SequenceEqual(new[] { ids.shape[0], weight.shape[1] })))
                throw new ArgumentException($"the channel scale must be float32 (B, D) for (B, T) ids; got [{string.Join(", ", scale.shape)}] for ids [{string.Join(", ", ids.shape)}]");
            var flat = timeMajor ? TimeMajor(ids) : ids.reshape(-1);             // (T·B) in step order, or as given
            var rows = scale is null
                ? weight.index_select(0, flat)                                // checks every id against the table
                : ScaledRows(weight, flat, scale);
            ctx.save_for_backward(scale is null ? [flat] : [flat, scale]);
            ctx.save_data("shape", weight.shape);
            ctx.save_data("padding", padding);
            ctx.save_data("timeMajor", timeMajor);
            var D = weight.shape[1];
            return [timeMajor ? rows.view(ids.shape[1], ids.shape[0], D).transpose(0, 1) : rows.view([.. ids.shape, D])];
        }

        public override unsafe List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
        {
            var saved = ctx.get_saved_variables();
            var ids = saved[0].contiguous();
            var scale = saved.Count > 1 ? saved[1] : null;                    // (B, D): row b of step t is n = t·B + b
            var shape = (long[])ctx.get_data("shape");
            var padding = (long)ctx.get_data("padding");
            var timeMajor = (bool)ctx.get_data("timeMajor");
            long V = shape[0], D = shape[1], N = ids.shape[0];
            if (N == 0 || grads[0] is not { IsInvalid: false } g0) return [zeros(V, D, dtype: ScalarType.Float32), null!, null!, null!];
            // the gradient in the ids' order: time-major for (B, T) ids (already so when the recurrent kernel or a layer
            // that keeps the layout hands it back, else one copy)
            var g = (timeMajor ? g0.transpose(0, 1) : g0).contiguous();
            return [TableGradient(g, ids, scale, V, padding), null!, null!, null!];
        }

        /// <summary>Rows of <paramref name="weight"/> at the time-major ids, row n times scale row n mod B, in one
        /// pass; every id is checked against the table first.</summary>
        private static unsafe Tensor ScaledRows(Tensor weight, Tensor flat, Tensor scale)
        {
            long V = weight.shape[0], D = weight.shape[1], N = flat.shape[0], B = scale.shape[0];
            var ids = flat.contiguous();
            var pid = CheckIds(ids, V);
            var rows = empty(N, D, dtype: ScalarType.Float32);
            float* pr = SimdRecurrence.Ptr(rows), pw = SimdRecurrence.Ptr(weight), ps = SimdRecurrence.Ptr(scale);
            Chunked.Run(N, D, (n0, n1) => ScaledRange(n0, n1, pr, pw, pid, ps, B, D));
            GC.KeepAlive(weight);
            GC.KeepAlive(scale);
            GC.KeepAlive(ids);
            return rows;
        }

        /// <summary>Rows [v0, v1) of the table's gradient: zeroed, then each token's gradient row (times its scale row,
        /// unless ps is null) added to its id's row when the id falls in the range, in token order. (A static method:
        /// its pointers stay in registers, where a lambda reads them from its closure.)</summary>
        internal static unsafe void GradientRows(long v0, long v1, float* pw, float* pg, long* pid, float* ps, long N, long B, long D,
            long padding, bool avx)
        {
            new Span<float>(pw + v0 * D, checked((int)((v1 - v0) * D))).Clear();
            // b = n mod B, counted rather than divided (a 64-bit division per token cost more than its row's adds)
            for (long n = 0, b = 0; n < N; n++, b = b + 1 == B ? 0 : b + 1)
            {
                var id = pid[n];
                if (id < v0 || id >= v1 || id == padding) continue;
                if (ps is null) AddRow(pw + id * D, pg + n * D, D, avx);
                else AddScaledRow(pw + id * D, pg + n * D, ps + b * D, D, avx);
            }
        }

        /// <summary>Rows [n0, n1) of the lookup: table row ids[n] times scale row n mod B.</summary>
        private static unsafe void ScaledRange(long n0, long n1, float* pr, float* pw, long* pid, float* ps, long B, long D)
        {
            for (long n = n0, b = n0 % B; n < n1; n++, b = b + 1 == B ? 0 : b + 1)
                RecurrentKernels.Multiply(pw + pid[n] * D, ps + b * D, pr + n * D, (int)D);
        }

        /// <summary>dst += src ⊙ f, d floats.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void AddScaledRow(float* dst, float* src, float* f, long d, bool avx)
        {
            long j = 0;
            if (avx)
                for (; j + 8 <= d; j += 8)
                    Avx.Store(dst + j, Fma.MultiplyAdd(Avx.LoadVector256(src + j), Avx.LoadVector256(f + j), Avx.LoadVector256(dst + j)));
            for (; j < d; j++) dst[j] += src[j] * f[j];
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static unsafe void AddRow(float* dst, float* src, long d, bool avx)
        {
            long j = 0;
            if (avx)
                for (; j + 8 <= d; j += 8)
                    Avx.Store(dst + j, Avx.Add(Avx.LoadVector256(dst + j), Avx.LoadVector256(src + j)));
            for (; j < d; j++) dst[j] += src[j];
        }
    }
}
