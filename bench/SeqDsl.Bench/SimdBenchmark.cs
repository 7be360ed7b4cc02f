using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SeqDsl.Engine;
using SeqDsl.Engine.Simd;
using SeqDsl.Spec;
using static TorchSharp.torch;

/// <summary>
/// The SIMD kernel's parts in isolation: its register-tiled product on cache-resident operands (GFLOP/s against
/// libtorch's sgemm in the same run), its gate functions, one thread's memory read and write rates, and one recurrent
/// layer's forward and backward on the SIMD and the fused kernel, interleaved rounds, at the textbooks' sizes.
///   dotnet run -c Release --project bench/SeqDsl.Bench -- simd [--rounds N] [--threads T]
/// </summary>
static unsafe class SimdBenchmark
{
    public static int Run(Args opts)
    {
        Console.WriteLine($"machine: {Backend.Machine}; SIMD path {SimdMath.Width}; threads {get_num_threads()}");
        // 1. the product alone: 12 rows × 128 columns × K 64 (E7 LSTM's step product on 12 rows), and on 128 rows as the
        // kernel takes them at one thread (E7's step products: LSTM forward, its state and input gradients, SimpleRnn's
        // forward and gradients), operands in L1/L2; E4's shapes also on 8 and 4 rows (what a 6-row register tile leaves)
        foreach (var (m, n, k) in new[] { (12, 128, 64), (128, 128, 64), (128, 32, 128), (128, 32, 64), (128, 32, 32), (12, 32, 128), (12, 1024, 256 + 256),
                     (12, 32, 64), (12, 32, 32), (12, 200, 82), (8, 200, 82), (4, 200, 82), (12, 50, 200), (8, 50, 200) })
        {
            var a = new float[m * k]; var b = new float[k * n]; var c = new float[m * n];
            var rng = new Random(1);
            for (var i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
            for (var i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
            var reps = (int)Math.Max(10, 2e9 / (2.0 * m * n * k));
            fixed (float* pa = a, pb = b, pc = c)
            {
                for (var i = 0; i < 10; i++) SmallGemm.Run(m, n, k, pa, k, pb, n, null, 0, pc, n);
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < reps; i++) SmallGemm.Run(m, n, k, pa, k, pb, n, null, 0, pc, n);
                var gflops = 2.0 * m * n * k * reps / sw.Elapsed.TotalSeconds / 1e9;
                var packed = new float[SmallGemm.PackedSize(k, n)];
                fixed (float* pp = packed)
                {
                    SmallGemm.Pack(k, n, pb, n, pp);
                    for (var i = 0; i < 10; i++) SmallGemm.Run(m, n, k, pa, k, pb, n, pp, (long)k * SmallGemm.Panel, null, 0, pc, n);
                    sw.Restart();
                    for (var i = 0; i < reps; i++) SmallGemm.Run(m, n, k, pa, k, pb, n, pp, (long)k * SmallGemm.Panel, null, 0, pc, n);
                }
                var packedGflops = 2.0 * m * n * k * reps / sw.Elapsed.TotalSeconds / 1e9;
                // on the AVX-512 path, the packed product again with twelve- and eight-row tiles and with six-row ones
                // only (the best of three alternating rounds each)
                var tiles = "";
                if (SimdMath.Width == SimdWidth.Avx512 && m >= 7)
                    fixed (float* pp = packed)
                    {
                        // (a lambda cannot capture fixed pointers: their addresses, pinned for its calls)
                        nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc, ip = (nint)pp;
                        var (tall, six) = TilesAb(() => SmallGemm.Run(m, n, k, (float*)ia, k, (float*)ib, n, (float*)ip, (long)k * SmallGemm.Panel,
                            null, 0, (float*)ic, n), reps, 2.0 * m * n * k);
                        tiles = $" (packed: {tall:F1} on 12/8-row tiles and 512-bit 16-column strips, {six:F1} on 6-row tiles)";
                    }
                Console.WriteLine($"SmallGemm {m}×{k}·{k}×{n}: {gflops:F1} GFLOP/s unpacked, {packedGflops:F1} packed{tiles}");
            }
        }
        // the weight-gradient product one backward step accumulates, C (m×n) += Aᵀ·B over the step's rows (E7 LSTM,
        // SimpleRnn and E4 at one thread); the E4 shape again over 4 and 8 steps' rows at once (the kernel groups steps
        // to about 128 rows: RecurrentKernels.GroupSteps) and over two threads' 16 rows
        foreach (var (rows, m, n) in new[] { (128, 128, 64), (128, 32, 64), (32, 200, 82), (128, 200, 82), (256, 200, 82), (16, 200, 82) })
        {
            var a = new float[rows * m]; var b = new float[rows * n]; var c = new float[m * n];
            var rng = new Random(1);
            for (var i = 0; i < a.Length; i++) a[i] = (float)rng.NextDouble();
            for (var i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble();
            var reps = (int)Math.Max(10, 2e9 / (2.0 * rows * m * n));
            fixed (float* pa = a, pb = b, pc = c)
            {
                for (var i = 0; i < 10; i++) SmallGemm.AccumulateAtB(rows, m, n, pa, m, pb, n, pc, n);
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < reps; i++) SmallGemm.AccumulateAtB(rows, m, n, pa, m, pb, n, pc, n);
                var gflops = 2.0 * rows * m * n * reps / sw.Elapsed.TotalSeconds / 1e9;
                var tiles = "";
                if (SimdMath.Width == SimdWidth.Avx512)
                {
                    nint ia = (nint)pa, ib = (nint)pb, ic = (nint)pc;
                    var (tall, six) = TilesAb(() => SmallGemm.AccumulateAtB(rows, m, n, (float*)ia, m, (float*)ib, n, (float*)ic, n), reps,
                        2.0 * rows * m * n);
                    tiles = $" ({tall:F1} on 12/8-row tiles and 512-bit 16-column strips, {six:F1} on 6-row tiles)";
                }
                Console.WriteLine($"AccumulateAtB {rows} rows, C {m}×{n}: {gflops:F1} GFLOP/s{tiles}");
            }
        }
        // the gate functions on a few rows in L1 (12 rows × 32 units, SimpleRnn step state rows, row
        // stride 64 floats as in the kernel), values spread over [-3, 3]: nanoseconds per 8 floats, on 8 lanes and on 16
        GateFunctions();
        using (var x = randn(1024, 1024))
        using (var y = randn(1024, 1024))
        {
            for (var i = 0; i < 3; i++) { using var w = x.mm(y); }
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < 10; i++) { using var w = x.mm(y); }
            Console.WriteLine($"libtorch sgemm 1024³: {2.0 * 1024 * 1024 * 1024 * 10 / sw.Elapsed.TotalSeconds / 1e9:F1} GFLOP/s");
        }
        MemoryRates();
        Console.WriteLine();
        // 2. one layer, forward (with gradients) and backward, B 128 × T 200 × I 32 (E7) and B 32 × T 200 × I 32, H 50 (E4);
        // a 64-unit LSTM on 100 inputs (the largest weights Auto gives the SIMD kernel: its weight gradient after the loop)
        Console.WriteLine("| layer | kernel | forward ms | backward ms |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var (text, b, t, i) in new[] { ("Lstm(32)", 128, 200, 32), ("Gru(32)", 128, 200, 32), ("Gru(32, resetAfter: false)", 128, 200, 32),
                                               ("SimpleRnn(32)", 128, 200, 32), ("Lstm(50)", 32, 200, 32), ("Lstm(64)", 128, 200, 100),
                                               ("Lstm(256)", 32, 35, 1027) })
        {
            var kernels = text.Contains("resetAfter: false") ? new[] { Kernel.Loop, Kernel.Simd } : new[] { Kernel.Fused, Kernel.Simd };
            var nets = kernels.Select(k => Network.Compile(ModelSyntax.Parse($"{text.TrimEnd(')')}, kernel: {k}).Dense(1)"),
                new CompileOptions { Input = new InputSpec(Features: i), Seed = 1 })).ToArray();
            using var xin = randn(b, t, i);
            var fwd = kernels.Select(_ => new List<double>()).ToArray();
            var bwd = kernels.Select(_ => new List<double>()).ToArray();
            for (var r = 0; r < opts.Rounds + 2; r++)
                for (var q = 0; q < nets.Length; q++)
                {
                    var s = (q + r) % nets.Length;
                    using var scope = NewDisposeScope();
                    var x = xin.detach().requires_grad_(true);
                    var sw = Stopwatch.StartNew();
                    var loss = nets[s].Forward(x, (Tensor?)null).sum();
                    var f = sw.Elapsed.TotalMilliseconds;
                    sw.Restart();
                    loss.backward();
                    var g = sw.Elapsed.TotalMilliseconds;
                    if (r >= 2) { fwd[s].Add(f); bwd[s].Add(g); }
                }
            for (var q = 0; q < nets.Length; q++)
                Console.WriteLine($"| {text} B {b} T {t} I {i} | {kernels[q]} | {Timing.Median(fwd[q]).ToString("F1", CultureInfo.InvariantCulture)} | {Timing.Median(bwd[q]).ToString("F1", CultureInfo.InvariantCulture)} |");
            foreach (var n in nets) n.Dispose();
        }
        return 0;
    }

    /// <summary>GFLOP/s of <paramref name="reps"/> calls of a product of <paramref name="flops"/> with SmallGemm.TallTiles on
    /// and off: the best of three alternating rounds each (the setting restored after).</summary>
    static (double Tall, double Six) TilesAb(Action product, int reps, double flops)
    {
        var best = new double[2];
        var before = SmallGemm.TallTiles;
        try
        {
            for (var round = 0; round < 6; round++)
            {
                SmallGemm.TallTiles = round % 2 == 0;
                var sw = Stopwatch.StartNew();
                for (var i = 0; i < reps; i++) product();
                best[round % 2] = Math.Max(best[round % 2], flops * reps / sw.Elapsed.TotalSeconds / 1e9);
            }
        }
        finally { SmallGemm.TallTiles = before; }
        return (best[0], best[1]);
    }

    /// <summary>One thread's memory rates, 256 MiB well past every cache: reading (sums of 256-bit vectors) and writing
    /// (256-bit stores, which read each line before writing it), GB/s, the best of three passes each — what a
    /// kernel's saved buffers (written once in the forward pass, read once in the backward) cost per byte at best (one
    /// sequential stream; the kernel's are many).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MemoryRates()
    {
        if (!Avx.IsSupported) return;
        const long floats = 64L << 20;
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
        try
        {
            new Span<float>(buffer, (int)floats).Fill(1f);                        // every page mapped before the timing
            double read = 0, write = 0;
            var sink = Vector256<float>.Zero;
            for (var pass = 0; pass < 3; pass++)
            {
                var sw = Stopwatch.StartNew();
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;    // four chains of adds
                for (long i = 0; i < floats; i += 32)
                {
                    s0 = Avx.Add(s0, Avx.LoadAlignedVector256(buffer + i));
                    s1 = Avx.Add(s1, Avx.LoadAlignedVector256(buffer + i + 8));
                    s2 = Avx.Add(s2, Avx.LoadAlignedVector256(buffer + i + 16));
                    s3 = Avx.Add(s3, Avx.LoadAlignedVector256(buffer + i + 24));
                }
                read = Math.Max(read, floats * sizeof(float) / sw.Elapsed.TotalSeconds / 1e9);
                sink = Avx.Add(sink, Avx.Add(Avx.Add(s0, s1), Avx.Add(s2, s3)));
                var value = Vector256.Create((float)pass);
                sw.Restart();
                for (long i = 0; i < floats; i += 8) Avx.StoreAligned(buffer + i, value);
                write = Math.Max(write, floats * sizeof(float) / sw.Elapsed.TotalSeconds / 1e9);
            }
            if (float.IsNaN(sink.GetElement(0))) Console.WriteLine("(the sums are NaN)");          // the reads are used
            Console.WriteLine($"memory, one thread, 256 MiB, one stream: read {read:F1} GB/s, write {write:F1} GB/s (bytes stored; each line is read first)");
        }
        finally { NativeMemory.AlignedFree(buffer); }
    }

    static void GateFunctions()
    {
        if (!SimdMath.UseAvx2) return;
        GateFunction<TanhFn, Vector256<float>, Lanes256>("tanh");
        GateFunction<SigmoidFn, Vector256<float>, Lanes256>("sigmoid");
        if (!Avx512F.IsSupported) return;
        GateFunction<TanhFn, Vector512<float>, Lanes512>("tanh");
        GateFunction<SigmoidFn, Vector512<float>, Lanes512>("sigmoid");
    }

    static void GateFunction<F, V, L>(string name) where F : struct, IGateFunction where V : struct where L : struct, ILanes<V>
    {
        const int rows = 12, units = 32, ld = 64, reps = 200_000;
        var vectors = rows * units / L.Count;
        var src = new float[rows * ld];
        var dst = new float[rows * ld];
        var rng = new Random(1);
        for (var i = 0; i < src.Length; i++) src[i] = (float)(rng.NextDouble() * 6 - 3);
        var best = double.MaxValue;
        fixed (float* ps = src, pd = dst)
            for (var round = 0; round < 3; round++)
            {
                var sw = Stopwatch.StartNew();
                for (var rep = 0; rep < reps; rep++)
                    for (var r = 0; r < rows; r++)
                        for (var u = 0; u < units; u += L.Count)
                            L.Store<WholeStrip>(pd + r * ld + u, default, F.Of<V, L>(L.Load<WholeStrip>(ps + r * ld + u, default)));
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds * 1e6 / ((double)reps * vectors * L.Count / 8));
            }
        Console.WriteLine($"{name}, {L.Count} lanes: {best:F2} ns per 8 floats (12 rows × 32 units, row stride 64, in L1)");
    }
}
