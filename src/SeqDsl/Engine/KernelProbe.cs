using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SeqDsl.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>What Auto measured for one layer shape: the kernel it takes and the two medians behind the choice.</summary>
public sealed record KernelProbeResult(Kernel Kernel, double SimdMs, Kernel Other, double OtherMs, bool FromCache)
{
    /// <summary>One line for the layer's diagnostic.</summary>
    public string Describe() =>
        $"measured on this CPU at this layer's widths: SIMD {SimdMs.ToString("0.00", CultureInfo.InvariantCulture)} ms, " +
        $"libtorch's {(Other == Kernel.Loop ? "loop" : "fused")} {OtherMs.ToString("0.00", CultureInfo.InvariantCulture)} ms " +
        $"per forward + backward of a {KernelProbe.Batch} × {KernelProbe.Time} batch" + (FromCache ? $" (measured earlier, kept in {KernelProbe.CacheFile})" : "");
}

/// <summary>
/// Auto's choice for GRU and SimpleRnn layers wider than <see cref="Shapes.SimdAutoMaxUnits"/> units on the CPU: SeqDsl's SIMD
/// kernel or libtorch's (fused, or the per-step loop for cells libtorch cannot fuse), whichever is faster on this machine.
/// Measured, not assumed: with libtorch's GRU kernel a whole char-LM training step at 256 units took 1.20× (one thread) and
/// 1.32× (two) the SIMD kernel's, with its RNN kernel 1.09× at both, on an AMD EPYC with AVX-512 (docs/BENCHMARKS.md); those
/// sizes were never measured on the other CPUs. LSTM layers keep libtorch's kernels there (its oneDNN path was faster at
/// 256 units on both CPUs where the two were compared: the AVX2 EPYC and the Zen 5 EPYC).
/// <para>The probe times forward + backward of the layer (its widths, stacking and directions) on a
/// <see cref="Batch"/> × <see cref="Time"/> batch, both kernels alternating, <see cref="Rounds"/> rounds; the SIMD kernel is
/// taken when its median is below <see cref="Margin"/> × libtorch's. The result is kept per CPU, SeqDsl build, thread count
/// and shape in <see cref="CacheFile"/>, so later runs on this machine take the same kernel (and a seeded run gives the
/// same floats); where it cannot be kept, Auto takes libtorch's kernel. <c>SEQDSL_KERNEL_PROBE=0</c> turns the probe off
/// (Auto then keeps libtorch's kernels beyond 64 units, as before, and reads no kept choice).</para>
/// </summary>
public static class KernelProbe
{
    /// <summary>Rows and steps of the probe's batch.</summary>
    public const int Batch = 32, Time = 32;
    /// <summary>Alternating timed rounds, after the warm-up.</summary>
    public const int Rounds = 5;
    /// <summary>The warm-up: alternating calls of both kernels for this long, within <see cref="WarmUpCalls"/>.</summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1.5);
    /// <summary>The fewest and the most warm-up calls of each kernel.</summary>
    public static readonly (int Min, int Max) WarmUpCalls = (3, 200);
    /// <summary>The SIMD kernel is taken when its median time is below this share of libtorch's.</summary>
    public const double Margin = 0.9;

    private static readonly object Gate = new();
    private static readonly Dictionary<string, KernelProbeResult> Measured = new();

    /// <summary>Whether the probe runs (<c>SEQDSL_KERNEL_PROBE=0</c> turns it off).</summary>
    public static bool Enabled => EnabledOverride ?? Environment.GetEnvironmentVariable("SEQDSL_KERNEL_PROBE") != "0";

    /// <summary>For tests, on the calling thread: turns the probe on or off whatever the environment says (null: the
    /// environment decides).</summary>
    [ThreadStatic] internal static bool? EnabledOverride;

    /// <summary>For tests, on the calling thread: the cache file's folder instead of the environment's.</summary>
    [ThreadStatic] internal static string? CacheDirOverride;

