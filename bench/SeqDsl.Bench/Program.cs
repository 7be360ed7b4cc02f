// Side-by-side benchmarks, interleaved in one run so machine noise hits both sides alike.
//   dotnet run -c Release --project bench/SeqDsl.Bench -- step [--rounds N] [--steps K] [--threads T]
//   dotnet run -c Release --project bench/SeqDsl.Bench -- loop [--rounds N] [--steps K] [--threads T]
//   dotnet run -c Release --project bench/SeqDsl.Bench -- lengths [--rounds N] [--steps K] [--threads T]
//   dotnet run -c Release --project bench/SeqDsl.Bench -- imdb-prep [path]
//   dotnet run -c Release --project bench/SeqDsl.Bench -- paths [--rounds N] [--threads T]   (oneDNN vs native LSTM in training)
//   dotnet run -c Release --project bench/SeqDsl.Bench -- peer [--rounds N] [--steps K] [--pause-ms P] [--threads-list 1,2] [--only NAME] [--no-defaults-peer] [--layer] [--peer PATH]
//     (PyTorch as a peer: bench/pytorch/setup.sh installs Debian's python3-torch first; --layer: each config's recurrent layer alone)
//   dotnet run -c Release --project bench/SeqDsl.Bench -- phases [--rounds N] [--threads-list 1,2] [--only NAME] [--kernels simd,fused] [--layer | --model TEXT]
//     [--embedding-ab | --layout-ab | --width-ab | --gates-ab | --tiles-ab | --prefetch-ab | --input-grad-ab | --gru-bias-ab]
//     (forward + loss, backward and the optimizer's update of the peer configs, timed apart; --layer: the layer alone)
//   dotnet run -c Release --project bench/SeqDsl.Bench -- simd [--rounds N] [--threads T]   (the SIMD kernel's product and layers)
//   dotnet run -c Release --project bench/SeqDsl.Bench -- deploy [--rounds N] [--threads T] [--seconds S]
//     (export time, ONNX Runtime vs libtorch prediction latency, seqdsl serve under 1/8/64 clients)
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Analysis;
using SeqDsl;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

Backend.UseMemoryPolicy(); // the allocator policy, before any tensor work
Backend.Initialize();      // libtorch's oneDNN switch
var opts = Args.Parse(args);
torch.set_num_threads(opts.Threads);
switch (opts.Command)
{
    case "step": return StepBenchmark.Run(opts);
    case "loop": return LoopBenchmark.Run(opts);
    case "lengths": return LengthsBenchmark.Run(opts);
    case "peer": return PeerBenchmark.Run(args);
    case "phases": return PeerBenchmark.Phases(args);
    case "paths": return PathsBenchmark.Run(opts);
    case "deploy": return DeployBenchmark.Run(args);
    case "simd": return SimdBenchmark.Run(opts);
    case "imdb-prep": return ImdbPrepBenchmark.Run(args.Length > 1 && !args[1].StartsWith("--") ? args[1] : DefaultImdb());
    default:
        Console.Error.WriteLine("usage: bench step|loop|lengths [--rounds N] [--steps K] [--threads T]\n       bench peer [--rounds N] [--steps K] [--threads-list 1,2] [--only NAME]\n       bench imdb-prep [path to aclImdb_v1_labeled.tar.gz or aclImdb folder]");
        return 2;
}

static string DefaultImdb()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        var p = Path.Combine(d.FullName, "..", "shared", "data", "aclImdb_v1_labeled.tar.gz");
        if (File.Exists(p)) return Path.GetFullPath(p);
    }
    return "../shared/data/aclImdb_v1_labeled.tar.gz";
}

record Args(string Command, int Rounds, int Steps, int Threads)
{
    public static Args Parse(string[] a)
    {
        int Get(string name, int fallback)
        {
            var i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? int.Parse(a[i + 1], CultureInfo.InvariantCulture) : fallback;
        }
        return new Args(a.Length > 0 ? a[0] : "step", Get("--rounds", 10), Get("--steps", 5), Get("--threads", Environment.ProcessorCount));
    }
}

