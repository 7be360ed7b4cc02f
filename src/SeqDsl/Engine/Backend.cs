using System.Runtime.InteropServices;
using SeqDsl.Spec;
using TorchSharp;

namespace SeqDsl.Engine;

/// <summary>How the process gets and keeps memory from the C allocator.</summary>
public enum MemoryPolicy
{
    /// <summary>glibc malloc keeps freed blocks in its heaps instead of returning them to the kernel
    /// (<c>mallopt</c>: no mmap'd blocks, mmap threshold 32 MiB, trim threshold 1 GiB, top pad 64 MiB). libtorch
    /// frees and re-allocates every step's activations; with glibc's defaults each re-allocation of a large block
    /// faults its pages in again (docs/BENCHMARKS.md has the measurements). The process keeps its peak heap.</summary>
    Retain,
    /// <summary>The C allocator as the process found it.</summary>
    System,
}

/// <summary>
/// libtorch's process-wide backend switches, set deliberately, in one place, before SeqDsl runs a
/// tensor operation: the oneDNN (mkldnn) RNN path (<see cref="Initialize"/>, which
/// <see cref="Network.Compile"/> calls) and the allocator's settings (<see cref="UseMemoryPolicy"/>,
/// which the CLI, scripts, tests and benchmarks call first thing; a library user opts in).
/// <see cref="Describe"/> says what was set and why.
/// </summary>
/// <remarks>
/// Measured facts behind the choices (libtorch 2.10, CPU; docs/BENCHMARKS.md):
/// libtorch's oneDNN LSTM gives wrong outputs under <c>no_grad</c> for some hidden sizes (2, 3, 4, 8,
/// 12, 16, 48 seen) on an AVX-512 CPU; in training mode it was right there. The switch is global in libtorch
/// (<c>at::Context::setUserEnabledMkldnn</c>); SeqDsl keeps it off and turns it on only around the
/// forward call of a layer whose plan chose oneDNN (<see cref="FusedPath.OneDnn"/>), which is never a
/// forward pass without gradients. With the memory policy below, oneDNN's training-mode LSTM is
/// 2–3× faster than the native kernel at the textbooks' small sizes; it is verified against the
/// float64 reference, once for the sizes where its inference was seen wrong and once per layer shape
/// (<see cref="OneDnnTrainingRightFor"/>), before a layer uses it. Training-mode forwards on oneDNN hold a
/// process-wide lock (the switch is global), so concurrent training on several threads is serialised there.
/// </remarks>
public static class Backend
{
    private static readonly object Gate = new();
    private static volatile bool _initialized;
    private static readonly ReaderWriterLockSlim FlagLock = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Whether libtorch's oneDNN switch could be called; when false, CPU LSTM layers whose kernel is
    /// Auto run on the loop kernel (which never uses oneDNN) and <see cref="SwitchProblem"/> says why.</summary>
    public static bool OneDnnSwitchAvailable { get; private set; }

    /// <summary>Why the oneDNN switch could not be set, or null.</summary>
    public static string? SwitchProblem { get; private set; }

    /// <summary>The memory policy in force, or null before <see cref="UseMemoryPolicy"/>.</summary>
    public static MemoryPolicy? Memory { get; private set; }

    /// <summary>What applying the memory policy did, one line.</summary>
    public static string MemoryReport { get; private set; } = "allocator as the process found it (Backend.UseMemoryPolicy not called)";

    /// <summary>For tests: pretend the oneDNN switch is missing (as with a future libtorch without the symbol).</summary>
    internal static bool SimulateMissingSwitch { get; set; }

    /// <summary>For tests: pretend oneDNN's training path disagrees with the reference on this CPU.</summary>
    internal static bool SimulateOneDnnWrong { get; set; }

    /// <summary>Sets libtorch's oneDNN switch off process-wide; idempotent and thread-safe. Warns on standard error,
    /// once, if the switch cannot be called.</summary>
    public static void Initialize()
    {
        if (_initialized) return;
        lock (Gate)
        {
            if (_initialized) return;
            try
            {
                if (SimulateMissingSwitch) throw new EntryPointNotFoundException("simulated for a test");
                torch.InitializeDeviceType(DeviceType.CPU); // loads libtorch_cpu, which the switch lives in
                Native.Resolve();
                Native.Set(false);
                if (Native.Get()) throw new InvalidOperationException("the switch did not take (still on after being set off)");
                OneDnnSwitchAvailable = true;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or InvalidOperationException)
            {
                OneDnnSwitchAvailable = false;
                SwitchProblem = $"libtorch's oneDNN switch (at::Context::setUserEnabledMkldnn) could not be called: {e.Message}";
                if (!SimulateMissingSwitch)
                    Console.Error.WriteLine($"seqdsl: warning: {SwitchProblem}. CPU LSTM layers with kernel Auto run on the loop kernel, which is known right; " +
                        "kernel: Fused may run libtorch's oneDNN LSTM, which is wrong under no_grad on some CPUs. Run `seqdsl check`.");
            }
            _initialized = true;
        }
    }