    /// <summary>For tests, on the calling thread: replaces the timing of one kernel on one layer (ms per call), so the
    /// choice can be checked both ways.</summary>
    [ThreadStatic] internal static Func<RecurrentLayer, long, double>? TimeOverride;

    /// <summary>The cache file: <c>kernel-choices.json</c> in the first absolute folder of <c>$SEQDSL_CACHE_DIR</c>,
    /// <c>$XDG_CACHE_HOME/seqdsl</c> and <c>~/.cache/seqdsl</c> (a relative value is skipped, as the XDG rules ask); null
    /// where there is none (no home folder).</summary>
    public static string? CacheFile
    {
        get
        {
            static string? Absolute(string? folder) => !string.IsNullOrEmpty(folder) && Path.IsPathRooted(folder) ? folder : null;
            var home = Absolute(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));
            var folder = Absolute(CacheDirOverride ?? Environment.GetEnvironmentVariable("SEQDSL_CACHE_DIR"))
                ?? (Absolute(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")) is string xdg ? Path.Combine(xdg, "seqdsl") : null)
                ?? (home is not null ? Path.Combine(home, ".cache", "seqdsl") : null);
            return folder is null ? null : Path.Combine(folder, "kernel-choices.json");
        }
    }

    /// <summary>Whether Auto asks the probe about this layer: a GRU or SimpleRnn layer with kernel Auto, wider than the
    /// static rule's <see cref="Shapes.SimdAutoMaxUnits"/>, on a CPU with the SIMD kernel's instructions.</summary>
    public static bool Applies(RecurrentLayer r, bool cpu) =>
        Enabled && cpu && r.Kernel == Kernel.Auto && r.Units > Shapes.SimdAutoMaxUnits
        && r.Cell is GruCell or RnnCell && r.Cell.SimdUnavailableReason is null
        && Simd.SimdMath.Detected != Simd.SimdWidth.Scalar;

    /// <summary>
    /// The measured choice for layer <paramref name="r"/> reading <paramref name="width"/> features: from this process's
    /// earlier probes, the cache file, or (with <paramref name="measure"/>) a new probe, written to the cache and read
    /// back. Null where there is no choice to keep: the probe failed, or could not be kept in the cache (or measuring was
    /// not asked for and nothing is cached) — Auto then keeps libtorch's kernel, so that runs repeat. Runs before a
    /// network's seed is set: the probe's own networks reseed libtorch's generator. Other processes wait (a lock file
    /// beside the cache) and take the first one's choice.
    /// </summary>
    public static KernelProbeResult? Choose(RecurrentLayer r, long width, bool measure, Action<string>? diagnostics, string label = "layer")
    {
        var key = Key(r, width);
        lock (Gate)
        {
            if (Measured.TryGetValue(key, out var known)) return known;
            var file = CacheFile;
            if (file is not null && ReadCache(file).TryGetValue(key, out var cached))
                return Measured[key] = cached; // read from the file: FromCache
            if (!measure) return null;
            if (file is null)
            {
                diagnostics?.Invoke($"{label}: Auto keeps libtorch's kernel: no absolute folder to keep a measured choice in " +
                    "(SEQDSL_CACHE_DIR, XDG_CACHE_HOME or a home folder)");
                return null;
            }
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                using var fileLock = LockFile(file + ".lock");
                // another process may have measured while this one waited
                if (ReadCache(file).TryGetValue(key, out var theirs))
                    return Measured[key] = theirs;
                diagnostics?.Invoke($"{label}: measuring SeqDsl's SIMD kernel against libtorch's for kernel Auto (once per machine and layer shape)");
                var result = Probe(r, width);
                WriteCache(file, key, result);
                return Measured[key] = result;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                diagnostics?.Invoke($"{label}: Auto keeps libtorch's kernel: the kernel probe did not finish or could not be kept in {file} ({e.GetType().Name}: {FirstLine(e.Message)})");
                return null;
            }
        }
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    /// <summary>An exclusive lock on a file beside the cache, left in place (waits up to two minutes for another
    /// process's probe).</summary>
    private static FileStream LockFile(string path)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
            }
            catch (IOException) when (waited.Elapsed < TimeSpan.FromMinutes(2) && File.Exists(path))
            {
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>The cache key: the CPU (model, family/model/stepping, vector width), the thread count, the cell and the
    /// layer's widths, stacking and directions.</summary>
    internal static string Key(RecurrentLayer r, long width)
    {
        var cell = r.Cell switch
        {
            GruCell g => g.ResetAfter ? "gru" : "gru-reset-before",
            RnnCell c => "rnn-" + c.Activation.ToString().ToLowerInvariant(),
            _ => r.Cell.Name,
        };
        return string.Join(" | ", Cpu.Value, Build.Value, $"threads {torch.get_num_threads()}", cell,
            $"I {width} H {r.Units} layers {r.Layers} directions {r.Directions}");
    }

    private static readonly Lazy<string> Cpu = new(() =>
        $"{Backend.Machine}, family {Backend.CpuInfo("cpu family") ?? "?"} model {Backend.CpuInfo("model\t") ?? "?"} " +
        $"stepping {Backend.CpuInfo("stepping") ?? "?"}, SIMD {Simd.SimdMath.Default}");

    // the build too: a kernel compiled without the JIT's optimisations (a Debug build) is much slower, and another
    // version of SeqDsl may have other kernels
    private static readonly Lazy<string> Build = new(() =>
    {
        var assembly = typeof(KernelProbe).Assembly;
        var optimised = assembly.GetCustomAttributes(typeof(DebuggableAttribute), false) is not [DebuggableAttribute { IsJITOptimizerDisabled: true }];
        var version = assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            is [System.Reflection.AssemblyInformationalVersionAttribute v] ? v.InformationalVersion : assembly.GetName().Version?.ToString() ?? "?";
        return $"SeqDsl {version}{(optimised ? "" : " (not optimised)")}";
    });

    private static KernelProbeResult Probe(RecurrentLayer r, long width)
    {
        var other = Shapes.PlanLibtorch(r with { Kernel = Kernel.Auto }).Kernel;
        var simdLayer = r with { Kernel = Kernel.Simd, ReturnSequences = true, Dropout = 0 };
        var otherLayer = r with { Kernel = other, ReturnSequences = true, Dropout = 0 };
        if (TimeOverride is { } fake)
            return Decide(fake(simdLayer, width), other, fake(otherLayer, width));
        using var simd = Timer.Create(simdLayer, width);
        using var lib = Timer.Create(otherLayer, width);
        // warm up long enough for the JIT's tiering to replace the SIMD kernel's first, unoptimised code: measured
        // in a fresh process, one warm-up call each left the SIMD kernel ~1.7× slower than it runs once warm (E11's GRU)
        var warm = Stopwatch.StartNew();
        for (var n = 0; n < WarmUpCalls.Max && (n < WarmUpCalls.Min || warm.Elapsed < WarmUp); n++)
        {
            simd.Call();
            lib.Call();
        }
        var simdMs = new List<double>();
        var libMs = new List<double>();
        for (var i = 0; i < Rounds; i++)
        {
            // alternate which goes first, so that a drift of the machine's speed hits both
            if (i % 2 == 0) { simdMs.Add(simd.Call()); libMs.Add(lib.Call()); }
            else { libMs.Add(lib.Call()); simdMs.Add(simd.Call()); }
        }
        return Decide(Median(simdMs), other, Median(libMs));
    }

    private static KernelProbeResult Decide(double simdMs, Kernel other, double otherMs) =>
        new(simdMs < Margin * otherMs ? Kernel.Simd : other, simdMs, other, otherMs, false);

    private static double Median(List<double> xs)
    {
        xs.Sort();
        return xs[xs.Count / 2];
    }

    /// <summary>One layer compiled on one kernel with a fixed random input; <see cref="Call"/> times forward + backward.</summary>
    private sealed class Timer : IDisposable
    {
        private readonly Network _net;
        private readonly Tensor _x;

        private Timer(Network net, Tensor x) { _net = net; _x = x; }

        public static Timer Create(RecurrentLayer layer, long width)
        {
            var net = Network.Compile(ModelSpec.Of([layer]), new CompileOptions { Input = new InputSpec(Features: checked((int)width)), Seed = 1 });
            net.train();
            return new Timer(net, randn(Batch, Time, width));
        }

        public double Call()
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            _net.forward(_x).sum().backward();
            _net.zero_grad();
            return sw.Elapsed.TotalMilliseconds;
        }

        public void Dispose()
        {
            _x.Dispose();
            _net.Dispose();
        }
    }

