
namespace SeqDsl.Training;

/// <summary>Stops training when a monitored value stops improving.</summary>
/// <param name="Monitor">e.g. val_loss, val_accuracy, loss.</param>
/// <param name="Patience">Epochs without improvement before stopping.</param>
/// <param name="RestoreBest">Put back the weights of the best epoch when stopping (or at the end).</param>
/// <param name="MinDelta">Smallest change that counts as an improvement.</param>
/// <param name="Mode">Whether lower or higher is better; null: higher for names ending in accuracy or r2, lower otherwise.</param>
public sealed record EarlyStopping(string Monitor = "val_loss", int Patience = 3, bool RestoreBest = true, double MinDelta = 0, MonitorMode? Mode = null);

/// <summary>One progress event: after each batch, and once more at the end of each epoch with its record.</summary>
public sealed record TrainingProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, TimeSpan Elapsed, EpochRecord? EpochEnd)
{
    /// <summary>Calls <paramref name="onEpoch"/> with each finished epoch's record, on the training thread (in order,
    /// unlike <see cref="Progress{T}"/>, which posts to the thread pool in a console program).</summary>
    public static IProgress<TrainingProgress> OnEpoch(Action<EpochRecord> onEpoch) => new EpochCallback(onEpoch);

    private sealed class EpochCallback(Action<EpochRecord> onEpoch) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.EpochEnd is { } e) onEpoch(e);
        }
    }
}

/// <summary>How to train. Defaults follow Keras's fit where the books rely on them.</summary>
public sealed record FitOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Sequences per minibatch (Keras's default 32).</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Reshuffle the training rows every epoch.</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary>With lengths (post-padded texts), batch sequences of similar length together (shuffled pools of 50
    /// batches sorted by length, batch order shuffled): far less padding per batch than random batches.</summary>
    public bool BucketByLength { get; init; }
    /// <summary>Seed of shuffling and dropout; the same seed gives bit-identical CPU runs.</summary>
    public long Seed { get; init; } = 0;
    /// <summary>Fraction of the rows held out for validation: the LAST rows, before shuffling (as Keras does).
    /// Ignored when an explicit validation set is passed, and by the batch-source overload of <c>Trainer.Fit</c>
    /// (a source has no rows to hold out).</summary>
    public double ValidationSplit { get; init; } = 0;
    /// <summary>The optimizer.</summary>
    public OptimizerSpec Optimizer { get; init; } = new OptimizerSpec.Adam();
    /// <summary>The loss.</summary>
    public Loss Loss { get; init; } = Loss.Mse;
    /// <summary>Metrics besides the loss.</summary>
    public IReadOnlyList<Metric> Metrics { get; init; } = [];
    /// <summary>Gradient clipping, or none.</summary>
    public Clip? Clip { get; init; }
    /// <summary>Learning-rate schedule, or none.</summary>
    public Schedule? Schedule { get; init; }
    /// <summary>Early stopping, or none.</summary>
    public EarlyStopping? EarlyStopping { get; init; }
    /// <summary>Directory for the best model (by <see cref="CheckpointMonitor"/>), saved whenever it improves.</summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>What the best-model checkpoint watches.</summary>
    public string CheckpointMonitor { get; init; } = "val_loss";
    /// <summary>Whether lower or higher <see cref="CheckpointMonitor"/> is better; null: higher for names ending in
    /// accuracy or r2, lower otherwise.</summary>
    public MonitorMode? CheckpointMode { get; init; }
    /// <summary>Directory for resumable training state (weights, optimizer, epoch, random state), written after
    /// every epoch; when it already holds state, training resumes from it.</summary>
    public string? StateDirectory { get; init; }
    /// <summary>With <see cref="StateDirectory"/>: also save the resumable state every this many batches inside an epoch
    /// (long epochs), so a resumed run continues from the last such batch. Not with sources whose batches carry the
    /// recurrent state across (consecutive language-model sampling).</summary>
    public int? CheckpointEveryBatches { get; init; }
    /// <summary>Progress events.</summary>
    public IProgress<TrainingProgress>? Progress { get; init; }
    /// <summary>Cancellation between batches; training stops with the weights of the last completed step.</summary>
    public CancellationToken Cancellation { get; init; }
}
