using System.Runtime.InteropServices;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// Subnormal floats flushed to zero (MXCSR's flush-to-zero and denormals-are-zero bits) during a training step on the
/// training thread (<see cref="Training.TrainingSession"/>) and in SeqDsl's own loops on every thread they run on (the
/// SIMD kernel's blocks, the fused optimizer updates, the embedding's passes): set for the length of a step, block or
/// chunk and put back after, so that the caller's thread keeps its own mode outside them. SeqDsl's own loops flush
/// in inference too; libtorch's operations outside a training step do not. Threads created inside a step would keep
/// the flush for good (a new thread takes its creator's mode): the SIMD team's threads clear it as they start, the
/// thread-pool fallback and libtorch's OpenMP workers are started outside any scope (<see cref="Unflushed"/>,
/// <see cref="Training.TrainingSession"/>'s constructor). TensorFlow's executors and thread pools flush the same way.
/// <para>Why: a recurrent layer's backward pass carries the gradient back through every step, and over a long sequence
/// (E7's 200 steps, a loss on the last output) it shrinks until it is subnormal. On Intel CPUs every instruction that
/// takes or makes a subnormal float goes through a microcode assist: one-thread backward passes on E7, kept and
/// flushed — SIMD kernel: LSTM 509.1 → 28.0 ms, GRU 388.3 → 23.1, SimpleRnn 82.4 → 10.6; libtorch's fused LSTM 510.6 →
/// 40.7 (Intel Xeon @ 2.00GHz, avx512f; `bench phases` both ways, docs/BENCHMARKS.md). A flushed value is below
/// 1.2e-38 in magnitude: a result moves by about that much per flushed term (E4's first epoch: the same loss and
/// accuracy to the last digit either way).</para>
/// <para>Where: x86-64 Linux with glibc (fegetmode/fesetmode in libm). Elsewhere nothing changes (<see cref="Available"/>
/// is false); SEQDSL_FLUSH_DENORMALS=0 turns it off.</para>
/// </summary>
internal static unsafe class Denormals
{
    /// <summary>glibc's femode_t on x86-64: the x87 control word and MXCSR.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Mode
    {
        public ushort Control;
        public ushort Reserved;
        public uint Mxcsr;
    }

    private const uint FlushToZero = 1u << 15, DenormalsAreZero = 1u << 6;

    // two short libm calls per kernel block and chunk: no GC transition (they neither block nor call back)
    [DllImport("libm.so.6", EntryPoint = "fegetmode"), SuppressGCTransition]
    private static extern int GetMode(Mode* mode);

    [DllImport("libm.so.6", EntryPoint = "fesetmode"), SuppressGCTransition]
    private static extern int SetMode(Mode* mode);

    /// <summary>True where the mode can be set here and SEQDSL_FLUSH_DENORMALS is not 0.</summary>
    public static bool Available { get; } = Probe();

    private static readonly AsyncLocal<bool?> Override = new();
    private static volatile bool _overridden;

    /// <summary>Whether SeqDsl's loops flush subnormals in this execution context: <see cref="Available"/> unless a test
    /// turned it off (to show what it changes).</summary>
    internal static bool Enabled
    {
        get => Available && (!_overridden || (Override.Value ?? true));
        set
        {
            _overridden = true;
            Override.Value = value;
        }
    }

    private static bool Probe()
    {
        if (Environment.GetEnvironmentVariable("SEQDSL_FLUSH_DENORMALS") == "0") return false;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
        // the denormals-are-zero bit came with later SSE2 CPUs (setting it where unsupported faults); every SSE3 CPU has it
        if (!System.Runtime.Intrinsics.X86.Sse3.IsSupported) return false;
        try
        {
            Mode m;
            return GetMode(&m) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Flushes subnormals on this thread (when <see cref="Enabled"/>) until the returned scope is disposed,
    /// which puts the thread's mode back; a scope inside another changes nothing.</summary>
    public static Scope Flush() => Enabled ? SetBits(flush: true) : default;

    /// <summary>Sets or clears the two flush bits on this thread; a scope that puts the mode back, or a default one
    /// where the bits were so already.</summary>
    private static Scope SetBits(bool flush)
    {
        Mode saved;
        GetMode(&saved);
        var changed = saved;
        changed.Mxcsr = flush ? saved.Mxcsr | FlushToZero | DenormalsAreZero : saved.Mxcsr & ~(FlushToZero | DenormalsAreZero);
        if (changed.Mxcsr == saved.Mxcsr) return default;
        SetMode(&changed);
        return new Scope(saved);
    }

    /// <summary>The thread's mode before <see cref="Flush"/>, put back on dispose (nothing for a default scope).</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly Mode _saved;
        private readonly bool _restore;

        internal Scope(Mode saved)
        {
            _saved = saved;
            _restore = true;
        }

        public void Dispose()
        {
            if (!_restore) return;
            var m = _saved;
            SetMode(&m);
        }
    }

    /// <summary>Keeps subnormals on this thread until the returned scope is disposed (the thread's mode then put back):
    /// around work that may create threads (a new thread takes its creator's mode, and keeps it), so that a thread made
    /// during a training step does not flush for good.</summary>
    public static Scope Unflushed() => Available ? SetBits(flush: false) : default;

    /// <summary>Clears the flush bits on this thread for good (a thread of SeqDsl's own, as it starts: it may have been
    /// created inside a training step's scope).</summary>
    public static void KeepOnThisThread() => _ = Unflushed();                    // the scope dropped: never put back

    /// <summary>Whether this thread flushes subnormals now (MXCSR's two bits; for tests).</summary>
    internal static bool FlushingNow()
    {
        if (!Available) return false;
        Mode m;
        GetMode(&m);
        return (m.Mxcsr & (FlushToZero | DenormalsAreZero)) == (FlushToZero | DenormalsAreZero);
    }
}