/// <summary>
/// One training step of seed 003's LSTM model (B 128, T 200, vocab 8000, Embed 32, LSTM 32,
/// Dense 1 sigmoid, BCE, RMSprop): compiled by SeqDsl vs the same model written by hand in TorchSharp.
/// </summary>
static class StepBenchmark
{
    const long B = 128, T = 200, V = 8000, D = 32, H = 32;

    public static int Run(Args o)
    {
        manual_seed(1);
        using var x = randint(1, V, [B, T], dtype: ScalarType.Int64);
        using var y = randint(0, 2, [B, 1]).to_type(ScalarType.Float32);
        var batch = new SequenceData(x, y);

        // SeqDsl
        using var net = Network.Compile(Model.Embed((int)D).Lstm((int)H).Dense(1, Activation.Sigmoid),
            new CompileOptions { Input = new InputSpec(Vocab: (int)V), Seed = 1 });
        using var session = new TrainingSession(net, new FitOptions { Loss = Loss.Bce, Optimizer = new OptimizerSpec.RmsProp() });
        float SeqDslStep()
        {
            using var scope = NewDisposeScope();
            return session.Step(batch).loss;
        }

        // by hand
        manual_seed(1);
        using var emb = nn.Embedding(V, D);
        using var lstm = nn.LSTM(D, H, batchFirst: true);
        using var lin = nn.Linear(H, 1);
        var ps = emb.parameters().Concat(lstm.parameters()).Concat(lin.parameters()).ToList();
        using var opt = optim.RMSProp(ps, 1e-3, alpha: 0.9, eps: 1e-7);
        float HandStep()
        {
            using var scope = NewDisposeScope();
            foreach (var q in ps) q.grad = null;            // as SeqDsl's step and PyTorch 2's zero_grad: no fill, no add
            // libtorch's default for hand-written code: oneDNN on (SeqDsl's process turns it off globally)
            var (_, h, _) = Backend.WithOneDnnSwitch(true, () => lstm.forward(emb.call(x)));
            var p = lin.call(h[-1]).sigmoid();                 // (B, 1)
            var loss = nn.functional.binary_cross_entropy(p, y);
            loss.backward();
            opt.step();
            return loss.item<float>();
        }

        Console.WriteLine($"seed-003 LSTM training step, B {B}, T {T}, vocab {V}, Embed {D}, LSTM {H}; threads {get_num_threads()}; " +
                          $"{o.Rounds} rounds × {o.Steps} steps per side, interleaved");
        for (var i = 0; i < 3; i++) { SeqDslStep(); HandStep(); } // warm-up
        var a = new List<double>();
        var b = new List<double>();
        for (var r = 0; r < o.Rounds; r++)
        {
            // alternate which side goes first so drift favours neither
            if (r % 2 == 0) { a.Add(Timing.Time(SeqDslStep, o.Steps)); b.Add(Timing.Time(HandStep, o.Steps)); }
            else { b.Add(Timing.Time(HandStep, o.Steps)); a.Add(Timing.Time(SeqDslStep, o.Steps)); }
        }
        var ratios = a.Zip(b, (p, q) => p / q).OrderBy(v => v).ToList();
        Console.WriteLine($"SeqDsl     median {Timing.Median(a):F2} ms/step");
        Console.WriteLine($"hand-made  median {Timing.Median(b):F2} ms/step");
        Console.WriteLine($"ratio SeqDsl/hand: median {Timing.Median(ratios):F3} (per-round ratios {ratios[0]:F3} … {ratios[^1]:F3})");
        return 0;
    }

}