    private static readonly object VerifyGate = new();
    private static bool? _sweepRight;
    private static string? _oneDnnTrainingProblem;
    private static readonly Dictionary<(long Input, int Hidden, int Layers, bool Bidirectional), bool> ShapeRight = new();
    [ThreadStatic] private static bool _verifying;

    /// <summary>
    /// Whether libtorch's oneDNN LSTM computes training-mode forward passes right on this CPU at the sizes where its
    /// inference was seen wrong (H 1–64 including 2, 3, 4, 8, 12, 16, 48; uni- and bidirectional, stacked, with and
    /// without lengths): checked once per process, on first need, against the float64 reference. False when the switch
    /// is missing or a case disagrees; then every LSTM runs on the native kernel and <see cref="OneDnnTrainingProblem"/>
    /// says why.
    /// </summary>
    public static bool OneDnnTrainingRight => Verify(null);

    /// <summary>
    /// <see cref="OneDnnTrainingRight"/>, and the layer's own shape (input width, units, stacked layers, directions)
    /// checked against the reference in training mode too (small batch and time, the real widths; cached per shape).
    /// </summary>
    public static bool OneDnnTrainingRightFor(long input, int hidden, int layers, bool bidirectional) =>
        Verify((input, hidden, layers, bidirectional));

    private static bool Verify((long Input, int Hidden, int Layers, bool Bidirectional)? shape)
    {
        Initialize();
        if (!OneDnnSwitchAvailable) return false;
        if (_verifying) return true; // the check's own networks; their path is forced
        lock (VerifyGate)
        {
            _verifying = true;
            // the check compiles seeded networks, so it reseeds libtorch's global generator, as any Compile does;
            // Network.Compile runs it before setting its own seed
            try
            {
                _sweepRight ??= Record(KernelCheck.VerifyOneDnnTraining(null));
                if (_sweepRight != true || shape is not { } s) return _sweepRight == true;
                if (!ShapeRight.TryGetValue(s, out var right))
                    ShapeRight[s] = right = Record(KernelCheck.VerifyOneDnnTraining(s));
                return right;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // a check that cannot run is a check that did not pass
                _oneDnnTrainingProblem = $"oneDNN's training path could not be checked on this CPU ({e.GetType().Name}: {e.Message})";
                _sweepRight = false;
                return false;
            }
            finally
            {
                _verifying = false;
            }
        }
    }

    private static bool Record(KernelCheckRow? worst)
    {
        if (worst is null) return true;
        _oneDnnTrainingProblem = $"oneDNN's LSTM disagrees with the reference in training mode on this CPU " +
            $"(I={worst.Input} H={worst.Case.Hidden} {worst.Case.Variant}: error {worst.MaxError:G3})";
        if (!SimulateOneDnnWrong)
            Console.Error.WriteLine($"seqdsl: warning: {_oneDnnTrainingProblem}; such LSTMs run on libtorch's native kernel. Run `seqdsl check`.");
        return false;
    }

    /// <summary>Why oneDNN's LSTM is not used for training, or null.</summary>
    public static string? OneDnnTrainingProblem => OneDnnSwitchAvailable ? _oneDnnTrainingProblem : SwitchProblem;

    /// <summary>Forgets the switch state and every verification (tests that simulate failures).</summary>
    internal static void ResetForTests()
    {
        lock (Gate) { _initialized = false; SwitchProblem = null; }
        lock (VerifyGate) { _sweepRight = null; _oneDnnTrainingProblem = null; ShapeRight.Clear(); }
        Initialize();
    }

    /// <summary>Whether the .NET GC keeps the memory it frees (runtimeconfig <c>System.GC.RetainVM</c>, or
    /// <c>DOTNET_GCRetainVM=1</c>); without it, memory freed between training steps is decommitted and faulted in again.</summary>
    public static bool GcRetainsMemory =>
        AppContext.GetData("System.GC.RetainVM") is true or "true" or "True"
        || Environment.GetEnvironmentVariable("DOTNET_GCRetainVM") is "1" or "true";

