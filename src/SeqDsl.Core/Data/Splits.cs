using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Seeded train / validation / test splits of row indices, optionally stratified by label.</summary>
public static class Splits
{
    /// <summary>
    /// The one rule for holding out the LAST fraction of rows (Keras's validation_split; the test part of a source
    /// without its own): ⌊rows · fraction⌋ rows, or the nearest integer with <paramref name="round"/>.
    /// </summary>
    public static long HeldOut(long rows, double fraction, bool round = false) =>
        fraction <= 0 ? 0 : (long)(round ? Math.Round(rows * fraction) : Math.Floor(rows * fraction));

    /// <summary>
    /// <c>(kept, heldOut)</c> by <see cref="HeldOut"/>, where a held-out part is required: a fraction outside (0, 1), or
    /// one that leaves no row on one side, is a data error naming <paramref name="what"/> (e.g. "test split").
    /// </summary>
    public static (int kept, int heldOut) Last(long rows, double fraction, string what, string expected, bool round = false)
    {
        var held = HeldOut(rows, fraction, round);
        if (!(fraction > 0 && fraction < 1) || held < 1 || held >= rows)
            throw new SeqDslException(ErrorKind.Data, $"A {what} of {fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)} leaves no rows on one side.")
            { Received = $"{rows} rows", Expected = expected };
        return ((int)(rows - held), (int)held);
    }

    /// <summary>Shuffles rows (seeded) and cuts them by fractions; with <paramref name="labels"/>, each
    /// label is split separately so every part keeps the label proportions.</summary>
    public static (int[] train, int[] validation, int[] test) Split(int rows, double validation, double test, int seed, IReadOnlyList<int>? labels = null)
    {
        if (validation < 0 || test < 0 || validation + test >= 1)
            throw new SeqDslException(ErrorKind.Spec, "Validation and test fractions must be ≥ 0 and leave rows for training.")
            { Received = $"validation {validation}, test {test}", Expected = "validation + test < 1" };
        var rng = new Random(seed);
        var groups = labels is null
            ? [Enumerable.Range(0, rows).ToArray()]
            : Enumerable.Range(0, rows).GroupBy(i => labels[i]).OrderBy(g => g.Key).Select(g => g.ToArray()).ToList();
        var (tr, va, te) = (new List<int>(), new List<int>(), new List<int>());
        foreach (var g in groups)
        {
            rng.Shuffle(g);
            var nTest = (int)Math.Round(g.Length * test);
            var nVal = (int)Math.Round(g.Length * validation);
            te.AddRange(g.Take(nTest));
            va.AddRange(g.Skip(nTest).Take(nVal));
            tr.AddRange(g.Skip(nTest + nVal));
        }
        int[] Mixed(List<int> l) { var a = l.ToArray(); rng.Shuffle(a); return a; }
        return (Mixed(tr), Mixed(va), Mixed(te));
    }
}
