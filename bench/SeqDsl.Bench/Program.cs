// Side-by-side benchmarks, interleaved in one run so machine noise hits both sides alike.
//   dotnet run -c Release --project bench/SeqDsl.Bench -- step [--rounds N] [--steps K] [--threads T]
using System.Diagnostics;
using System.Globalization;
using SeqDsl;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;
using TorchSharp;
using static TorchSharp.torch;

var opts = Args.Parse(args);
if (opts.Command != "step")
{
    Console.Error.WriteLine("usage: bench step [--rounds N] [--steps K] [--threads T]");
    return 2;
}
torch.set_num_threads(opts.Threads);
return StepBenchmark.Run(opts);

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
            opt.zero_grad();
            var (_, h, _) = lstm.forward(emb.call(x));
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
            if (r % 2 == 0) { a.Add(Time(SeqDslStep, o.Steps)); b.Add(Time(HandStep, o.Steps)); }
            else { b.Add(Time(HandStep, o.Steps)); a.Add(Time(SeqDslStep, o.Steps)); }
        }
        var ratios = a.Zip(b, (p, q) => p / q).OrderBy(v => v).ToList();
        Console.WriteLine($"SeqDsl     median {Median(a):F2} ms/step");
        Console.WriteLine($"hand-made  median {Median(b):F2} ms/step");
        Console.WriteLine($"ratio SeqDsl/hand: median {Median(ratios):F3} (per-round ratios {ratios[0]:F3} … {ratios[^1]:F3})");
        return 0;
    }

    static double Time(Func<float> step, int n)
    {
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < n; i++) step();
        return sw.Elapsed.TotalMilliseconds / n;
    }

    static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
