using System.Diagnostics;
using SeqDsl;
using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

/// <summary>
/// oneDNN's LSTM against libtorch's native LSTM kernel in training mode: one SeqDsl LSTM layer, the same weights and
/// input, forward + backward, the path forced per call; rounds alternate which path goes first.
/// </summary>
static class PathsBenchmark
{
    public static int Run(Args o)
    {
        Console.WriteLine($"machine: {Backend.Machine}; threads {get_num_threads()}; {o.Rounds} rounds, median of per-round ratios");
        foreach (var (b, t, i, h, perStep) in new[] { (128, 200, 32, 32, false), (32, 200, 32, 50, false), (32, 35, 1027, 256, true), (64, 40, 256, 512, true), (64, 100, 512, 512, false) })
        {
            using var net = Network.Compile(ModelSyntax.Parse($"Lstm({h}, returnSequences: true)"), new CompileOptions { Input = new InputSpec(Features: i), Seed = 1 });
            using var x = randn(b, t, i);
            double Step(bool oneDnn)
            {
                var sw = Stopwatch.StartNew();
                using var scope = NewDisposeScope();
                Backend.WithPath(oneDnn, () =>
                {
                    var y = net.forward(x);
                    (perStep ? y.sum() : y.select(1, -1).sum()).backward();
                    return 0;
                });
                return sw.Elapsed.TotalMilliseconds;
            }
            for (var w = 0; w < 2; w++) { Step(true); Step(false); }
            var on = new List<double>();
            var off = new List<double>();
            for (var r = 0; r < o.Rounds; r++)
            {
                if (r % 2 == 0) { on.Add(Step(true)); off.Add(Step(false)); }
                else { off.Add(Step(false)); on.Add(Step(true)); }
            }
            var ratios = on.Zip(off, (a, c) => a / c).OrderBy(v => v).ToList();
            Console.WriteLine($"B {b}, T {t}, I {i}, H {h}: oneDNN {Timing.Median(on):F1} ms, native {Timing.Median(off):F1} ms, " +
                              $"oneDNN/native {Timing.Median(ratios):F2} ({ratios[0]:F2} … {ratios[^1]:F2})");
        }
        return 0;
    }
}
