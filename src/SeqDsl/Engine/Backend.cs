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
/// tensor operation: the oneDNN (mkldnn) RNN path, the allocator's settings and the default thread
/// count. <see cref="Network.Compile"/> calls <see cref="Initialize"/>; the CLI, scripts, tests and
/// benchmarks call it first thing. <see cref="Describe"/> says what was set and why.
/// </summary>
/// <remarks>
/// Measured facts behind the choices (libtorch 2.10, CPU; docs/BENCHMARKS.md):
/// libtorch's oneDNN LSTM gives wrong outputs under <c>no_grad</c> for some hidden sizes (2, 3, 4, 8,
/// 12, 16, 48 seen) on an AVX-512 CPU; in training mode it was right there. The switch is global in libtorch
/// (<c>at::Context::setUserEnabledMkldnn</c>); SeqDsl keeps it off and turns it on only around the
/// forward call of a layer whose plan chose oneDNN (<see cref="FusedPath.OneDnn"/>), which is never a
/// forward pass without gradients. With the memory policy below, oneDNN's training-mode LSTM is
/// 2–3× faster than the native kernel at the textbooks' small sizes; it is verified against the
/// float64 reference at first use (<see cref="OneDnnTrainingRight"/>).
/// </remarks>
public static class Backend
{
    private static readonly object Gate = new();
    private static volatile bool _initialized;
    private static readonly ReaderWriterLockSlim FlagLock = new(LockRecursionPolicy.NoRecursion);

    /// <summary>Whether libtorch's oneDNN switch could be called; when false, LSTM layers whose kernel is
    /// Auto run on the loop kernel (which never uses oneDNN) and <see cref="SwitchProblem"/> says why.</summary>
    public static bool OneDnnSwitchAvailable { get; private set; }

    /// <summary>Why the oneDNN switch could not be set, or null.</summary>
    public static string? SwitchProblem { get; private set; }

    /// <summary>The memory policy in force (from <c>SEQDSL_MALLOC=retain|system</c>, default retain).</summary>
    public static MemoryPolicy Memory { get; private set; } = MemoryPolicy.Retain;

    /// <summary>What applying the memory policy did, one line.</summary>
    public static string MemoryReport { get; private set; } = "not initialised";

    /// <summary>For tests: pretend the oneDNN switch is missing (as with a future libtorch without the symbol).</summary>
    internal static bool SimulateMissingSwitch { get; set; }

