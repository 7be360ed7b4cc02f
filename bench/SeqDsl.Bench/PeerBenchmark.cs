using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using System.Text.Json.Nodes;
using SeqDsl;
using SeqDsl.Engine;
using SeqDsl.Engine.Simd;
using SeqDsl.Spec;
using SeqDsl.Training;
using static TorchSharp.torch;

/// <summary>
/// SeqDsl against PyTorch (bench/pytorch/peer.py, Debian's python3-torch) on the same models, losses and
/// optimizers, interleaved round by round in one run: a round runs K training steps on each side, in an
/// order that rotates between rounds. Two PyTorch peers run beside SeqDsl: one with the same allocator
/// settings as SeqDsl's process, one with glibc's defaults. The machine's sgemm rate is measured in the
/// same run, so GFLOP/s can be read as a share of what this CPU does on one large matrix product: once before each
/// thread count, and again as two more sides of every round (libtorch's sgemm in this process, and OpenBLAS's in a
/// PyTorch process with the widest kernels the CPU runs), so that each round's share divides by the faster sgemm
/// measured beside it (on a shared machine the rate drifts by a third within minutes; on an AMD Zen 5 libtorch's sgemm
/// ran at half OpenBLAS's AVX-512 rate).
/// </summary>
static class PeerBenchmark
{
    /// <summary>One benchmark configuration: the SeqDsl model text and the peer's description of the same model.</summary>
    sealed record Config(string Name, string Model, InputSpec Input, int B, int T, Loss Loss, OptimizerSpec Optimizer,
        JsonObject Peer, double ForwardFlops)
    {
        /// <summary>Whether a step is the recurrent layer's forward and backward alone (<see cref="AsLayer"/>).</summary>
        public bool LayerOnly { get; init; }
    }

    static double Rnn(int gates, long b, long t, long i, long h, int directions = 1) => 2.0 * b * t * gates * h * (i + h) * directions;
    static double Dense(long rows, long i, long o) => 2.0 * rows * i * o;

    /// <summary>The config's recurrent layer alone (<c>peer --layer</c>): the same cell, units, batch and steps on a
    /// random float input of the width the layer sees in the model (the embedding's or the features'); a step is its
    /// forward and backward — the input's and every weight's gradient, from a fixed gradient of the last step's state —
    /// and nothing else: its FLOPs are 3 × the layer's forward products, counted whole.</summary>
    static Config AsLayer(Config cfg)
    {
        var p = cfg.Peer;
        var cell = p["cell"]!.GetValue<string>();
        int hidden = p["hidden"]!.GetValue<int>(), inputs = (p["embed"] ?? p["features"])!.GetValue<int>();
        var (_, text, gates) = Cells.Single(c => c.Peer == cell);
        // (the peer builds a whole model around the layer; a layer-only step runs the layer alone)
        var peer = PeerModel(cell, hidden, cfg.B, cfg.T, "mse", "adam", 1e-3, false, [(1, "linear")], features: inputs, layerOnly: true);
        return new Config($"{cfg.Name} layer", $"{text}({hidden})", new InputSpec(Features: inputs), cfg.B, cfg.T, Loss.Mse,
            new OptimizerSpec.Adam(1e-3), peer, Rnn(gates, cfg.B, cfg.T, inputs, hidden)) { LayerOnly = true };
    }

    /// <summary>The cells the configs use: the peer's name, SeqDsl's layer name, the gate count.</summary>
    static readonly (string Peer, string Layer, int Gates)[] Cells = [("lstm", "Lstm", 4), ("gru", "Gru", 3), ("rnn", "SimpleRnn", 1)];

    /// <summary>The PyTorch peer's description of a model (bench/pytorch/peer.py reads it).</summary>
    static JsonObject PeerModel(string cell, int hidden, int b, int t, string loss, string optimizer, double lr, bool perStep,
        (int units, string act)[] dense, int? vocab = null, int? embed = null, int? features = null, bool oneHot = false,
        double spatial = 0, double dropout = 0, bool layerOnly = false) => new()
    {
        ["cell"] = cell, ["hidden"] = hidden, ["batch"] = b, ["time"] = t, ["loss"] = loss, ["optimizer"] = optimizer,
        ["lr"] = lr, ["perStep"] = perStep, ["vocab"] = vocab, ["embed"] = embed, ["features"] = features,
        ["oneHot"] = oneHot, ["spatialDropout"] = spatial, ["dropout"] = dropout, ["layerOnly"] = layerOnly,
        ["dense"] = new JsonArray(dense.Select(d => (JsonNode)new JsonArray(d.units, d.act)).ToArray()),
    };

