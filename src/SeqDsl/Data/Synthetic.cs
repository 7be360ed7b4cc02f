using SeqDsl.Training;
using static TorchSharp.torch;

namespace SeqDsl.Data;

/// <summary>Datasets the project generates itself (seeded), so every workflow runs with no download.</summary>
public static class Synthetic
{
    /// <summary>
    /// Seed 000's counting task: <paramref name="count"/> random binary sequences of
    /// <paramref name="length"/> steps (one feature per step), each labelled with its number of ones.
    /// Inputs (N, T, 1) float32, targets (N, 1) float32.
    /// </summary>
    public static SequenceData CountingOnes(int count, int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[count * length];
        var y = new float[count];
        for (var i = 0; i < count; i++)
            for (var t = 0; t < length; t++)
            {
                var bit = rng.Next(2);
                x[i * length + t] = bit;
                y[i] += bit;
            }
        return new SequenceData(tensor(x, [count, length, 1]), tensor(y, [count, 1]));
    }

    /// <summary>One given binary sequence (seed 000's E1 uses 0000101010 → 3), as a batch of one.</summary>
    public static SequenceData OneSequence(string bits)
    {
        if (bits.Length == 0 || bits.Any(c => c is not ('0' or '1')))
            throw new Spec.SeqDslException(Spec.ErrorKind.Data, $"'{bits}' is not a binary sequence.") { Expected = "digits 0 and 1" };
        var x = bits.Select(c => c == '1' ? 1f : 0f).ToArray();
        return new SequenceData(tensor(x, [1, bits.Length, 1]), tensor(new[] { x.Sum() }, [1, 1]));
    }
}
