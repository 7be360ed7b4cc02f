using System.Diagnostics;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>How minibatches are cut from the corpus (seed 004).</summary>
public enum Sampling
{
    /// <summary>Random non-overlapping windows; the state starts from zeros every minibatch.</summary>
    Random,
    /// <summary>Consecutive windows: rows continue across minibatches and the state is carried over, detached
    /// before each minibatch (truncated backpropagation through time).</summary>
    Consecutive,
    /// <summary>Seed 002: windows at any offset (stride-1 chunks), drawn uniformly with replacement; as many
    /// minibatches per epoch as random sampling has; the state starts from zeros.</summary>
    Chunks,
}

/// <summary>Options of a language-model run (d2l's train_and_predict_rnn).</summary>
public sealed record LanguageModelOptions
{
    /// <summary>Passes over the corpus.</summary>
    public int Epochs { get; init; } = 250;
    /// <summary>Rows per minibatch (d2l: 32).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Time steps per minibatch (d2l: 35).</summary>
    public int Steps { get; init; } = 35;
    /// <summary>How minibatches are cut.</summary>
    public Sampling Sampling { get; init; } = Sampling.Consecutive;
    /// <summary>Optimizer (d2l from scratch: SGD lr 100; with the fused layers: Adam).</summary>
    public OptimizerSpec Optimizer { get; init; } = new OptimizerSpec.Adam(1e-3);
    /// <summary>Clipping (d2l: global norm 0.01).</summary>
    public Clip? Clip { get; init; } = new Clip.ByNorm(0.01);
    /// <summary>Seed of the sampler and dropout.</summary>
    public int Seed { get; init; }
    /// <summary>Progress events (one per minibatch, and per epoch end with its record).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Cancellation between minibatches.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>Trains character (or word) language models on a token corpus, with d2l's samplers and
/// perplexity (exp of the mean per-token cross-entropy).</summary>
public static class LanguageModelTrainer
{
    /// <summary>Trains; each epoch record holds <c>loss</c> (mean cross-entropy per token) and <c>perplexity</c>.</summary>
    public static History Fit(Network net, IReadOnlyList<int> corpus, LanguageModelOptions o)
    {
        if (!net.Summary.Output.Sequence)
            throw new SeqDslException(ErrorKind.Spec, "A language model needs an output per time step.")
            { Received = $"output {net.Summary.Output}", Expected = "returnSequences: true on the last recurrent layer, then Dense(vocabulary)" };
        var oneHot = net.Spec.Layers[0] is EmbedLayer ? (int?)null : net.Options.Input.Features;
        var fit = new FitOptions { Loss = Loss.CrossEntropy, Optimizer = o.Optimizer, Clip = o.Clip };
        using var session = new TrainingSession(net, fit);
        var rng = new Random(o.Seed);
        manual_seed(o.Seed);
        var history = new History();
        var clock = Stopwatch.StartNew();
        net.train();
        for (var epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var epochClock = Stopwatch.StartNew();
            var acc = new MetricAccumulator(fit.Loss, [Metric.Perplexity]);
            Dictionary<int, RecurrentState>? state = null;
            var batches = o.Sampling switch
            {
                Sampling.Random => LanguageModelData.Random(corpus, o.BatchSize, o.Steps, rng).ToList(),
                Sampling.Chunks => LanguageModelData.RandomChunks(corpus, o.BatchSize, o.Steps, rng).ToList(),
                _ => LanguageModelData.Consecutive(corpus, o.BatchSize, o.Steps).ToList(),
            };
            for (var b = 0; b < batches.Count; b++)
            {
                if (o.Cancellation.IsCancellationRequested)
                {
                    history.StopReason = $"cancelled at epoch {epoch}, batch {b + 1}";
                    Dispose(state);
                    return history;
                }
                using var scope = NewDisposeScope();
                var (xs, ys) = batches[b];
                var x = tensor(xs).to(net.Device);
                var input = oneHot is int v ? LanguageModelData.OneHot(x, v) : x;
                var batch = new SequenceData(input, tensor(ys).to(net.Device));
                // truncated BPTT: carry the state across consecutive minibatches, cut from the graph
                var ctx = new ForwardContext { InitialStates = state, KeepStates = o.Sampling == Sampling.Consecutive };
                var (value, stop) = session.StepAccumulating(batch, acc, ctx);
                Dispose(state);
                state = o.Sampling == Sampling.Consecutive
                    ? ctx.FinalStates.ToDictionary(kv => kv.Key, kv => kv.Value.Detach().DetachFromDisposeScope())
                    : null;
                if (stop is not null)
                {
                    Trainer.StopNonFinite(history, value, epoch, b + 1, stop);
                    Dispose(state);
                    return history;
                }
                o.Progress?.Report(new TrainingProgress(epoch, o.Epochs, b + 1, batches.Count, value, clock.Elapsed, null));
            }
            Dispose(state);
            var record = new EpochRecord(epoch, epochClock.Elapsed.TotalSeconds, Trainer.LearningRate(session.Optimizer), acc.Result());
            history.Add(record);
            o.Progress?.Report(new TrainingProgress(epoch, o.Epochs, batches.Count, batches.Count, record["loss"], clock.Elapsed, record));
        }
        return history;
    }

    private static void Dispose(Dictionary<int, RecurrentState>? state)
    {
        if (state is null) return;
        foreach (var s in state.Values) s.Dispose();
    }
}
