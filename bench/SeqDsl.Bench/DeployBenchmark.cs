using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http;
using System.Text;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Export;
using SeqDsl.Runtime;
using SeqDsl.Serving;
using SeqDsl.Spec;
using SeqDsl.Training;
using SeqDsl.Workflows;

/// <summary>
/// Deployment, measured side by side: export time; prediction latency of ONNX Runtime (SeqDsl.Runtime) against SeqDsl
/// on libtorch (TrainedModel's path) for one text and for a batch of 256, in interleaved rounds, preparation included;
/// then the HTTP service (seqdsl serve) with each backend under 1, 8 and 64 concurrent clients on loopback (a bounded
/// .NET client loop: a fixed time per level, every request one text). The model is seed 003's E7 LSTM
/// (Embed(32).SpatialDropout(0.4).Lstm(32).Dropout(0.4).Dense(1, Sigmoid), vocabulary 8000, maxlen 200, Keras
/// convention) with its initial weights; the texts are 230 random words of the vocabulary, about an IMDB review.
///   dotnet run -c Release --project bench/SeqDsl.Bench -- deploy [--rounds N] [--threads T] [--seconds S]
/// </summary>
static class DeployBenchmark
{
    const string ModelText = "Embed(32).SpatialDropout(0.4).Lstm(32).Dropout(0.4).Dense(1, Sigmoid)";

