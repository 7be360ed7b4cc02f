using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Token ids padded to one length, row-major (N, T), and the true lengths of post-padded rows.</summary>
/// <param name="Ids">N × T ids.</param>
/// <param name="Rows">N.</param>
/// <param name="Columns">T.</param>
/// <param name="Lengths">True lengths (N) when rows are post-padded per batch; null when every row counts as T long.</param>
public sealed record PaddedIds(long[] Ids, int Rows, int Columns, long[]? Lengths = null)
{
    /// <summary>Row <paramref name="i"/>'s ids (a copy).</summary>
    public long[] Row(int i) => Ids.AsSpan(i * Columns, Columns).ToArray();
}

/// <summary>
/// Prepared rows as flat arrays with their shapes, what preparation gives without libtorch: inputs (N, T) token ids
/// (<c>long[]</c>) or (N, T, F) features (<c>float[]</c>), targets (<c>long[]</c> class indices or <c>float[]</c> values) and,
/// for post-padded rows, true lengths. An engine turns them into its own tensors (SeqDsl's torch engine:
/// <c>SequenceData.From</c>).
/// </summary>
public sealed record ArrayData
{
    /// <summary>Row-major inputs: <c>long[]</c> ids or <c>float[]</c> features.</summary>
    public Array Inputs { get; }
    /// <summary>Shape of <see cref="Inputs"/>: (N, T) or (N, T, F).</summary>
    public long[] InputShape { get; }
    /// <summary>Row-major targets: <c>long[]</c> class indices or <c>float[]</c> values.</summary>
    public Array Targets { get; }
    /// <summary>Shape of <see cref="Targets"/>: (N), (N, 1), (N, T).</summary>
    public long[] TargetShape { get; }
    /// <summary>True lengths (N) of post-padded rows, or null.</summary>
    public long[]? Lengths { get; }

    /// <summary>Checks that the arrays hold what the shapes say and that every shape has the same number of rows.</summary>
    public ArrayData(Array inputs, long[] inputShape, Array targets, long[] targetShape, long[]? lengths = null)
    {
        if (inputs is not (long[] or float[])) throw new ArgumentException("Inputs are long[] ids or float[] features.", nameof(inputs));
        if (targets is not (long[] or float[])) throw new ArgumentException("Targets are long[] classes or float[] values.", nameof(targets));
        if (inputShape.Length is < 2 or > 3 || Product(inputShape) != inputs.Length)
            throw new ArgumentException($"{inputs.Length} inputs do not fill the shape [{string.Join(", ", inputShape)}].", nameof(inputShape));
        if (targetShape.Length < 1 || Product(targetShape) != targets.Length)
            throw new ArgumentException($"{targets.Length} targets do not fill the shape [{string.Join(", ", targetShape)}].", nameof(targetShape));
        if (targetShape[0] != inputShape[0] || (lengths is not null && lengths.Length != inputShape[0]))
            throw new SeqDslException(ErrorKind.Data, $"{inputShape[0]} input rows but {targetShape[0]} target rows"
                + (lengths is null ? "." : $" and {lengths.Length} lengths."));
        (Inputs, InputShape, Targets, TargetShape, Lengths) = (inputs, inputShape, targets, targetShape, lengths);
    }

    /// <summary>Number of rows.</summary>
    public long Count => InputShape[0];

    /// <summary>Padded ids with targets.</summary>
    public static ArrayData FromIds(PaddedIds ids, Array targets, long[] targetShape) =>
        new(ids.Ids, [ids.Rows, ids.Columns], targets, targetShape, ids.Lengths);

    private static long Product(long[] shape) => shape.Aggregate(1L, (a, b) => a * b);
}