    /// <summary>The value of the first /proc/cpuinfo line that starts with <paramref name="field"/> (e.g. "model name",
    /// "cpu family", "model\t"), or null where there is no such file or line.</summary>
    internal static string? CpuInfo(string field)
    {
        try
        {
            return File.Exists("/proc/cpuinfo")
                ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The CPU model (from /proc/cpuinfo where there is one) and the widest vector instruction set .NET sees,
    /// e.g. "AMD EPYC, AVX2": what every measurement should be reported with.</summary>
    public static string Machine
    {
        get
        {
            var model = CpuInfo("model name") ?? "unknown CPU";
            var isa = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "AVX-512"
                : System.Runtime.Intrinsics.X86.Avx2.IsSupported ? "AVX2"
                : System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "NEON" : "no AVX2";
            return $"{model}, {isa}, {Environment.ProcessorCount} cores";
        }
    }

    /// <summary>One line per decision: the oneDNN switch, memory, threads.</summary>
    public static IReadOnlyList<string> Describe()
    {
        Initialize();
        var oneDnn = !OneDnnSwitchAvailable
            ? $"oneDNN RNN path: UNKNOWN — {SwitchProblem}; Auto LSTM layers on the CPU run on the loop kernel"
            : _oneDnnTrainingProblem is string why
                ? $"oneDNN RNN path: off process-wide; not used for training either: {why}"
                : "oneDNN RNN path: off process-wide; on only around the training-mode forward of an LSTM layer (faster there; " +
                  "checked against the reference on this CPU before a layer uses it); never without gradients";
        return
        [
            oneDnn,
            $"memory: {MemoryReport}; .NET GC {(GcRetainsMemory ? "retains freed memory (GCRetainVM)" : "decommits freed memory (set <RetainVMGarbageCollection>true</RetainVMGarbageCollection> or DOTNET_GCRetainVM=1)")}",
            $"threads: {torch.get_num_threads()} (libtorch intra-op); OpenMP spin: " + (NativeLoader.OpenMpSpin is string spin
                ? $"GOMP_SPINCOUNT={spin}" + (spin == NativeLoader.SpinCount ? " (set by SeqDsl: libtorch's idle threads leave the cores to the SIMD kernel)" : "")
                : "libgomp's default" + (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is string w ? $" under OMP_WAIT_POLICY={w}" : "")),
            $"SIMD kernel: {Simd.SimdMath.Default} path (CPU: {Simd.SimdMath.Detected}; kernel Auto takes it up to {Shapes.SimdAutoMaxUnits} units on AVX2 or AVX-512 CPUs)",
            Simd.Denormals.Available
                ? "subnormal floats: flushed to zero during training steps on the training thread, and inside SeqDsl's own kernels, optimizer updates and embedding passes (inference too); SEQDSL_FLUSH_DENORMALS=0 keeps them"
                : "subnormal floats: kept (" + (Environment.GetEnvironmentVariable("SEQDSL_FLUSH_DENORMALS") == "0" ? "SEQDSL_FLUSH_DENORMALS=0" : "no way to set the CPU's flush mode here") + ")",
        ];
    }

    /// <summary>Runs a fused LSTM forward on the chosen path. The native path holds the switch off (shared
    /// with other native calls); the oneDNN path, only with gradients on, holds it on exclusively.</summary>
    internal static T RunLstm<T>(FusedPath path, Func<T> forward)
    {
        Initialize();
        var oneDnn = _forced ?? (path == FusedPath.OneDnn && torch.is_grad_enabled() && OneDnnSwitchAvailable);
        if (FlagLock.IsWriteLockHeld)
        {
            // inside WithOneDnnSwitch on this thread: decide by this call's rule, then give the wrapper its value back
            var outer = Native.Get();
            Set(oneDnn);
            try { return forward(); }
            finally { Set(outer); }
        }
        if (oneDnn) return WithOneDnnSwitch(true, forward);
        FlagLock.EnterReadLock();
        try { return forward(); }
        finally { FlagLock.ExitReadLock(); }
    }

    [ThreadStatic] private static bool? _forced;

    /// <summary>Runs <paramref name="action"/> with every fused LSTM call on this thread forced onto oneDNN (true) or
    /// the native kernel (false), whatever the layers' plans say; null: as planned. For <c>seqdsl check</c> and tests.</summary>
    internal static T WithPath<T>(bool? oneDnn, Func<T> action)
    {
        Initialize();
        var before = _forced;
        _forced = oneDnn;
        try { return action(); }
        finally { _forced = before; }
    }

    /// <summary>Runs <paramref name="action"/> with libtorch's oneDNN switch set as given, exclusively, then off again:
    /// hand-written TorchSharp code under libtorch's default (the benchmark's hand-written side). SeqDsl layers called
    /// inside still follow their own rule.</summary>
    internal static T WithOneDnnSwitch<T>(bool on, Func<T> action)
    {
        Initialize();
        if (!OneDnnSwitchAvailable) return action();
        FlagLock.EnterWriteLock();
        try
        {
            Set(on);
            try { return action(); }
            finally { Set(false); }
        }
        finally { FlagLock.ExitWriteLock(); }
    }

    /// <summary>Sets libtorch's global oneDNN switch.</summary>
    private static void Set(bool on)
    {
        if (OneDnnSwitchAvailable) Native.Set(on);
    }

    private static readonly object MemoryGate = new();

    /// <summary>
    /// Applies a memory policy to glibc's allocator, once per process (later calls report what is in force).
    /// <paramref name="policy"/> null: <c>SEQDSL_MALLOC=retain|system</c>, default <see cref="MemoryPolicy.Retain"/>.
    /// The CLI, the tests, the benchmarks and the F# scripts call it first thing; in your own program call
    /// <c>Backend.UseMemoryPolicy()</c> before training (it makes the process keep its peak heap).
    /// </summary>
    /// <exception cref="SeqDslException">SEQDSL_MALLOC names no policy.</exception>
    public static MemoryPolicy UseMemoryPolicy(MemoryPolicy? policy = null)
    {
        lock (MemoryGate)
        {
            if (Memory is MemoryPolicy applied) return applied;
            var env = Environment.GetEnvironmentVariable("SEQDSL_MALLOC");
            var chosen = policy ?? env?.Trim().ToLowerInvariant() switch
            {
                null or "" or "retain" => MemoryPolicy.Retain,
                "system" => MemoryPolicy.System,
                _ => throw new SeqDslException(ErrorKind.Spec, $"SEQDSL_MALLOC='{env}' is not a memory policy.")
                { Received = env, Expected = "retain (default) or system" },
            };
            Memory = chosen;
            if (chosen == MemoryPolicy.System)
                MemoryReport = "system allocator settings (memory policy: system)";
            else if (!OperatingSystem.IsLinux())
                MemoryReport = "allocator left as is (mallopt is glibc's; not Linux)";
            else
            {
                try
                {
                    // 0 from mallopt means the allocator refused (e.g. musl has no mallopt settings)
                    var ok = Native.Mallopt(Native.M_MMAP_THRESHOLD, 32 << 20) == 1
                           & Native.Mallopt(Native.M_TRIM_THRESHOLD, 1 << 30) == 1
                           & Native.Mallopt(Native.M_TOP_PAD, 64 << 20) == 1
                           // and no mmap at all: blocks above the 32 MiB threshold (a (B, T, 4H) gate buffer of a large
                           // LSTM is 52 MB) would otherwise be mapped and unmapped every step, each time faulting in every page
                           & Native.Mallopt(Native.M_MMAP_MAX, 0) == 1;
                    MemoryReport = ok
                        ? "glibc malloc retains freed blocks (no mmap, trim threshold 1 GiB, top pad 64 MiB)"
                        : "allocator left as is (mallopt refused the settings: not glibc?)";
                }
                catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
                {
                    MemoryReport = $"allocator left as is (no mallopt: {e.Message})";
                }
            }
            return chosen;
        }
    }

    private static unsafe class Native
    {
        public const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3, M_MMAP_MAX = -4;

        [DllImport("libc", EntryPoint = "mallopt")]
        public static extern int Mallopt(int param, int value);

        // at::globalContext() and at::Context's oneDNN switch: exported C++ functions of libtorch_cpu (a member
        // function takes `this` as its first argument). Itanium names (Linux, macOS), then MSVC names (Windows).
        private static delegate* unmanaged<IntPtr> _globalContext;
        private static delegate* unmanaged<IntPtr, byte, void> _set;
        private static delegate* unmanaged<IntPtr, byte> _get;

        public static void Resolve()
        {
            if (!NativeLibrary.TryLoad("torch_cpu", typeof(Backend).Assembly, null, out var lib))
                throw new DllNotFoundException("libtorch_cpu is not loaded");
            IntPtr Find(params string[] names)
            {
                foreach (var n in names)
                    if (NativeLibrary.TryGetExport(lib, n, out var f)) return f;
                throw new EntryPointNotFoundException(names[0]);
            }
            _globalContext = (delegate* unmanaged<IntPtr>)Find("_ZN2at13globalContextEv", "?globalContext@at@@YAAEAVContext@1@XZ");
            _set = (delegate* unmanaged<IntPtr, byte, void>)Find("_ZN2at7Context20setUserEnabledMkldnnEb", "?setUserEnabledMkldnn@Context@at@@QEAAX_N@Z");
            _get = (delegate* unmanaged<IntPtr, byte>)Find("_ZNK2at7Context17userEnabledMkldnnEv", "?userEnabledMkldnn@Context@at@@QEBA_NXZ");
        }

        public static void Set(bool on) => _set(_globalContext(), on ? (byte)1 : (byte)0);

        public static bool Get() => _get(_globalContext()) != 0;
    }
}