    public static int Run(string[] args)
    {
        int Get(string name, int fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        }
        var rounds = Get("--rounds", 200);
        var threads = Get("--threads", Environment.ProcessorCount);
        var seconds = Get("--seconds", 5);
        var rng = new Random(1);
        var words = Enumerable.Range(0, 8000).Select(i => $"w{i}").ToArray();
        string Text() => string.Join(' ', Enumerable.Range(0, 230).Select(_ => words[(int)Math.Min(7999, -Math.Log(1 - rng.NextDouble()) * 1500)]));
        var text = TextPreprocessing.Fit([string.Join(' ', words)], Tokenizer.Keras, VocabularyOptions.Keras(8000), 200, Side.Pre, Side.Pre);
        var info = new TaskInfo { Kind = TaskKind.Classification, Data = "imdb:bench", Loss = LossKind.BinaryCrossEntropy, Metrics = [Metric.Accuracy] };
        var net = Network.Compile(ModelSyntax.Parse(ModelText), new CompileOptions { Input = new InputSpec(Vocab: text.Vocabulary.Size, SeqLen: 200), Convention = Convention.Keras, Seed = 1 });
        using var torchModel = new TrainedModel { Network = net, Info = info, Text = text };

        Console.WriteLine($"# deploy benchmark — {ModelText}, vocabulary {text.Vocabulary.Size}, maxlen 200; {threads} thread(s); {Environment.ProcessorCount} cores");
        var watch = Stopwatch.StartNew();
        var bytes = OnnxExport.ToBytes(net, info, text);
        var exportMs = watch.Elapsed.TotalMilliseconds;
        watch.Restart();
        using var onnx = OnnxModel.FromBytes(bytes, "bench", new OnnxModelOptions { Threads = threads });
        var loadMs = watch.Elapsed.TotalMilliseconds;
        Console.WriteLine($"export: {exportMs:F0} ms to ONNX bytes ({bytes.Length / 1024.0:F0} KiB), {loadMs:F0} ms to an ONNX Runtime session");

        var one = new[] { Text() };
        var batch = Enumerable.Range(0, 256).Select(_ => Text()).ToArray();
        // the two engines must agree before they are timed
        var a = torchModel.PredictTexts(batch);
        var b = onnx.PredictTexts(batch);
        var maxDiff = a.Zip(b, (x, y) => Math.Abs(x.Value - y.Value)).Max();
        Console.WriteLine($"agreement on the 256 texts: max |ORT − SeqDsl| = {maxDiff:E1}");
        foreach (var (name, inputs, n) in new[] { ("1 text", one, rounds), ("256 texts", batch, Math.Max(5, rounds / 20)) })
        {
            var torchTimes = new List<double>();
            var onnxTimes = new List<double>();
            for (var i = 0; i < 3; i++) { torchModel.PredictTexts(inputs); onnx.PredictTexts(inputs); } // warm-up
            for (var r = 0; r < n; r++)
            {
                // interleaved, alternating which goes first
                foreach (var first in r % 2 == 0 ? new[] { true, false } : [false, true])
                {
                    var sw = Stopwatch.StartNew();
                    if (first) torchModel.PredictTexts(inputs); else onnx.PredictTexts(inputs);
                    (first ? torchTimes : onnxTimes).Add(sw.Elapsed.TotalMilliseconds);
                }
            }
            var t = Median(torchTimes);
            var o = Median(onnxTimes);
            Console.WriteLine($"predict {name,-9}: SeqDsl (libtorch) median {t,8:F3} ms, ONNX Runtime median {o,8:F3} ms, ORT/SeqDsl {o / t:F2} ({n} rounds)");
        }

        Console.WriteLine();
        Console.WriteLine("| backend | clients | requests | throughput (req/s) | p50 (ms) | p99 (ms) | texts per forward pass |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var backend in new[] { "onnx", "torch" })
        {
            IPredictor predictor = backend == "onnx" ? onnx : torchModel;
            foreach (var clients in new[] { 1, 8, 64 })
            {
                var service = ModelService.Create(predictor, new ServeOptions { Port = 0, Backend = backend });
                service.StartAsync().GetAwaiter().GetResult();
                try
                {
                    var (count, rps, p50, p99) = Load(service.Urls[0], clients, TimeSpan.FromSeconds(seconds), batch);
                    var metrics = service.Metrics.Render();
                    double Value(string key) => double.Parse(metrics.Split('\n').First(l => l.StartsWith(key + " ", StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);
                    var perPass = Value("seqdsl_batch_rows_sum") / Math.Max(1, Value("seqdsl_batch_rows_count"));
                    Console.WriteLine($"| {backend} | {clients} | {count} | {rps:F0} | {p50:F2} | {p99:F2} | {perPass:F1} |");
                }
                finally
                {
                    service.StopAsync().GetAwaiter().GetResult();
                    service.DisposeAsync().AsTask().GetAwaiter().GetResult();
                }
            }
        }
        return 0;
    }

    /// <summary><paramref name="clients"/> loops, each posting one text and waiting for the answer, for a fixed time
    /// (bounded: each loop also stops after 100,000 requests). Returns requests, throughput, p50 and p99 latency.</summary>
    static (int count, double rps, double p50, double p99) Load(string url, int clients, TimeSpan duration, string[] texts)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients }) { Timeout = TimeSpan.FromSeconds(30) };
        var latencies = new ConcurrentBag<double>();
        Post(http, url, texts[0]).GetAwaiter().GetResult(); // first connection and JIT outside the measurement
        var stopAt = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            for (var i = 0; i < 100_000 && stopAt.Elapsed < duration; i++)
            {
                var sw = Stopwatch.StartNew();
                await Post(http, url, texts[(c * 31 + i) % texts.Length]);
                latencies.Add(sw.Elapsed.TotalMilliseconds);
            }
        })).ToArray();
        Task.WaitAll(tasks);
        var elapsed = stopAt.Elapsed.TotalSeconds;
        var sorted = latencies.OrderBy(x => x).ToArray();
        return (sorted.Length, sorted.Length / elapsed, Percentile(sorted, 0.5), Percentile(sorted, 0.99));
    }

    static async Task Post(HttpClient http, string url, string text)
    {
        using var content = new StringContent("{\"texts\":[\"" + text + "\"]}", Encoding.UTF8, "application/json");
        using var r = await http.PostAsync(url + "/predict", content);
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
        await r.Content.ReadAsStringAsync();
    }

    static double Median(List<double> xs) => Percentile(xs.OrderBy(x => x).ToArray(), 0.5);

    static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