    private static Dictionary<string, KernelProbeResult> ReadCache(string file)
    {
        var entries = new Dictionary<string, KernelProbeResult>();
        try
        {
            if (!File.Exists(file)) return entries;
            if (JsonNode.Parse(File.ReadAllText(file)) is not JsonObject { } root || root["version"] is not JsonValue version
                || !version.TryGetValue<int>(out var v) || v != 1 || root["entries"] is not JsonObject list)
                return entries; // another version's file, or damaged: measured again and rewritten
            foreach (var (key, value) in list)
            {
                if (value is not JsonObject e) continue;
                if (e["kernel"] is JsonValue kv && kv.TryGetValue<string>(out var ks) && Enum.TryParse<Kernel>(ks, out var k)
                    && e["other"] is JsonValue ov && ov.TryGetValue<string>(out var os) && Enum.TryParse<Kernel>(os, out var o)
                    && e["simdMs"] is JsonValue sv && sv.TryGetValue<double>(out var simdMs)
                    && e["otherMs"] is JsonValue mv && mv.TryGetValue<double>(out var otherMs)
                    && (k == Kernel.Simd || k == o) && o is Kernel.Fused or Kernel.Loop)
                    entries[key] = new KernelProbeResult(k, simdMs, o, otherMs, true);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // an unreadable cache is measured again and rewritten, never an error
            entries.Clear();
        }
        return entries;
    }

    private static void WriteCache(string file, string key, KernelProbeResult result)
    {
        var entries = ReadCache(file);
        entries[key] = result;
        // entries this CPU measured with another build of SeqDsl are not read again: dropped
        var cpu = Cpu.Value + " | ";
        var mine = cpu + Build.Value + " | ";
        var list = new JsonObject();
        foreach (var (k, v) in entries.OrderBy(e => e.Key, StringComparer.Ordinal))
            if (!k.StartsWith(cpu, StringComparison.Ordinal) || k.StartsWith(mine, StringComparison.Ordinal))
                list[k] = new JsonObject
                {
                    ["kernel"] = v.Kernel.ToString(), ["other"] = v.Other.ToString(),
                    ["simdMs"] = Math.Round(v.SimdMs, 3), ["otherMs"] = Math.Round(v.OtherMs, 3),
                };
        var root = new JsonObject
        {
            ["version"] = 1,
            ["about"] = "kernel choices that SeqDsl measured for kernel: Auto on this machine; delete this file to measure again",
            ["entries"] = list,
        };
        // replaced in one rename (the engine sits below Training's Durable, so the few lines are here): a reader sees the
        // old file or the whole new one
        var temp = $"{file}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                fs.Write(System.Text.Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions
                {
                    WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
                })));
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        if (!ReadCache(file).TryGetValue(key, out var back) || back.Kernel != result.Kernel)
            throw new IOException($"{file} did not read back as written");
    }

    /// <summary>Forgets this process's probes (tests).</summary>
    internal static void ResetForTests()
    {
        lock (Gate) Measured.Clear();
    }
}