    static IEnumerable<Config> Configs()
    {
        // seed 003's E7 models at their sizes (vocab 8000, maxlen 200, Embed 32, 32 units, batch 128, RMSprop, BCE);
        // the GRU is libtorch's fused reset-after GRU on both sides (E7's reset-before GRU has no fused kernel in either)
        foreach (var (cell, layer, gates) in Cells)
        {
            var text = $"{layer}(32)";
            yield return new Config($"E7 {text}", $"Embed(32).SpatialDropout(0.4).{text}.Dropout(0.4).Dense(1, Sigmoid)",
                new InputSpec(Vocab: 8000), 128, 200, Loss.Bce, new OptimizerSpec.RmsProp(),
                PeerModel(cell, 32, 128, 200, "bce", "rmsprop", 1e-3, false, [(1, "sigmoid")], vocab: 8000, embed: 32, spatial: 0.4, dropout: 0.4),
                Rnn(gates, 128, 200, 32, 32) + Dense(128, 32, 1));
        }
        // seed 002's E4 model (vocabulary 75,979, Embed 32, LSTM 50, Dense 32 relu, Dense 1 sigmoid, Adam 3e-3, batch 32),
        // full-length rows of 200 steps on both sides (no packing)
        yield return new Config("E4 Lstm(50)", "Embed(32).Lstm(50).Dense(32, Relu).Dense(1, Sigmoid)", new InputSpec(Vocab: 75979), 32, 200,
            Loss.Bce, new OptimizerSpec.Adam(3e-3),
            PeerModel("lstm", 50, 32, 200, "bce", "adam", 3e-3, false, [(32, "relu"), (1, "sigmoid")], vocab: 75979, embed: 32),
            Rnn(4, 32, 200, 32, 50) + Dense(32, 50, 32) + Dense(32, 32, 1));
        // d2l's char LM: one-hot input over 1,027 characters, LSTM 256, per-step output, cross-entropy, Adam
        yield return new Config("char LM Lstm(256)", "Lstm(256, returnSequences: true).Dense(1027)", new InputSpec(Features: 1027), 32, 35,
            Loss.CrossEntropy, new OptimizerSpec.Adam(1e-3),
            PeerModel("lstm", 256, 32, 35, "ce", "adam", 1e-3, true, [(1027, "linear")], features: 1027, oneHot: true),
            Rnn(4, 32, 35, 1027, 256) + Dense(32 * 35, 256, 1027));
        // seed 002's War and Peace model: Embed 56 → 256, LSTM 512, per-step output, batch 64 × 40, Adam 3e-3
        yield return new Config("War and Peace Lstm(512)", "Embed(256).Lstm(512, returnSequences: true).Dense(56)", new InputSpec(Vocab: 56), 64, 40,
            Loss.CrossEntropy, new OptimizerSpec.Adam(3e-3),
            PeerModel("lstm", 512, 64, 40, "ce", "adam", 3e-3, true, [(56, "linear")], vocab: 56, embed: 256),
            Rnn(4, 64, 40, 256, 512) + Dense(64 * 40, 512, 56));
        // a large layer: input 512, LSTM 512, B 64, T 100 (the size where oneDNN's LSTM was measured faster)
        yield return new Config("I 512 Lstm(512)", "Lstm(512).Dense(1)", new InputSpec(Features: 512), 64, 100,
            Loss.Mse, new OptimizerSpec.Adam(1e-3),
            PeerModel("lstm", 512, 64, 100, "mse", "adam", 1e-3, false, [(1, "linear")], features: 512),
            Rnn(4, 64, 100, 512, 512) + Dense(64, 512, 1));
    }

