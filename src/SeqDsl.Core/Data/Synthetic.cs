using Microsoft.Data.Analysis;

namespace SeqDsl.Data;

/// <summary>Datasets the project generates itself (seeded), so every workflow runs with no download.</summary>
public static class Synthetic
{
    /// <summary>
    /// Seed 000's counting task, drawn as the book's code draws it (<c>generate_dataset</c> of
    /// <c>lstm_gru_count_1s.py</c>): <paramref name="count"/> binary sequences of <paramref name="length"/> steps (one
    /// feature per step), each labelled with its number of ones. Per sequence a share of zeros a = k / length with k
    /// uniform in 0 … length − 1, then each step is 1 with probability 1 − a, so counts spread over 1 … length (the book's
    /// 100 % "within 5–6 epochs" is on this distribution; Bernoulli(½) steps put most counts near length / 2 and were
    /// learnt more slowly, docs/RESULTS.md). Inputs (N, T, 1) float32, targets (N, 1) float32.
    /// </summary>
    public static ArrayData CountingOnes(int count, int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count * length];
        var y = new float[count];
        for (var i = 0; i < count; i++)
        {
            var zeros = (double)rng.Next(length) / length;
            for (var t = 0; t < length; t++)
            {
                var bit = rng.NextDouble() >= zeros ? 1 : 0;
                x[i * length + t] = bit;
                y[i] += bit;
            }
        }
        return new ArrayData(x, [count, length, 1], y, [count, 1]);
    }

    /// <summary>One given binary sequence (seed 000's E1 uses 0000101010 → 3), as a batch of one.</summary>
    public static ArrayData OneSequence(string bits)
    {
        if (bits.Length == 0 || bits.Any(c => c is not ('0' or '1')))
            throw new Spec.SeqDslException(Spec.ErrorKind.Data, $"'{bits}' is not a binary sequence.") { Expected = "digits 0 and 1" };
        var x = bits.Select(c => c == '1' ? 1f : 0f).ToArray();
        return new ArrayData(x, [1, bits.Length, 1], new[] { x.Sum() }, [1, 1]);
    }

    private static readonly string[] Fillers =
        ["the", "movie", "was", "and", "plot", "actors", "film", "story", "really", "quite", "i", "think", "it", "is",
         "with", "a", "scene", "of", "music", "director", "some", "long", "camera", "ending", "cast", "that", "very"];
    private static readonly string[] Positive = ["good", "great", "fine", "wonderful"];
    private static readonly string[] Negative = ["bad", "awful", "boring", "poor"];

    /// <summary>
    /// A negation-sentiment grammar that needs long-range memory: each text opens with "not" or
    /// "indeed" and a sentiment word ("not good", "indeed awful"), followed by
    /// <paramref name="minLength"/>–<paramref name="maxLength"/> neutral filler words. The label is
    /// positive XOR negated, decided by the first two words, so a model must carry one bit across
    /// the whole text to its end. Columns <c>text</c> and <c>label</c> (1 positive).
    /// </summary>
    public static DataFrame Negation(int count, int seed, int minLength = 15, int maxLength = 25)
    {
        var rng = new Random(seed);
        var texts = new string[count];
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            var negated = rng.Next(2) == 1;
            var positive = rng.Next(2) == 1;
            var words = new List<string>
            {
                negated ? "not" : "indeed",
                positive ? Positive[rng.Next(Positive.Length)] : Negative[rng.Next(Negative.Length)],
            };
            var n = rng.Next(minLength, maxLength + 1);
            for (var k = 0; k < n; k++) words.Add(Fillers[rng.Next(Fillers.Length)]);
            texts[i] = string.Join(' ', words);
            labels[i] = positive ^ negated ? 1 : 0;
        }
        return new DataFrame(new StringDataFrameColumn("text", texts), new Int32DataFrameColumn("label", labels));
    }

    /// <summary>
    /// A noisy seasonal daily series from 2020-01-01: 10 + 3 sin(2πt/7) + 2 sin(2πt/30) + 0.002 t + N(0, 0.3²)
    /// (a gentle trend, so the test period — the last rows — stays within the range a model saw).
    /// Columns <c>Date</c> and <c>value</c>.
    /// </summary>
    public static DataFrame Seasonal(int days, int seed)
    {
        var rng = new Random(seed);
        double Noise() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var start = new DateTime(2020, 1, 1);
        return new DataFrame(
            new PrimitiveDataFrameColumn<DateTime>("Date", Enumerable.Range(0, days).Select(t => start.AddDays(t))),
            new DoubleDataFrameColumn("value", Enumerable.Range(0, days).Select(t =>
                10 + 3 * Math.Sin(2 * Math.PI * t / 7) + 2 * Math.Sin(2 * Math.PI * t / 30) + 0.002 * t + 0.3 * Noise())));
    }
}