    /// <summary>Sets libtorch's process-wide switches; idempotent and thread-safe. Warns on standard error,
    /// once, if the oneDNN switch cannot be called.</summary>
    public static void Initialize()
    {
        if (_initialized) return;
        lock (Gate)
        {
            if (_initialized) return;
            ApplyMemoryPolicy();
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU); // loads libtorch_cpu.so, which the switch lives in
                SetOneDnn(false);
                if (Native.UserEnabledMkldnn(Native.GlobalContext()) != 0)
                    throw new InvalidOperationException("the switch did not take (still on after being set off)");
                OneDnnSwitchAvailable = true;
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or InvalidOperationException)
            {
                OneDnnSwitchAvailable = false;
                SwitchProblem = $"libtorch's oneDNN switch (at::Context::setUserEnabledMkldnn) could not be called: {e.Message}";
                Console.Error.WriteLine($"seqdsl: warning: {SwitchProblem}. LSTM layers with kernel Auto run on the loop kernel, which is known right; " +
                    "kernel: Fused may run libtorch's oneDNN LSTM, which is wrong under no_grad on some CPUs. Run `seqdsl check`.");
            }
            _initialized = true;
        }
    }

    private static readonly object VerifyGate = new();
    private static bool? _oneDnnTrainingRight;
    private static string? _oneDnnTrainingProblem;
    [ThreadStatic] private static bool _verifying;

    /// <summary>
    /// Whether libtorch's oneDNN LSTM computes training-mode forward passes right on this CPU: checked once per
    /// process, on first need, against the float64 reference (LSTM, H 1–64 including 2, 3, 4, 8, 12, 16, 48;
    /// uni- and bidirectional, stacked, with and without lengths; tens of milliseconds). False when the switch
    /// is missing or a case disagrees; then every LSTM runs on the native kernel and
    /// <see cref="OneDnnTrainingProblem"/> says why.
    /// </summary>
    public static bool OneDnnTrainingRight
    {
        get
        {
            Initialize();
            if (!OneDnnSwitchAvailable) return false;
            if (_verifying) return true; // the check's own networks; their path is forced
            lock (VerifyGate)
            {
                if (_oneDnnTrainingRight is bool known) return known;
                _verifying = true;
                // the check compiles seeded networks: the caller's global random state must not change
                using var rng = torch.random.get_rng_state();
                try
                {
                    var worst = KernelCheck.VerifyOneDnnTraining();
                    _oneDnnTrainingRight = worst is null;
                    if (worst is KernelCheckRow w)
                    {
                        _oneDnnTrainingProblem = $"oneDNN's LSTM disagrees with the reference in training mode on this CPU (H={w.Case.Hidden} {w.Case.Variant}: error {w.MaxError:G3})";
                        Console.Error.WriteLine($"seqdsl: warning: {_oneDnnTrainingProblem}; every LSTM runs on libtorch's native kernel. Run `seqdsl check`.");
                    }
                }
                finally
                {
                    _verifying = false;
                    torch.random.set_rng_state(rng);
                }
                return _oneDnnTrainingRight.Value;
            }
        }
    }

    /// <summary>Why oneDNN's LSTM is not used for training, or null.</summary>
    public static string? OneDnnTrainingProblem => OneDnnSwitchAvailable ? _oneDnnTrainingProblem : SwitchProblem;

    /// <summary>Re-reads the switch state for tests that simulate a missing switch.</summary>
    internal static void ResetForTests()
    {
        lock (Gate) { _initialized = false; SwitchProblem = null; }
        lock (VerifyGate) { _oneDnnTrainingRight = null; _oneDnnTrainingProblem = null; }
        Initialize();
        if (SimulateMissingSwitch)
        {
            OneDnnSwitchAvailable = false;
            SwitchProblem = "simulated for a test";
        }
    }

    /// <summary>Whether the .NET GC keeps the memory it frees (runtimeconfig <c>System.GC.RetainVM</c>, or
    /// <c>DOTNET_GCRetainVM=1</c>); without it, memory freed between training steps is decommitted and faulted in again.</summary>
    public static bool GcRetainsMemory =>
        AppContext.GetData("System.GC.RetainVM") is true or "true" or "True"
        || Environment.GetEnvironmentVariable("DOTNET_GCRetainVM") is "1" or "true";

    /// <summary>One line per decision: the oneDNN switch, memory, threads.</summary>
    public static IReadOnlyList<string> Describe()
    {
        Initialize();
        return
        [
            OneDnnSwitchAvailable
                ? "oneDNN RNN path: off process-wide; on only around the training-mode forward of an LSTM layer (faster there, and verified against the reference on this CPU at first use); never without gradients"
                : $"oneDNN RNN path: UNKNOWN — {SwitchProblem}; Auto LSTM layers run on the loop kernel",
            $"memory: {MemoryReport}; .NET GC {(GcRetainsMemory ? "retains freed memory (GCRetainVM)" : "decommits freed memory (set <RetainVMGarbageCollection>true</RetainVMGarbageCollection> or DOTNET_GCRetainVM=1)")}",
            $"threads: {torch.get_num_threads()} (libtorch intra-op)",
        ];
    }

    /// <summary>Runs a fused LSTM forward on the chosen path. The native path holds the switch off (shared
    /// with other native calls); the oneDNN path, only with gradients on, holds it on exclusively.</summary>
    internal static T RunLstm<T>(FusedPath path, Func<T> forward)
    {
        Initialize();
        var oneDnn = _forced ?? (path == FusedPath.OneDnn && torch.is_grad_enabled() && OneDnnSwitchAvailable);
        if (!oneDnn)
        {
            FlagLock.EnterReadLock();
            try { return forward(); }
            finally { FlagLock.ExitReadLock(); }
        }
        FlagLock.EnterWriteLock();
        try
        {
            SetOneDnn(true);
            try { return forward(); }
            finally { SetOneDnn(false); }
        }
        finally { FlagLock.ExitWriteLock(); }
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
    /// for your own TorchSharp code beside SeqDsl that wants libtorch's default (on) for its calls.</summary>
    public static T WithOneDnnSwitch<T>(bool on, Func<T> action)
    {
        Initialize();
        if (!OneDnnSwitchAvailable) return action();
        FlagLock.EnterWriteLock();
        try
        {
            SetOneDnn(on);
            try { return action(); }
            finally { SetOneDnn(false); }
        }
        finally { FlagLock.ExitWriteLock(); }
    }

    /// <summary>Sets libtorch's global oneDNN switch (tests and <c>seqdsl check</c> compare both paths).</summary>
    internal static void SetOneDnn(bool on)
    {
        if (SimulateMissingSwitch) throw new EntryPointNotFoundException("simulated: _ZN2at7Context20setUserEnabledMkldnnEb");
        Native.SetUserEnabledMkldnn(Native.GlobalContext(), on);
    }

    private static void ApplyMemoryPolicy()
    {
        var env = Environment.GetEnvironmentVariable("SEQDSL_MALLOC");
        Memory = env?.Trim().ToLowerInvariant() switch
        {
            null or "" or "retain" => MemoryPolicy.Retain,
            "system" => MemoryPolicy.System,
            _ => throw new SeqDslException(ErrorKind.Spec, $"SEQDSL_MALLOC='{env}' is not a memory policy.")
            { Received = env, Expected = "retain (default) or system" },
        };
        if (Memory == MemoryPolicy.System)
        {
            MemoryReport = "system allocator settings (SEQDSL_MALLOC=system)";
            return;
        }
        if (!OperatingSystem.IsLinux())
        {
            MemoryReport = "allocator left as is (mallopt is glibc's; not Linux)";
            return;
        }
        try
        {
            // 0 from mallopt means the allocator refused (e.g. musl has no mallopt settings)
            var ok = Native.Mallopt(Native.M_MMAP_THRESHOLD, 32 << 20) == 1
                   & Native.Mallopt(Native.M_TRIM_THRESHOLD, 1 << 30) == 1
                   & Native.Mallopt(Native.M_TOP_PAD, 64 << 20) == 1;
            // and no mmap at all: blocks above the 32 MiB threshold (a (B, T, 4H) gate buffer of a large LSTM is 52 MB)
            // would otherwise be mapped and unmapped every step, each time faulting in every page again
            ok &= Native.Mallopt(Native.M_MMAP_MAX, 0) == 1;
            MemoryReport = ok
                ? "glibc malloc retains freed blocks (no mmap, trim threshold 1 GiB, top pad 64 MiB)"
                : "allocator left as is (mallopt refused the settings: not glibc?)";
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            MemoryReport = $"allocator left as is (no mallopt: {e.Message})";
        }
    }

    private static class Native
    {
        public const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3, M_MMAP_MAX = -4;

        [DllImport("libc", EntryPoint = "mallopt")]
        public static extern int Mallopt(int param, int value);

        // at::globalContext() and at::Context's oneDNN switch: exported C++ symbols of libtorch_cpu.so
        // (Itanium ABI names; a member function takes `this` as its first argument).
        [DllImport("torch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
        public static extern IntPtr GlobalContext();

        [DllImport("torch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
        public static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

        [DllImport("torch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
        public static extern byte UserEnabledMkldnn(IntPtr context);
    }
}