    /// <summary>Where a SeqDsl training step's time goes, per config and kernel: forward with the loss, backward, and the
    /// optimizer's update, timed separately (medians over rounds; no peer); with --layer, each config's recurrent layer
    /// alone (<see cref="AsLayer"/>): its forward, its backward from the fixed gradient, no loss and no update.
    ///   dotnet run -c Release --project bench/SeqDsl.Bench -- phases [--rounds N] [--threads-list 1,2] [--only NAME] [--kernels simd]
    ///   [--layer | --model TEXT] [--embedding-ab | --layout-ab | --width-ab | --gates-ab | --tiles-ab | --prefetch-ab | --input-grad-ab |
    ///   --gru-bias-ab]</summary>
    public static int Phases(string[] args)
    {
        var rounds = IntArg(args, "--rounds", 20);
        var layer = args.Contains("--layer"); // each config's recurrent layer alone (AsLayer): forward, backward
        if (layer && Arg(args, "--model") is not null)
        {
            Console.Error.WriteLine("phases: --layer times a config's own recurrent layer; --model replaces the model: give one of them");
            return 2;
        }
        var threadList = (Arg(args, "--threads-list") ?? "1").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var only = Arg(args, "--only");
        var kernels = (Arg(args, "--kernels") ?? "auto").Split(',').Select(k => Enum.Parse<Kernel>(k, ignoreCase: true)).ToArray();
        var model = Arg(args, "--model"); // another model text on the config's data, loss and optimizer (to take a step apart)
        // --embedding-ab: each config's rounds alternate between the SIMD kernel making an embedding lookup before it
        // itself and the separate lookup (SimdEmbedding.InKernel on, off), one row each; --layout-ab: between the SIMD
        // kernel's buffers block-major and time-major (SimdRecurrence.BlockMajor on, off); --width-ab: between the
        // AVX-512 and the AVX2 path (SimdMath.Width; on an AVX-512 CPU only); --gates-ab: on the AVX-512 path, between
        // the per-unit passes (gate functions, state updates, their gradients) on 16 lanes and on 8 (SimdMath.WideGates);
        // --tiles-ab: on the AVX-512 path, between the products' twelve- and eight-row tiles with 16-column strips on
        // 512 bits, and six-row tiles only with those strips on AVX2 (SmallGemm.TallTiles); --prefetch-ab: between the
        // kernel's loops requesting the saved rows of the next (forward) or previous (backward) step and not
        // (RecurrentKernels.PrefetchAhead); --input-grad-ab: between the input's gradient written as a batch-major input
        // lies (and the input taken through a view) and written time-major (SimdRecurrence.InputGradientAsInput);
        // --gru-bias-ab: between a GRU's bias gradients summed in its backward's per-unit passes and in a pass over the
        // rows after the step's products (RecurrentKernels.GruBiasInPass)
        var switches = new (string Flag, Func<bool> Get, Action<bool> Set, string On, string Off)[]
        {
            ("--embedding-ab", () => SeqDsl.Engine.Simd.SimdEmbedding.InKernel, on => SeqDsl.Engine.Simd.SimdEmbedding.InKernel = on,
                "lookup in the kernel", "lookup apart"),
            ("--layout-ab", () => SeqDsl.Engine.Simd.SimdRecurrence.BlockMajor, on => SeqDsl.Engine.Simd.SimdRecurrence.BlockMajor = on,
                "block-major", "time-major"),
            ("--width-ab", () => SeqDsl.Engine.Simd.SimdMath.Width == SeqDsl.Engine.Simd.SimdWidth.Avx512,
                on => SeqDsl.Engine.Simd.SimdMath.Width = on ? SeqDsl.Engine.Simd.SimdWidth.Avx512 : SeqDsl.Engine.Simd.SimdWidth.Avx2,
                "AVX-512", "AVX2"),
            ("--gates-ab", () => SeqDsl.Engine.Simd.SimdMath.WideGates, on => SeqDsl.Engine.Simd.SimdMath.WideGates = on,
                "16-lane gates", "8-lane gates"),
            ("--tiles-ab", () => SeqDsl.Engine.Simd.SmallGemm.TallTiles, on => SeqDsl.Engine.Simd.SmallGemm.TallTiles = on,
                "12/8-row tiles, 16-column strips on 512 bits", "6-row tiles, 16-column strips on AVX2"),
            ("--prefetch-ab", () => SeqDsl.Engine.Simd.RecurrentKernels.PrefetchAhead, on => SeqDsl.Engine.Simd.RecurrentKernels.PrefetchAhead = on,
                "saved rows prefetched a step ahead", "not prefetched"),
            ("--input-grad-ab", () => SeqDsl.Engine.Simd.SimdRecurrence.InputGradientAsInput,
                on => SeqDsl.Engine.Simd.SimdRecurrence.InputGradientAsInput = on, "input's gradient as the input lies", "time-major"),
            ("--gru-bias-ab", () => SeqDsl.Engine.Simd.RecurrentKernels.GruBiasInPass, on => SeqDsl.Engine.Simd.RecurrentKernels.GruBiasInPass = on,
                "GRU bias gradients in the per-unit pass", "in a pass after the products"),
        };
        var given = switches.Where(w => args.Contains(w.Flag)).ToList();
        if (given.Count > 1)
        {
            Console.Error.WriteLine("phases: --embedding-ab, --layout-ab, --width-ab, --gates-ab, --tiles-ab, --prefetch-ab, --input-grad-ab and --gru-bias-ab each alternate one switch; give one of them");
            return 2;
        }
        // --width-ab sets the path itself and needs an AVX-512 CPU; --gates-ab needs the AVX-512 path in force (on this
        // CPU and not narrowed by SEQDSL_SIMD, else both arms run the same code)
        if (args.Contains("--width-ab") && SeqDsl.Engine.Simd.SimdMath.Detected != SeqDsl.Engine.Simd.SimdWidth.Avx512)
        {
            Console.Error.WriteLine($"phases: --width-ab needs a CPU with AVX-512 (this one: {SeqDsl.Engine.Simd.SimdMath.Detected})");
            return 2;
        }
        if ((args.Contains("--gates-ab") || args.Contains("--tiles-ab")) && SeqDsl.Engine.Simd.SimdMath.Width != SeqDsl.Engine.Simd.SimdWidth.Avx512)
        {
            Console.Error.WriteLine($"phases: {(args.Contains("--gates-ab") ? "--gates-ab" : "--tiles-ab")} needs the AVX-512 path (this CPU: {SeqDsl.Engine.Simd.SimdMath.Detected}, SEQDSL_SIMD: {Environment.GetEnvironmentVariable("SEQDSL_SIMD") ?? "unset"})");
            return 2;
        }
        var ab = given.Count == 1 ? given[0] : ((string Flag, Func<bool> Get, Action<bool> Set, string On, string Off)?)null;
        Console.WriteLine($"machine: {Backend.Machine}");
        Console.WriteLine(layer
            ? "| threads | config | kernel | forward ms | backward ms | update ms (none: the layer alone) | step ms |"
            : "| threads | config | kernel | forward + loss ms | backward ms | optimizer ms | step ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var threads in threadList)
        {
            set_num_threads(threads);
            foreach (var cfg in Configs().Select(c => layer ? AsLayer(c) : c))
            {
                if (only is not null && !cfg.Name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
                foreach (var k in kernels)
                {
                    using var side = new SeqDslSide(model is null ? cfg : cfg with { Name = $"{cfg.Name} as {model}", Model = model }, k);
                    side.Run(3);
                    if (ab is not { } abSwitch)
                    {
                        var t = side.Phases(rounds);
                        Console.WriteLine($"| {threads} | {cfg.Name} | {k} | {t[0]:F2} | {t[1]:F2} | {t[2]:F2} | {t[0] + t[1] + t[2]:F2} |");
                        continue;
                    }
                    var was = abSwitch.Get();
                    try
                    {
                        // one sequence of rounds, alternating: the even ones with the switch on, the odd ones off
                        var before = SeqDsl.Engine.Simd.SimdRecurrence.EmbeddedRuns;
                        var all = side.PhaseTimes(2 * rounds, r => abSwitch.Set(r % 2 == 0));
                        if (args.Contains("--embedding-ab") && SeqDsl.Engine.Simd.SimdRecurrence.EmbeddedRuns == before)
                            Console.WriteLine($"| {threads} | {cfg.Name} | {k}: no lookup in the kernel here (no Embed before a one-direction SIMD layer) | | | | |");
                        foreach (var on in new[] { true, false })
                        {
                            var t = all.Select(p => Timing.Median(p.Where((_, r) => (r % 2 == 0) == on).ToList())).ToArray();
                            Console.WriteLine($"| {threads} | {cfg.Name} | {k}, {(on ? abSwitch.On : abSwitch.Off)} | {t[0]:F2} | {t[1]:F2} | {t[2]:F2} | {t[0] + t[1] + t[2]:F2} |");
                        }
                    }
                    finally { abSwitch.Set(was); }
                }
            }
        }
        return 0;
    }

    public static int Run(string[] args)
    {
        var rounds = IntArg(args, "--rounds", 6);
        var steps = IntArg(args, "--steps", 2);
        // --layer: each config's recurrent layer alone on both sides (AsLayer), its forward and backward
        var layer = args.Contains("--layer");
        // a pause before each side's turn, so that the previous side's idle OpenMP workers have stopped spinning
        // (libgomp's default spin, PyTorch's "defaults" peer, keeps both cores busy for a while after its turn)
        var pause = IntArg(args, "--pause-ms", 0);
        // untimed steps at the start of each side's turn (each side the same), so that a turn times steady-state
        // steps rather than the first step after the other processes' turns (cold caches, sleeping workers)
        var warmup = IntArg(args, "--warmup-steps", 0);
        var threadList = (Arg(args, "--threads-list") ?? "1,2").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var only = Arg(args, "--only");
        // the recurrent kernels SeqDsl runs each config with: auto (the engine's choice), fused, loop, simd
        var kernels = (Arg(args, "--kernels") ?? "auto,simd").Split(',').Select(k => Enum.Parse<Kernel>(k, ignoreCase: true)).ToArray();
        var python = Arg(args, "--python") ?? "/usr/bin/python3";
        var script = Arg(args, "--peer") ?? FindPeerScript();
        if (script is null)
        {
            Console.Error.WriteLine("peer: bench/pytorch/peer.py not found above the working directory or this build; pass --peer PATH");
            return 2;
        }
        // --no-defaults-peer: only the same-settings PyTorch peer (unflushed subnormals made PyTorch's default E7 LSTM
        // step take seconds on an Intel Xeon; the targets compare with the same-settings peer)
        var withDefaults = !args.Contains("--no-defaults-peer");
        var openblas = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
        if (!Directory.Exists(openblas))
            Console.WriteLine($"warning: {openblas} is missing, so PyTorch runs on Debian's reference BLAS — not a fair peer (bench/pytorch/setup.sh installs OpenBLAS)");
        var peerLines = new SortedSet<string>(StringComparer.Ordinal);
        var coreType = OpenBlasCoreType();
        var seqdslMalloc = Backend.Memory == MemoryPolicy.Retain ? "retain" : "system";

        Console.WriteLine($"machine: {Backend.Machine}");
        foreach (var line in Backend.Describe()) Console.WriteLine($"SeqDsl {line}");
        Console.WriteLine($"GLIBC_TUNABLES={Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "(unset)"}; OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset)"} (both sides inherit them); " +
                          $"GOMP_SPINCOUNT {NativeLoader.OpenMpSpin ?? "libgomp's default"} on the SeqDsl side and the same-settings peer, libgomp's default on the defaults peer; " +
                          $"subnormal floats {(Denormals.Available ? "flushed to zero in SeqDsl's training steps and in the same-settings peer (torch.set_flush_denormal)" + (withDefaults ? ", kept in the defaults peer" : "") : "kept on every side")}");
        Console.WriteLine($"{rounds} rounds × {steps} steps per side, order rotating each round{(pause > 0 ? $", a {pause} ms pause before each side's turn" : "")}" +
                          $"{(warmup > 0 ? $", {warmup} untimed step(s) at the start of each turn (their minor faults counted with the timed ones)" : "")}; " +
                          (layer ? "each config's recurrent layer alone on both sides (forward, then backward from a fixed gradient of the final state: the input's and the weights' gradients; no loss, no optimizer); " : "") +
                          "FLOPs = 3 × the forward matrix products; " +
                          (Directory.Exists(openblas)
                              ? "% of sgemm: median (range) over rounds of the config's GFLOP/s over the faster of two sgemm rates measured in the same round " +
                                $"(libtorch's in this process; {(coreType is null ? "PyTorch's OpenBLAS as it detects this CPU" : $"PyTorch's OpenBLAS with OPENBLAS_CORETYPE={coreType}, the widest kernels this CPU runs, which the PyTorch peers run too")})"
                              : "% of sgemm: median (range) over rounds of the config's GFLOP/s over libtorch's sgemm rate measured in the same round (no OpenBLAS)"));
        Console.WriteLine();
        Console.WriteLine("| threads | config | kernel | SeqDsl ms | PyTorch ms (same settings) | ratio (median, range) | PyTorch ms (defaults) | ratio (median, range) | SeqDsl GFLOP/s | % of sgemm (median, range) | minor faults/step SeqDsl, PyTorch same, defaults |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var threads in threadList)
        {
            set_num_threads(threads);
            var configs = Configs().Select(c => layer ? AsLayer(c) : c)
                .Where(c => only is null || c.Name.Contains(only, StringComparison.OrdinalIgnoreCase)).ToList();
            if (configs.Count == 0) continue;
            var sgemm = SgemmGflops();
            Console.WriteLine($"| {threads} | sgemm 1024³ (TorchSharp, same process) | | | | | | | {sgemm:F1} | | |");
            // OpenBLAS's sgemm in a PyTorch process: on an AMD Zen 5 libtorch's MKL sgemm ran at half the AVX-512 rate
            using var blas = Directory.Exists(openblas)
                ? Peer.Start(python, script, openblas, new JsonObject { ["sgemm"] = 1024, ["warmup"] = 3 }, threads, seqdslMalloc, false, coreType)
                : null;
            if (blas is not null) peerLines.Add($"OpenBLAS sgemm: {blas.Description}");
            foreach (var cfg in configs)
            {
                // both peers run OpenBLAS's widest kernels for this CPU, as the sgemm side does
                using var same = Peer.Start(python, script, openblas, cfg.Peer, threads, seqdslMalloc, Denormals.Available, coreType);
                using var defaults = withDefaults ? Peer.Start(python, script, openblas, cfg.Peer, threads, "system", false, coreType) : null;
                peerLines.Add($"same settings: {same.Description}");
                if (defaults is not null) peerLines.Add($"defaults: {defaults.Description}");
                var seqSides = kernels.Select(k => new SeqDslSide(cfg, k)).ToList();
                foreach (var s in seqSides) s.Run(2); // warm-up
                using var product = new Sgemm();
                var sides = seqSides.Select(s => (Name: $"SeqDsl {s.Kernel}", Run: (Func<int, int, (double ms, long faults)>)s.Run))
                    .Concat([("PyTorch same", same.Run)])
                    .Concat(defaults is null ? [] : [("PyTorch defaults", (Func<int, int, (double ms, long faults)>)defaults.Run)])
                    .Concat([("sgemm", (_, w) => product.Run(w))])
                    .Concat(blas is null ? [] : [("OpenBLAS sgemm", (Func<int, int, (double ms, long faults)>)((_, w) => blas.Run(4, Math.Max(1, w))))]).ToArray();
                int pSame = seqSides.Count, pDefaults = defaults is null ? -1 : seqSides.Count + 1;
                int pSgemm = blas is null ? sides.Length - 1 : sides.Length - 2, pBlas = blas is null ? -1 : sides.Length - 1;
                var ms = sides.Select(_ => new List<double>()).ToArray();
                var faults = new long[sides.Length];
                for (var r = 0; r < rounds; r++)
                    for (var k = 0; k < sides.Length; k++)
                    {
                        var s = (k + r) % sides.Length; // rotate who goes first
                        if (pause > 0) Thread.Sleep(pause);
                        var (t, f) = sides[s].Run(steps, warmup);
                        ms[s].Add(t);
                        faults[s] += f;
                    }
                var flops = 3 * cfg.ForwardFlops;
                for (var q = 0; q < seqSides.Count; q++)
                {
                    var seqMs = Timing.Median(ms[q]);
                    string Ratio(int k)
                    {
                        var rs = ms[q].Zip(ms[k], (a, b) => a / b).OrderBy(v => v).ToList();
                        return $"**{Timing.Median(rs):F2}** ({rs[0]:F2} … {rs[^1]:F2})";
                    }
                    var gflops = flops / (seqMs / 1000) / 1e9;
                    // each round's GFLOP/s over the faster sgemm of the same round (ms[pSgemm], ms[pBlas]: ms per 1024³ product)
                    var best = pBlas < 0 ? ms[pSgemm] : ms[pSgemm].Zip(ms[pBlas], Math.Min).ToList();
                    var shares = ms[q].Zip(best, (a, p) => 100 * (flops / a / 1e6) / Sgemm.Gflops(p)).OrderBy(v => v).ToList();
                    var defaultsCells = pDefaults < 0 ? "— | —" : $"{Timing.Median(ms[pDefaults]):F1} | {Ratio(pDefaults)}";
                    var faultCells = string.Join(", ", new[] { faults[q], faults[pSame], pDefaults < 0 ? -1 : faults[pDefaults] }
                        .Select(f => f < 0 ? "—" : (f / (rounds * steps)).ToString("N0", CultureInfo.InvariantCulture)));
                    Console.WriteLine($"| {threads} | {cfg.Name} | {seqSides[q].Kernel} | {seqMs:F1} | {Timing.Median(ms[pSame]):F1} | {Ratio(pSame)} | {defaultsCells} | " +
                                      $"{gflops:F1} | **{Timing.Median(shares):F0}** ({shares[0]:F0} … {shares[^1]:F0}) | {faultCells} |");
                }
                Console.WriteLine($"| {threads} | sgemm 1024³ in the rounds above: libtorch's | | | | | | | {Sgemm.Gflops(Timing.Median(ms[pSgemm])):F1} | | |");
                if (pBlas >= 0)
                    Console.WriteLine($"| {threads} | sgemm 1024³ in the rounds above: OpenBLAS{(coreType is null ? "" : $" ({coreType})")} | | | | | | | {Sgemm.Gflops(Timing.Median(ms[pBlas])):F1} | | |");
                foreach (var s in seqSides) s.Dispose();
            }
        }
        Console.WriteLine();
        foreach (var line in peerLines) Console.WriteLine($"PyTorch peer, {line}");
        return 0;
    }

    /// <summary>The SeqDsl side: the compiled model and its training session on one fixed random batch.</summary>
    sealed class SeqDslSide : IDisposable
    {
        private readonly Network _net;
        private readonly TrainingSession _session;
        private readonly SequenceData _batch;
        private readonly bool _layerOnly;
        private readonly Tensor? _upstream;
        public Kernel Kernel { get; }

        public SeqDslSide(Config cfg, Kernel kernel)
        {
            Kernel = kernel;
            var spec = ModelSyntax.Parse(cfg.Model);
            spec = spec with { Layers = [.. spec.Layers.Select(l => l is RecurrentLayer r ? r with { Kernel = kernel } : l)] };
            _net = Network.Compile(spec, new CompileOptions { Input = cfg.Input, Seed = 1 });
            _session = new TrainingSession(_net, new FitOptions { Loss = cfg.Loss, Optimizer = cfg.Optimizer });
            manual_seed(2);
            Tensor x = cfg.Input.Vocab is int v
                ? randint(0, v, [cfg.B, cfg.T], dtype: ScalarType.Int64)
                : cfg.Peer["oneHot"]!.GetValue<bool>()
                    ? nn.functional.one_hot(randint(0, cfg.Input.Features!.Value, [cfg.B, cfg.T], dtype: ScalarType.Int64), cfg.Input.Features!.Value).to_type(ScalarType.Float32)
                    : randn(cfg.B, cfg.T, cfg.Input.Features!.Value);
            var outUnits = _net.Summary.Output.Features;
            Tensor y = cfg.Loss.Kind switch
            {
                LossKind.BinaryCrossEntropy => randint(0, 2, [cfg.B, outUnits]).to_type(ScalarType.Float32),
                LossKind.CrossEntropy => randint(0, outUnits, [cfg.B, cfg.T], dtype: ScalarType.Int64),
                _ => randn(cfg.B, outUnits),
            };
            if (cfg.LayerOnly)
            {
                // the layer alone: its input's gradient too, from a fixed gradient of the final state
                _layerOnly = true;
                _net.train();
                x.requires_grad_(true);
                _upstream = randn(cfg.B, outUnits);
            }
            _batch = new SequenceData(x, y);
        }

        /// <summary>One step: the training session's, or (layer only) the layer's forward, then backward from the fixed
        /// gradient, the input's and every weight's gradient dropped before the forward (set to none, as the peer's
        /// zero_grad(set_to_none=True) does; not timed); the forward's and the backward's milliseconds.</summary>
        private (double forward, double backward) Step()
        {
            if (!_layerOnly)
            {
                var sw0 = Stopwatch.StartNew();
                _session.Step(_batch);
                return (sw0.Elapsed.TotalMilliseconds, 0);
            }
            using var flush = Denormals.Flush(); // as TrainingSession's step
            _batch.Inputs.grad = null;
            _session.ClearGradients();
            var sw = Stopwatch.StartNew();
            var output = _net.Forward(_batch.Inputs, new ForwardContext());
            var forward = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            output.backward([_upstream!]);
            return (forward, sw.Elapsed.TotalMilliseconds);
        }

        public (double ms, long faults) Run(int steps) => Run(steps, 0);

        /// <summary>ms per step of <paramref name="steps"/> timed steps after <paramref name="warmup"/> untimed ones; minor
        /// faults over all of them (as the peers' are counted).</summary>
        public (double ms, long faults) Run(int steps, int warmup)
        {
            var f0 = MinorFaults(Environment.ProcessId);
            for (var i = 0; i < warmup; i++)
            {
                using var scope = NewDisposeScope();
                Step();
            }
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                Step();
            }
            return (sw.Elapsed.TotalMilliseconds / steps, MinorFaults(Environment.ProcessId) - f0);
        }

        /// <summary>Median milliseconds of forward with the loss, backward, and the update over <paramref name="rounds"/> steps.</summary>
        public double[] Phases(int rounds) => PhaseTimes(rounds, _ => { }).Select(Timing.Median).ToArray();

        /// <summary>Each round's milliseconds of the three phases, calling <paramref name="before"/>(r) before round r.</summary>
        public List<double>[] PhaseTimes(int rounds, Action<int> before)
        {
            var t = new List<double>[] { [], [], [] };
            var wantsLogits = _session.WantsLogits;
            for (var r = 0; r < rounds; r++)
            {
                before(r);
                using var scope = NewDisposeScope();
                if (_layerOnly)
                {
                    var (f, b) = Step();
                    t[0].Add(f);
                    t[1].Add(b);
                    t[2].Add(0);
                    continue;
                }
                using var flush = Denormals.Flush(); // as TrainingSession's step
                var sw = Stopwatch.StartNew();
                var (_, sum, count) = Trainer.Step(_net, _session.Options.Loss, _batch, wantsLogits);
                var loss = sum / count.clamp_min(1);
                loss.item<float>();
                t[0].Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                _session.ClearGradients();
                loss.backward();
                t[1].Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                _session.Optimizer.step();
                t[2].Add(sw.Elapsed.TotalMilliseconds);
            }
            return t;
        }

        public void Dispose()
        {
            _session.Dispose();
            _net.Dispose();
            _batch.Inputs.Dispose();
            _batch.Targets.Dispose();
            _upstream?.Dispose();
        }
    }

    /// <summary>A PyTorch peer process, driven line by line over its standard input and output.</summary>
    sealed class Peer : IDisposable
    {
        private readonly Process _p;
        public string Description { get; }

        private Peer(Process p, string description) { _p = p; Description = description; }

        public static Peer Start(string python, string script, string openblas, JsonObject cfg, int threads, string malloc, bool flushDenormal,
            string? openblasCoreType = null)
        {
            var psi = new ProcessStartInfo(python, [script])
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false, UseShellExecute = false,
            };
            psi.Environment["OMP_NUM_THREADS"] = threads.ToString(CultureInfo.InvariantCulture);
            // the same-settings peer also gets SeqDsl's OpenMP spin count (SeqDsl sets it in its native environment, which
            // child processes started from .NET do not inherit)
            if (malloc != "system" && NativeLoader.OpenMpSpin is string spin) psi.Environment["GOMP_SPINCOUNT"] = spin;
            if (Directory.Exists(openblas))
                psi.Environment["LD_LIBRARY_PATH"] = openblas + (psi.Environment.TryGetValue("LD_LIBRARY_PATH", out var l) && l is { Length: > 0 } ? ":" + l : "");
            if (openblasCoreType is not null) psi.Environment["OPENBLAS_CORETYPE"] = openblasCoreType;
            var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python}");
            var msg = (JsonObject)cfg.DeepClone();
            msg["threads"] = threads;
            msg["malloc"] = malloc;
            // the same-settings peer flushes subnormal floats to zero where SeqDsl's own loops do (on Intel CPUs a
            // subnormal costs a microcode assist per instruction; long sequences' gradients become subnormal)
            msg["flushDenormal"] = flushDenormal;
            p.StandardInput.WriteLine(new JsonObject { ["config"] = msg }.ToJsonString());
            p.StandardInput.Flush();
            var ready = p.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the PyTorch peer exited before it was ready (is python3-torch installed? bench/pytorch/setup.sh)");
            return new Peer(p, ready);
        }

        public (double ms, long faults) Run(int steps, int warmup)
        {
            var f0 = MinorFaults(_p.Id);
            _p.StandardInput.WriteLine($"{{\"run\": {steps}, \"warmup\": {warmup}}}");
            _p.StandardInput.Flush();
            var reply = JsonNode.Parse(_p.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the PyTorch peer died"))!;
            var ms = reply["ms"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
            return (ms.Average(), MinorFaults(_p.Id) - f0);
        }

        public void Dispose()
        {
            try
            {
                _p.StandardInput.WriteLine("{\"quit\": true}");
                _p.StandardInput.Close();
                if (!_p.WaitForExit(10_000)) _p.Kill();
            }
            catch (InvalidOperationException) { }
            _p.Dispose();
        }
    }

    /// <summary>The sgemm side of a round: 1024 × 1024 × 1024 float32 products at the current thread count — at least one
    /// untimed (the warm-up steps' number when more), then four timed — in ms per product.</summary>
    sealed class Sgemm : IDisposable
    {
        public const double Flops = 2.0 * 1024 * 1024 * 1024;
        private const int Products = 4;

        /// <summary>GFLOP/s of products that took <paramref name="ms"/> each.</summary>
        public static double Gflops(double ms) => Flops / ms / 1e6;
        private readonly Tensor _a = randn(1024, 1024), _b = randn(1024, 1024);

        public (double ms, long faults) Run(int warmup)
        {
            for (var i = 0; i < Math.Max(1, warmup); i++) { using var w = _a.mm(_b); }
            var sw = Stopwatch.StartNew();
            for (var i = 0; i < Products; i++) { using var c = _a.mm(_b); }
            return (sw.Elapsed.TotalMilliseconds / Products, 0);
        }

        public void Dispose() { _a.Dispose(); _b.Dispose(); }
    }

    /// <summary>The OpenBLAS kernel family for this CPU's widest vectors (OPENBLAS_CORETYPE): SkylakeX's AVX-512 kernels
    /// where the CPU has AVX-512 F, BW, DQ and VL, Haswell's AVX2 ones where it has AVX2 and FMA, else null (OpenBLAS
    /// detects). OpenBLAS 0.3.21 takes an AMD Zen 5 for a Zen and runs its AVX2 kernels there.</summary>
    static string? OpenBlasCoreType() =>
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported ? "SkylakeX"
        : Avx2.IsSupported && Fma.IsSupported ? "Haswell"
        : null;

    /// <summary>Median GFLOP/s of 1024 × 1024 × 1024 float32 products at the current thread count (three turns of the
    /// rounds' sgemm side, the first after three untimed products).</summary>
    static double SgemmGflops()
    {
        using var product = new Sgemm();
        return Timing.Median(Enumerable.Range(0, 3).Select(i => Sgemm.Gflops(product.Run(i == 0 ? 3 : 0).ms)).ToList());
    }

    /// <summary>Minor page faults of a process so far (field 10 of /proc/PID/stat); 0 where there is no /proc.</summary>
    internal static long MinorFaults(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[7], CultureInfo.InvariantCulture); // field 10 counted from 1, after pid and comm
        }
        catch (IOException) { return 0; }
    }

    /// <summary>bench/pytorch/peer.py above the working directory or above this build (a copy of the build outside
    /// the repository, as the docs' commands run it, finds it from the repository's root), or null.</summary>
    static string? FindPeerScript()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "bench", "pytorch", "peer.py");
                if (File.Exists(p)) return p;
            }
        return null;
    }

    static string? Arg(string[] a, string name)
    {
        var i = Array.IndexOf(a, name);
        return i >= 0 && i + 1 < a.Length ? a[i + 1] : null;
    }

    static int IntArg(string[] a, string name, int fallback) =>
        Arg(a, name) is string s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;
}
