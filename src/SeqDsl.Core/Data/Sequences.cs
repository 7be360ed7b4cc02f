using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Where padding (or truncation) happens.</summary>
public enum Side
{
    /// <summary>At the front (Keras pad_sequences default).</summary>
    Pre,
    /// <summary>At the end (seed 002, packed sequences).</summary>
    Post,
}

/// <summary>Token-id sequences to tensors: fixed-length padding, per-batch padding with lengths, bucketing.</summary>
public static class Sequences
{
    /// <summary>Keras pad_sequences: every sequence to <paramref name="maxlen"/>, padding and truncating
    /// at the given sides (Keras defaults: both Pre). Returns (N, maxlen) ids.</summary>
    public static PaddedIds Pad(IReadOnlyList<int[]> seqs, int maxlen, Side padding = Side.Pre, Side truncating = Side.Pre, long value = 0)
    {
        if (maxlen < 1) throw new SeqDslException(ErrorKind.Data, "maxlen must be positive.") { Received = maxlen.ToString(), Expected = "maxlen ≥ 1" };
        var result = new long[(long)seqs.Count * maxlen];
        if (value != 0) Array.Fill(result, value);
        Parallel.For(0, seqs.Count, i =>
        {
            var s = seqs[i];
            var n = Math.Min(s.Length, maxlen);
            var from = truncating == Side.Pre ? s.Length - n : 0;          // keep the last maxlen tokens (pre) or the first
            var to = (long)i * maxlen + (padding == Side.Pre ? maxlen - n : 0);
            for (var k = 0; k < n; k++) result[to + k] = s[from + k];
        });
        return new PaddedIds(result, seqs.Count, maxlen);
    }

    /// <summary>Post-pads to the longest sequence (optionally capped at <paramref name="maxlen"/>) with the true
    /// lengths, as packed sequences need. Empty sequences get length 1 (one padding token).</summary>
    public static PaddedIds PadWithLengths(IReadOnlyList<int[]> seqs, int? maxlen = null, long value = 0)
    {
        var lengths = seqs.Select(s => (long)Math.Max(1, Math.Min(s.Length, maxlen ?? int.MaxValue))).ToArray();
        var T = (int)lengths.DefaultIfEmpty(1).Max();
        return Pad(seqs, T, Side.Post, Side.Post, value) with { Lengths = lengths };
    }

    /// <summary>Batches of row indices whose sequences have similar lengths (less padding per batch):
    /// rows are shuffled (seeded), cut into pools of 50 batches, sorted by length within a pool, then
    /// batched; the batch order is shuffled again.</summary>
    public static IReadOnlyList<int[]> Buckets(IReadOnlyList<int> lengths, int batchSize, int seed)
    {
        var rng = new Random(seed);
        var order = Enumerable.Range(0, lengths.Count).OrderBy(_ => rng.Next()).ToArray();
        var batches = new List<int[]>();
        foreach (var pool in order.Chunk(batchSize * 50))
            foreach (var b in pool.OrderBy(i => lengths[i]).Chunk(batchSize))
                batches.Add(b);
        return batches.OrderBy(_ => rng.Next()).ToList();
    }
}
