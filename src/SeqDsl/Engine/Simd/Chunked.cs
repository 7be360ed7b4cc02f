using TorchSharp;

namespace SeqDsl.Engine.Simd;

/// <summary>A pass over many floats split across the threads libtorch may use (<c>torch.get_num_threads()</c>):
/// the fused optimizer updates and the embedding's lookup and gradient.</summary>
internal static class Chunked
{
    /// <summary>The smallest chunk a thread takes (floats): below twice this the pass runs on one thread.</summary>
    public const long MinChunk = 1 << 16;

    /// <summary>Runs <paramref name="body"/> over [0, <paramref name="units"/>) in chunks of whole units, one chunk per
    /// thread libtorch may use, each at least <see cref="MinChunk"/> floats (<paramref name="unitSize"/> floats a unit);
    /// one chunk, on the calling thread, when the work is small. Every chunk is non-empty.</summary>
    public static void Run(long units, long unitSize, Action<long, long> body)
    {
        if (units <= 0) return;
        var floats = units * unitSize;
        var threads = (int)Math.Max(1, Math.Min(torch.get_num_threads(), floats / MinChunk));
        if (threads == 1)
        {
            using (Denormals.Flush()) body(0, units);
            return;
        }
        var per = (units + threads - 1) / threads;
        if (unitSize == 1) per = (per + 7) & ~7L; // whole vectors per chunk
        var chunks = (int)((units + per - 1) / per);
        Team.Run(chunks, i =>
        {
            using (Denormals.Flush()) body(i * per, Math.Min(units, (i + 1) * per));
        });
    }
}
