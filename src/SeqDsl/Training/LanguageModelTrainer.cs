using SeqDsl.Engine;
using SeqDsl.Spec;

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
    /// <summary>Early stopping (monitoring <c>loss</c> or <c>perplexity</c>: a language model has no validation rows), or none.</summary>
    public EarlyStopping? EarlyStopping { get; init; }
    /// <summary>Learning-rate schedule (a plateau monitoring <c>loss</c> or <c>perplexity</c>), or none.</summary>
    public Schedule? Schedule { get; init; }
    /// <summary>Directory for the best model by <see cref="CheckpointMonitor"/>, or none.</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>What the best-model checkpoint watches.</summary>
    public string CheckpointMonitor { get; init; } = "loss";
    /// <summary>Directory for resumable training state (<see cref="FitOptions.StateDirectory"/>).</summary>
    public string? StateDirectory { get; init; }
    /// <summary>Also save the state every this many minibatches (<see cref="FitOptions.CheckpointEveryBatches"/>; not with
    /// consecutive sampling).</summary>
    public int? CheckpointEveryBatches { get; init; }
    /// <summary>Progress events (one per minibatch, and per epoch end with its record).</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Cancellation between minibatches.</summary>
    public CancellationToken Cancellation { get; init; }
}

/// <summary>Trains character (or word) language models on a token corpus, with d2l's samplers and
/// perplexity (exp of the mean per-token cross-entropy), through the one training loop (<see cref="Trainer.Fit(Network, IBatchSource, FitOptions, SequenceData?)"/>).</summary>
public static class LanguageModelTrainer
{
    /// <summary>Trains; each epoch record holds <c>loss</c> (mean cross-entropy per token) and <c>perplexity</c>.</summary>
    public static History Fit(Network net, IReadOnlyList<int> corpus, LanguageModelOptions o)
    {
        if (!net.Summary.Output.Sequence)
            throw new SeqDslException(ErrorKind.Spec, "A language model needs an output per time step.")
            { Received = $"output {net.Summary.Output}", Expected = "returnSequences: true on the last recurrent layer, then Dense(vocabulary)" };
        var source = new CorpusBatches(corpus, o.BatchSize, o.Steps, o.Sampling, o.Seed, net.TokenInput);
        return Trainer.Fit(net, source, new FitOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, Seed = o.Seed, Loss = Loss.CrossEntropy, Metrics = [Metric.Perplexity],
            Optimizer = o.Optimizer, Clip = o.Clip, EarlyStopping = o.EarlyStopping, Schedule = o.Schedule, CheckpointDirectory = o.CheckpointDirectory,
            CheckpointMonitor = o.CheckpointMonitor, StateDirectory = o.StateDirectory, CheckpointEveryBatches = o.CheckpointEveryBatches,
            Progress = o.Progress, Cancellation = o.Cancellation,
        });
    }
}
