using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>
/// Where <see cref="Trainer.Fit(Network, IBatchSource, FitOptions, SequenceData?)"/> gets its minibatches: the batches of
/// each epoch, whether consecutive batches continue the same rows (truncated backpropagation through time), and the
/// random state that a resumed run must continue from. A source belongs to one <c>Fit</c>: its random state moves on
/// with every epoch drawn.
/// </summary>
public interface IBatchSource
{
    /// <summary>The batches of an epoch (1-based), in order. Each is made on the device when the loop asks for it,
    /// inside that step's dispose scope, so an epoch never holds more than one batch of tensors.</summary>
    IReadOnlyList<Func<Device, SequenceData>> Epoch(int epoch);

    /// <summary>True when row b of a batch continues row b of the previous batch: the loop then starts each batch
    /// from the previous batch's final recurrent states, cut from the graph, and starts every epoch from zeros.</summary>
    bool CarriesState { get; }

    /// <summary>The largest batch it cuts: rows and time steps (for the memory estimate before training).</summary>
    (int Rows, long Steps) BatchShape { get; }

    /// <summary>The random state after the epochs drawn so far (saved with resumable training state).</summary>
    byte[] SaveState();

    /// <summary>Continues from a saved state, as if <paramref name="epochsDone"/> epochs had been drawn; a state another
    /// kind of source or other settings wrote is an error.</summary>
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
    public (int Rows, long Steps) BatchShape =>
        ((int)Math.Min(_batchSize, _rows.Count), _rows.Inputs.dim() >= 2 ? _rows.Inputs.shape[1] : 1);

    /// <inheritdoc />
    public IReadOnlyList<Func<Device, SequenceData>> Epoch(int epoch)
    {
        var n = _rows.Count;
        if (_lengths is not null)
            return Sequences.Buckets(_lengths, _batchSize, unchecked((int)_seed * 7919 + epoch))
                .Select(b => Batch(b.Select(i => (long)i).ToArray())).ToList();
        long[] order;
        using (var perm = _shuffle ? randperm(n, generator: _generator) : Kept.Arange(n)) order = perm.data<long>().ToArray();
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
        using var current = _generator.get_state();
        if (state.Length != current.shape[0])
            throw new SeqDslException(ErrorKind.Data, "The saved sampler state is not a row-batch generator's (was it written by a language-model run?).")
            { Received = $"{state.Length} bytes", Expected = $"{current.shape[0]} bytes" };
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
    private readonly Func<Tensor, Tensor> _tokenInput;
    private Random _rng;

    /// <summary>Windows of <paramref name="steps"/> tokens, <paramref name="batchSize"/> rows per minibatch; the ids go
    /// through <paramref name="tokenInput"/> (the network's <see cref="Network.TokenInput"/>: one-hot vectors for a
    /// model without Embed).</summary>
    public CorpusBatches(IReadOnlyList<int> corpus, int batchSize, int steps, Sampling sampling, int seed, Func<Tensor, Tensor> tokenInput)
    {
        (_corpus, _batchSize, _steps, _sampling, _seed, _tokenInput) = (corpus, batchSize, steps, sampling, seed, tokenInput);
        _rng = new Random(seed);
    }

    /// <inheritdoc />
    public bool CarriesState => _sampling == Sampling.Consecutive;

    /// <inheritdoc />
    public (int Rows, long Steps) BatchShape => (_batchSize, _steps);

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
        return new SequenceData(_tokenInput(tensor(b.x).to(device)), tensor(b.y).to(device));
    };

    /// <summary>The settings that decide the draws (System.Random's state is not serializable: <see cref="RestoreState"/>
    /// replays the draws from the seed, after checking that the settings are the same).</summary>
    public byte[] SaveState() => System.Text.Encoding.UTF8.GetBytes(Describe());

    private string Describe() => $"corpus {_corpus.Count} tokens, batch {_batchSize}, steps {_steps}, {_sampling} sampling, seed {_seed}";

    /// <inheritdoc />
    public void RestoreState(byte[] state, int epochsDone)
    {
        var saved = System.Text.Encoding.UTF8.GetString(state);
        if (saved != Describe())
            throw new SeqDslException(ErrorKind.Data, "The saved state was written by a run with other corpus or sampler settings.")
            { Received = saved.Length == 0 ? "no sampler settings" : saved, Expected = Describe() };
        _rng = new Random(_seed);
        if (_sampling == Sampling.Consecutive) return;
        for (var e = 0; e < epochsDone; e++) Draw();
    }
}
