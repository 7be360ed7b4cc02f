using SeqDsl.Data;
using SeqDsl.Engine;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>
/// Where <see cref="Trainer.Fit(Network, IBatchSource, FitOptions, SequenceData?)"/> gets its minibatches: the batches of
/// each epoch, whether consecutive batches continue the same rows (truncated backpropagation through time), and the
/// random state that a resumed run must continue from.
/// </summary>
public interface IBatchSource
{
    /// <summary>The batches of an epoch (1-based), in order. Each is made on the device when the loop asks for it,
    /// inside that step's dispose scope, so an epoch never holds more than one batch of tensors.</summary>
    IReadOnlyList<Func<Device, SequenceData>> Epoch(int epoch);

    /// <summary>True when row b of a batch continues row b of the previous batch: the loop then starts each batch
    /// from the previous batch's final recurrent states, cut from the graph, and starts every epoch from zeros.</summary>
    bool CarriesState { get; }

    /// <summary>The random state after the epochs drawn so far (saved with resumable training state).</summary>
    byte[] SaveState();

    /// <summary>Continues from a saved state, as if <paramref name="epochsDone"/> epochs had been drawn.</summary>
    void RestoreState(byte[] state, int epochsDone);
}

/// <summary>Rows of <see cref="SequenceData"/> cut into minibatches: a seeded permutation per epoch (or the rows in
/// order), or, with lengths and bucketing, seeded batches of rows of similar length.</summary>
public sealed class RowBatches : IBatchSource, IDisposable
{
    private readonly SequenceData _rows;
    private readonly int _batchSize;
    private readonly bool _shuffle;
    private readonly long _seed;
    private readonly int[]? _lengths;
    private readonly Generator _generator;

    /// <summary>Batches of <paramref name="batchSize"/> rows; the permutations come from a generator seeded with
    /// <paramref name="seed"/>; with <paramref name="bucketByLength"/> and lengths, see <see cref="Sequences.Buckets"/>.</summary>
    public RowBatches(SequenceData rows, int batchSize, bool shuffle, long seed, bool bucketByLength = false)
    {
        _rows = rows;
        _batchSize = batchSize;
        _shuffle = shuffle;
        _seed = seed;
        _lengths = bucketByLength && rows.Lengths is Tensor l ? l.data<long>().Select(v => (int)v).ToArray() : null;
        _generator = new Generator((ulong)seed);
    }

    /// <inheritdoc />
    public bool CarriesState => false;

    /// <inheritdoc />
    public IReadOnlyList<Func<Device, SequenceData>> Epoch(int epoch)
    {
        var n = _rows.Count;
        if (_lengths is not null)
            return Sequences.Buckets(_lengths, _batchSize, unchecked((int)_seed * 7919 + epoch))
                .Select(b => Batch(b.Select(i => (long)i).ToArray())).ToList();
        long[] order;
        using (var perm = _shuffle ? randperm(n, generator: _generator) : arange(n)) order = perm.data<long>().ToArray();
        var batches = new List<Func<Device, SequenceData>>();
        for (long start = 0; start < n; start += _batchSize)
            batches.Add(Batch(order[(int)start..(int)Math.Min(n, start + _batchSize)]));
        return batches;
    }

    private Func<Device, SequenceData> Batch(long[] rows) => device =>
    {
        using var idx = tensor(rows);
        return Trainer.Take(_rows, idx, device);
    };

    /// <inheritdoc />
    public byte[] SaveState()
    {
        using var g = _generator.get_state();
        return g.data<byte>().ToArray();
    }

    /// <inheritdoc />
    public void RestoreState(byte[] state, int epochsDone)
    {
        using var g = tensor(state, dtype: ScalarType.Byte);
        _generator.set_state(g);
    }

    /// <inheritdoc />
    public void Dispose() => _generator.Dispose();
}

/// <summary>Minibatches of a token corpus for a language model, with d2l's samplers (<see cref="Sampling"/>);
/// consecutive sampling carries the state across minibatches.</summary>
public sealed class CorpusBatches : IBatchSource
{
    private readonly IReadOnlyList<int> _corpus;
    private readonly int _batchSize, _steps;
    private readonly Sampling _sampling;
    private readonly int _seed;
    private readonly int? _oneHot;
    private Random _rng;

    /// <summary>Windows of <paramref name="steps"/> tokens, <paramref name="batchSize"/> rows per minibatch; with
    /// <paramref name="oneHot"/>, inputs are one-hot vectors of that width (models without Embed).</summary>
    public CorpusBatches(IReadOnlyList<int> corpus, int batchSize, int steps, Sampling sampling, int seed, int? oneHot)
    {
        (_corpus, _batchSize, _steps, _sampling, _seed, _oneHot) = (corpus, batchSize, steps, sampling, seed, oneHot);
        _rng = new Random(seed);
    }

    /// <inheritdoc />
    public bool CarriesState => _sampling == Sampling.Consecutive;

    /// <inheritdoc />
    public IReadOnlyList<Func<Device, SequenceData>> Epoch(int epoch) => Draw().Select(Batch).ToList();

    private List<(long[,] x, long[,] y)> Draw() => _sampling switch
    {
        Sampling.Random => LanguageModelData.Random(_corpus, _batchSize, _steps, _rng).ToList(),
        Sampling.Chunks => LanguageModelData.RandomChunks(_corpus, _batchSize, _steps, _rng).ToList(),
        _ => LanguageModelData.Consecutive(_corpus, _batchSize, _steps).ToList(),
    };

    private Func<Device, SequenceData> Batch((long[,] x, long[,] y) b) => device =>
    {
        var x = tensor(b.x).to(device);
        return new SequenceData(_oneHot is int v ? Tensors.OneHot(x, v) : x, tensor(b.y).to(device));
    };

    /// <summary>Nothing: System.Random's state is not serializable; <see cref="RestoreState"/> replays the draws.</summary>
    public byte[] SaveState() => [];

    /// <inheritdoc />
    public void RestoreState(byte[] state, int epochsDone)
    {
        _rng = new Random(_seed);
        if (_sampling == Sampling.Consecutive) return;
        for (var e = 0; e < epochsDone; e++) Draw();
    }
}