/// <summary>
/// IMDB preparation, as both books do it, from the .tar.gz to padded tensors for the 25,000
/// training reviews: read the archive into a frame, tokenize, build the vocabulary, encode, pad.
/// Seed 003: Keras tokenizer, vocabulary 8000, maxlen 200 pre-padding. Seed 002: regex tokenizer,
/// full vocabulary, post-padding with lengths.
/// </summary>
static class ImdbPrepBenchmark
{
    public static int Run(string path)
    {
        Console.WriteLine($"IMDB preparation from {path}; {Environment.ProcessorCount} cores");
        var total = Stopwatch.StartNew();
        var sw = Stopwatch.StartNew();
        var frame = Imdb.Load(path, "train");
        var texts = ((StringDataFrameColumn)frame.Columns["text"]).Select(t => t ?? "").ToArray();
        Console.WriteLine($"  read {frame.Rows.Count:N0} reviews into a frame: {sw.Elapsed.TotalSeconds:F2} s");
        foreach (var (name, tokenizer, vocab, maxlen, padding) in new (string, Tokenizer, VocabularyOptions, int?, Side)[]
        {
            ("seed 003 (keras, 8000 words, maxlen 200, pre)", Tokenizer.Keras, VocabularyOptions.Keras(8000), 200, Side.Pre),
            ("seed 002 (regex, full vocabulary, post + lengths)", Tokenizer.Seed002, VocabularyOptions.Seed002(), null, Side.Post),
        })
        {
            sw.Restart();
            var tokens = TextPreprocessing.Tokenize(texts, tokenizer);
            var tTok = sw.Elapsed.TotalSeconds;
            var prep = TextPreprocessing.FitTokens(tokens, tokenizer, vocab, maxlen, padding, padding);
            var tVocab = sw.Elapsed.TotalSeconds;
            var (ids, lengths) = prep.Encode(tokens).ToTensors();
            Console.WriteLine($"  {name}: tokenize {tTok:F2} s, vocabulary ({prep.Vocabulary.Size:N0}) {tVocab - tTok:F2} s, " +
                              $"encode + pad [{string.Join(", ", ids.shape)}] {sw.Elapsed.TotalSeconds - tVocab:F2} s");
            ids.Dispose();
            lengths?.Dispose();
        }
        Console.WriteLine($"total (read once, both pipelines): {total.Elapsed.TotalSeconds:F2} s");
        return 0;
    }
}

/// <summary>
/// The per-step loop kernel against libtorch's fused LSTM, same weights, forward + backward of an LSTM
/// layer on random input: H 256 (B 64, T 100) and seed 003's size, H 32 (B 128, T 200, input 32).
/// </summary>
static class LoopBenchmark
{
    public static int Run(Args o)
    {
        Console.WriteLine($"LSTM forward + backward, loop kernel vs fused; threads {get_num_threads()}; {o.Rounds} rounds × {o.Steps} steps per side, interleaved");
        foreach (var (h, b, t, i) in new[] { (256, 64L, 100L, 256L), (32, 128L, 200L, 32L) })
        {
            using var fused = Network.Compile(Model.Lstm(h, returnSequences: true), new CompileOptions { Input = new InputSpec(Features: (int)i), Seed = 1 });
            using var loop = Network.Compile(Model.Lstm(h, returnSequences: true, kernel: Kernel.Loop), new CompileOptions { Input = new InputSpec(Features: (int)i), Seed = 1 });
            loop.CopyParametersFrom(fused);
            using var x = randn(b, t, i);
            float Step(Network net)
            {
                using var scope = NewDisposeScope();
                net.zero_grad();
                var y = net.forward(x);
                var loss = y.square().mean();
                loss.backward();
                return loss.item<float>();
            }
            Step(fused); Step(loop);
            var a = new List<double>();
            var f = new List<double>();
            for (var r = 0; r < o.Rounds; r++)
            {
                if (r % 2 == 0) { a.Add(Timing.Time(() => Step(loop), o.Steps)); f.Add(Timing.Time(() => Step(fused), o.Steps)); }
                else { f.Add(Timing.Time(() => Step(fused), o.Steps)); a.Add(Timing.Time(() => Step(loop), o.Steps)); }
            }
            var ratios = a.Zip(f, (p, q) => p / q).OrderBy(v => v).ToList();
            Console.WriteLine($"H {h}, B {b}, T {t}: loop {Timing.Median(a):F1} ms, fused {Timing.Median(f):F1} ms, ratio loop/fused median {Timing.Median(ratios):F2} (range {ratios[0]:F2} … {ratios[^1]:F2})");
        }
        return 0;
    }

}

