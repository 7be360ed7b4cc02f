using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// Runs the SIMD kernel's blocks of rows and the one-pass loops' chunks (<see cref="Chunked"/>) on the calling thread
/// and a few threads of its own that stay awake a short while after each job, instead of the .NET thread pool.
/// A training step hands out such jobs every millisecond or so; a thread-pool worker that went to sleep in between
/// often woke only after the calling thread had finished its own block and taken the other one too (E7 SimpleRnn at
/// two threads: the calling thread ran two thirds of the kernel's products; AMD EPYC, AVX2, docs/BENCHMARKS.md).
/// A team thread spins for up to <see cref="SpinMicroseconds"/> after a job (yielding the core to any other runnable
/// thread while it does), then sleeps until the next (E7 SimpleRnn's and E4's two-thread steps measured the same with
/// 0, 500 and 2,000 µs: the team itself, not the spin, is what was gained). Which thread runs which index does not
/// change any result: every index writes its own part.
/// </summary>
internal static class Team
{
    /// <summary>How long an idle team thread waits awake for the next job before it sleeps: 500 µs, or
    /// SEQDSL_TEAM_SPIN_US (0: sleep at once).</summary>
    public static int SpinMicroseconds { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("SEQDSL_TEAM_SPIN_US"), out var us) && us >= 0 ? us : 500;

    private static readonly object SleepLock = new();
    private static readonly List<Thread> Threads = [];
    private static readonly long SpinTicks = Stopwatch.Frequency * SpinMicroseconds / 1_000_000;

    /// <summary>One job: body over [0, Count); Next hands out indices, Done counts the finished ones. A thread that
    /// arrives late at a finished job finds no index left (a new job is a new object).</summary>
    private sealed class Job(Action<int> body, int count, ExecutionContext? context)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        /// <summary>The caller's execution context, which a team thread runs the body in (as the thread pool would: its
        /// AsyncLocals, e.g. a test's <see cref="SimdMath.Width"/>); null only when the caller suppressed its flow.</summary>
        public readonly ExecutionContext? Context = context;
        public int Next, Done;
        public Exception? Error;

        /// <summary>Takes indices until none is left.</summary>
        public void Work()
        {
            int i;
            while ((i = Interlocked.Increment(ref Next) - 1) < Count)
            {
                try { Body(i); }
                catch (Exception e) { Interlocked.CompareExchange(ref Error, e, null); }
                Interlocked.Increment(ref Done);
            }
        }
    }

    private static Job? _job;
    private static long _generation;
    private static int _sleeping, _busy;

    /// <summary>Runs body(i) for every i in [0, <paramref name="count"/>) — on the calling thread and up to count − 1
    /// team threads — and returns when all have returned; the first exception is rethrown then (on every path). A call
    /// made while another is running (from another thread, or from inside a body) goes to the .NET thread pool
    /// instead.</summary>
    public static void Run(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (count == 1)
        {
            body(0);
            return;
        }
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)                       // not a re-entrant lock
        {
            // the thread pool may start a worker from this thread, and a new thread takes its creator's flush mode
            using var unflushed = Denormals.Unflushed();
            try { Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = count }, body); }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0) { ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); }
            return;
        }
        try
        {
            while (Threads.Count < count - 1) Start();
            var job = new Job(body, count, ExecutionContext.Capture());
            Volatile.Write(ref _job, job);
            Interlocked.Increment(ref _generation);                                 // publishes the job (a full fence)
            if (Volatile.Read(ref _sleeping) > 0)
                lock (SleepLock)
                    for (var k = 1; k < count; k++) Monitor.Pulse(SleepLock);           // the threads the job can use
            job.Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Done) < count) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _job, null);                                         // its closure not kept alive
            if (job.Error is { } e) ExceptionDispatchInfo.Capture(e).Throw();
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private static void Start()
    {
        var t = new Thread(Loop) { IsBackground = true, Name = $"SeqDsl SIMD team {Threads.Count + 1}" };
        Threads.Add(t);
        t.UnsafeStart(Volatile.Read(ref _generation));                          // no context of its creator's
    }

    private static void Loop(object? start)
    {
        Denormals.KeepOnThisThread();                                              // started inside a training step, perhaps
        var seen = (long)start!;
        while (true)
        {
            // awake for a while (the next job usually comes within a millisecond), giving way to any other thread
            // that wants this core
            var since = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _generation) == seen && Stopwatch.GetTimestamp() - since < SpinTicks)
                if (!Thread.Yield()) Thread.SpinWait(20);
            if (Volatile.Read(ref _generation) == seen)
            {
                Interlocked.Increment(ref _sleeping);                               // a full fence before the check
                lock (SleepLock)
                    while (Volatile.Read(ref _generation) == seen)
                        Monitor.Wait(SleepLock);
                Interlocked.Decrement(ref _sleeping);
            }
            seen = Volatile.Read(ref _generation);
            if (Volatile.Read(ref _job) is not { } job) continue;
            if (job.Context is null) job.Work();
            else ExecutionContext.Run(job.Context, static j => ((Job)j!).Work(), job);
        }
    }
}
