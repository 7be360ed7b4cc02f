using SeqDsl.Data;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>Inputs, targets and (for post-padded batches) true lengths, one row per sequence, as tensors.</summary>
/// <param name="Inputs">(N, T) Int64 token ids or (N, T, F) floats.</param>
/// <param name="Targets">(N), (N, 1) or (N, T) targets.</param>
/// <param name="Lengths">(N) Int64 true lengths on the CPU, or null when every sequence fills T.</param>
public sealed record SequenceData(Tensor Inputs, Tensor Targets, Tensor? Lengths = null)
{
    /// <summary>Number of sequences.</summary>
    public long Count => Inputs.shape[0];

    /// <summary>Rows [start, start + count).</summary>
    public SequenceData Slice(long start, long count) =>
        new(Inputs.narrow(0, start, count), Targets.narrow(0, start, count), Lengths?.narrow(0, start, count));

    /// <summary>Tensors of prepared arrays (CPU): Int64 ids or float32 features, Int64 classes or float32 values.</summary>
    public static SequenceData From(ArrayData d) =>
        new(Tensor(d.Inputs, d.InputShape), Tensor(d.Targets, d.TargetShape), d.Lengths is long[] l ? tensor(l) : null);

    /// <summary>Inputs and targets only: <c>var (x, y) = SequenceData.From(…)</c>.</summary>
    public void Deconstruct(out Tensor inputs, out Tensor targets)
    {
        inputs = Inputs;
        targets = Targets;
    }

    internal static Tensor Tensor(Array values, long[] shape) => values switch
    {
        long[] l => tensor(l, shape),
        float[] f => tensor(f, shape),
        _ => throw new ArgumentException($"Unsupported element type {values.GetType().GetElementType()}.", nameof(values)),
    };
}

/// <summary>Tensors of padded ids (<see cref="SequenceData.From"/> makes them of whole prepared rows).</summary>
public static class ArrayTensors
{
    /// <summary>(N, T) Int64 ids, and the true lengths (N) when the rows are post-padded per batch.</summary>
    public static (Tensor ids, Tensor? lengths) ToTensors(this PaddedIds p) =>
        (tensor(p.Ids, [p.Rows, p.Columns]), p.Lengths is long[] l ? tensor(l) : null);
}
