using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Minibatches for character (or word) language models: input X and targets Y = X shifted by one.</summary>
public static class LanguageModelData
{
    /// <summary>
    /// d2l's random sampling (seed 004, data_iter_random): the corpus is cut into
    /// (len − 1) / T non-overlapping windows starting at multiples of T; an epoch shuffles them
    /// and yields (len − 1) / T / B minibatches of B windows. Neighbouring minibatches are not
    /// adjacent in the text, so the state is re-initialised for each.
    /// </summary>
    public static IEnumerable<(long[,] x, long[,] y)> Random(IReadOnlyList<int> corpus, int batchSize, int steps, Random rng)
    {
        Check(corpus, batchSize, steps);
        var examples = (corpus.Count - 1) / steps;
        var epochSize = examples / batchSize;
        var order = Enumerable.Range(0, examples).ToArray();
        rng.Shuffle(order);
        for (var i = 0; i < epochSize; i++)
        {
            var x = new long[batchSize, steps];
            var y = new long[batchSize, steps];
            for (var b = 0; b < batchSize; b++)
            {
                var start = order[i * batchSize + b] * steps;
                for (var t = 0; t < steps; t++)
                {
                    x[b, t] = corpus[start + t];
                    y[b, t] = corpus[start + t + 1];
                }
            }
            yield return (x, y);
        }
    }

    /// <summary>
    /// d2l's consecutive sampling (data_iter_consecutive): the corpus is reshaped to B rows of
    /// len / B; minibatch i takes columns [iT, iT + T), so row b of minibatch i + 1 continues row b
    /// of minibatch i and the state can be carried over (detached). (len / B − 1) / T minibatches.
    /// </summary>
    public static IEnumerable<(long[,] x, long[,] y)> Consecutive(IReadOnlyList<int> corpus, int batchSize, int steps)
    {
        Check(corpus, batchSize, steps);
        var batchLen = corpus.Count / batchSize;
        var epochSize = (batchLen - 1) / steps;
        for (var i = 0; i < epochSize; i++)
        {
            var x = new long[batchSize, steps];
            var y = new long[batchSize, steps];
            for (var b = 0; b < batchSize; b++)
                for (var t = 0; t < steps; t++)
                {
                    x[b, t] = corpus[b * batchLen + i * steps + t];
                    y[b, t] = corpus[b * batchLen + i * steps + t + 1];
                }
            yield return (x, y);
        }
    }

    /// <summary>
    /// Seed 002's sampling of stride-1 chunks without materialising them: each minibatch takes B
    /// windows of T + 1 tokens at uniformly random offsets (with replacement); an epoch has
    /// (len − 1) / T / B minibatches, as random sampling.
    /// </summary>
    public static IEnumerable<(long[,] x, long[,] y)> RandomChunks(IReadOnlyList<int> corpus, int batchSize, int steps, Random rng)
    {
        Check(corpus, batchSize, steps);
        var epochSize = (corpus.Count - 1) / steps / batchSize;
        for (var i = 0; i < epochSize; i++)
        {
            var x = new long[batchSize, steps];
            var y = new long[batchSize, steps];
            for (var b = 0; b < batchSize; b++)
            {
                var start = rng.Next(corpus.Count - steps);
                for (var t = 0; t < steps; t++)
                {
                    x[b, t] = corpus[start + t];
                    y[b, t] = corpus[start + t + 1];
                }
            }
            yield return (x, y);
        }
    }

    /// <summary>Seed 002's stride-1 chunks: every window of <paramref name="chunk"/> tokens (41 in the
    /// book), input = chunk[:-1], target = chunk[1:]. Inputs and targets (N, chunk − 1) Int64.</summary>
    public static ArrayData Chunks(IReadOnlyList<int> corpus, int chunk)
    {
        if (chunk < 2 || corpus.Count < chunk)
            throw new SeqDslException(ErrorKind.Data, $"Chunks of {chunk} tokens need a corpus of at least {chunk} tokens.")
            { Received = $"{corpus.Count} tokens, chunk {chunk}", Expected = "chunk ≥ 2 and corpus ≥ chunk" };
        var n = corpus.Count - chunk + 1;
        var t = chunk - 1;
        var x = new long[(long)n * t];
        var y = new long[(long)n * t];
        for (var i = 0; i < n; i++)
            for (var k = 0; k < t; k++)
            {
                x[(long)i * t + k] = corpus[i + k];
                y[(long)i * t + k] = corpus[i + k + 1];
            }
        return new ArrayData(x, [n, t], y, [n, t]);
    }

    /// <summary>Every token of the corpus predicted once: non-overlapping windows of <paramref name="steps"/> tokens (fewer
    /// when the corpus is shorter), input = window, target = the window shifted by one. Ids and targets (N, steps).
    /// (Stride-1 chunks of a large corpus would not fit in memory.)</summary>
    public static ArrayData Windows(IReadOnlyList<int> corpus, int steps)
    {
        if (corpus.Count < 2 || steps < 1)
            throw new SeqDslException(ErrorKind.Data, "A corpus needs at least two tokens to be measured.")
            { Received = $"{corpus.Count} tokens, steps {steps}", Expected = "two tokens or more, steps ≥ 1" };
        steps = Math.Min(steps, corpus.Count - 1);
        var n = (corpus.Count - 1) / steps;
        var xs = new long[n * (long)steps];
        var ys = new long[n * (long)steps];
        for (var i = 0; i < n * steps; i++)
        {
            xs[i] = corpus[i];
            ys[i] = corpus[i + 1];
        }
        return new ArrayData(xs, [n, steps], ys, [n, steps]);
    }

    private static void Check(IReadOnlyList<int> corpus, int batchSize, int steps)
    {
        if (batchSize < 1 || steps < 1 || corpus.Count < batchSize * steps + 1)
            throw new SeqDslException(ErrorKind.Data, "The corpus is too short for one minibatch.")
            { Received = $"{corpus.Count} tokens", Expected = $"at least batch × steps + 1 = {batchSize * steps + 1}" };
    }
}