/// <summary>
/// Variable-length batches (post-padded, with lengths) through an LSTM, forward + backward: SeqDsl's
/// fused kernel over the padded batch with a gather at each sequence's end (bidirectional: a second
/// call on the rows rotated so the padding comes first, for the backward direction), its loop kernel with
/// lengths, and libtorch's packed-sequence path (pack_padded_sequence into the same nn.LSTM), which is
/// what SeqDsl ran before. Lengths spread over the upper half of T, as a length-bucketed batch of
/// IMDB reviews has them.
/// </summary>
static class LengthsBenchmark
{
    public static int Run(Args o)
    {
        Console.WriteLine($"LSTM with lengths, forward + backward; threads {get_num_threads()}; {o.Rounds} rounds × {o.Steps} steps per side, interleaved");
        foreach (var (name, h, b, t, i, bi) in new[]
                 { ("E3 (seed 000)", 256, 64L, 280L, 100L, false), ("E4 (seed 002)", 50, 32L, 280L, 32L, false), ("E4, bidirectional", 50, 32L, 280L, 32L, true) })
        {
            ModelSpec Spec(Kernel kernel) => bi ? Model.Lstm(h, kernel: kernel).Bidirectional() : Model.Lstm(h, kernel: kernel);
            using var padded = Network.Compile(Spec(Kernel.Auto), new CompileOptions { Input = new InputSpec(Features: (int)i), Seed = 1 });
            using var loop = Network.Compile(Spec(Kernel.Loop), new CompileOptions { Input = new InputSpec(Features: (int)i), Seed = 1 });
            loop.CopyParametersFrom(padded);
            using var packedLstm = nn.LSTM(i, h, batchFirst: true, bidirectional: bi);
            using var x = randn(b, t, i);
            using var lengths = tensor(Enumerable.Range(0, (int)b).Select(k => t - k * (t / 2) / b).ToArray());
            float Step(Network net)
            {
                using var scope = NewDisposeScope();
                net.zero_grad();
                var loss = net.Forward(x, lengths).square().mean();
                loss.backward();
                return loss.item<float>();
            }
            float Packed()
            {
                using var scope = NewDisposeScope();
                packedLstm.zero_grad();
                using var packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first: true, enforce_sorted: false);
                var (output, hn, _) = packedLstm.call(packed, null);
                output.Dispose();
                var loss = hn.square().mean();
                loss.backward();
                return loss.item<float>();
            }
            var sides = new (string Name, Func<float> Run, List<double> Ms)[]
            {
                ("padded fused", () => Step(padded), new()), ("loop", () => Step(loop), new()), ("packed", Packed, new()),
            };
            foreach (var side in sides) side.Run();
            for (var r = 0; r < o.Rounds; r++)
                foreach (var side in r % 2 == 0 ? sides : sides.Reverse())
                    side.Ms.Add(Timing.Time(side.Run, o.Steps));
            var packedMs = sides[2].Ms;
            Console.WriteLine($"{name}: H {h}, E {i}, B {b}, T {t}{(bi ? ", bidirectional" : "")}");
            foreach (var side in sides)
            {
                var ratios = side.Ms.Zip(packedMs, (p, q) => p / q).OrderBy(v => v).ToList();
                Console.WriteLine($"  {side.Name,-13} {Timing.Median(side.Ms),8:F1} ms   ratio to packed median {Timing.Median(ratios):F3} (range {ratios[0]:F3} … {ratios[^1]:F3})");
            }
        }
        return 0;
    }
}

/// <summary>Per-step timing and medians shared by the interleaved benchmarks.</summary>
static class Timing
{
    /// <summary>Mean milliseconds per call over n calls.</summary>
    public static double Time(Func<float> step, int n)
    {
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < n; i++) step();
        return sw.Elapsed.TotalMilliseconds / n;
    }

    /// <summary>The median.</summary>
    public static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
