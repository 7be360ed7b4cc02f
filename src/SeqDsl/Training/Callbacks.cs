using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>Whether lower or higher values of a monitored quantity are better.</summary>
public enum MonitorMode
{
    /// <summary>Lower is better (losses, errors).</summary>
    Min,
    /// <summary>Higher is better (accuracy, R²).</summary>
    Max,
}

/// <summary>What a callback watches: a value of the epoch record, and which direction is better.</summary>
/// <param name="Name">e.g. val_loss, val_accuracy, loss.</param>
/// <param name="Mode">Min or Max.</param>
public sealed record Monitor(string Name, MonitorMode Mode)
{
    /// <summary>The given mode, or Keras's "auto" without one: Max for names ending in accuracy or r2, Min otherwise.</summary>
    public static Monitor Of(string name, MonitorMode? mode) => mode is MonitorMode m ? new(name, m) : Auto(name);

    /// <summary>Keras's "auto": Max for names ending in accuracy or r2, Min otherwise.</summary>
    public static Monitor Auto(string name) =>
        new(name, name.EndsWith("accuracy", StringComparison.Ordinal) || name.EndsWith("r2", StringComparison.Ordinal)
            ? MonitorMode.Max : MonitorMode.Min);

    /// <summary>The monitored value of an epoch.</summary>
    /// <exception cref="SeqDslException">The record holds no such value.</exception>
    public double Read(EpochRecord r) =>
        r.Values.TryGetValue(Name, out var v) ? v
        : throw new SeqDslException(ErrorKind.Spec, $"Cannot monitor '{Name}': the epoch records hold no such value.")
        { Received = Name, Expected = "one of " + string.Join(", ", r.Values.Keys) };

    /// <summary>Whether <paramref name="value"/> beats <paramref name="best"/> by more than <paramref name="minDelta"/>
    /// (anything beats NaN, NaN beats nothing).</summary>
    public bool Improves(double value, double best, double minDelta = 0)
    {
        if (double.IsNaN(value)) return false;
        if (double.IsNaN(best)) return true;
        return Mode == MonitorMode.Max ? value > best + minDelta : value < best - minDelta;
    }
}

/// <summary>The state a callback carries from epoch to epoch; saved with resumable training state.</summary>
/// <param name="Best">Best monitored value so far (NaN before the first epoch).</param>
/// <param name="BestEpoch">The epoch that reached it.</param>
/// <param name="Wait">Epochs since the last improvement.</param>
public sealed record CallbackState(double Best = double.NaN, int BestEpoch = 0, int Wait = 0);

/// <summary>What the loop gives a callback besides the record: the network, the optimizer, the history, and a
/// place for the weights of the best epoch (early stopping with restore).</summary>
public sealed class CallbackContext
{
    internal CallbackContext(Network net, optim.Optimizer optimizer, History history)
    {
        Network = net;
        Optimizer = optimizer;
        History = history;
    }

    /// <summary>The network being trained.</summary>
    public Network Network { get; }
    /// <summary>Its optimizer (learning-rate schedules set its rate).</summary>
    public optim.Optimizer Optimizer { get; }
    /// <summary>The history so far.</summary>
    public History History { get; }
    /// <summary>A copy of the weights of the best epoch, kept by early stopping with restore; saved with the training state.</summary>
    public Dictionary<string, Tensor>? BestWeights { get; internal set; }

    internal void KeepBestWeights()
    {
        if (BestWeights is not null) foreach (var t in BestWeights.Values) t.Dispose();
        using var _ = no_grad();
        BestWeights = Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    internal void DisposeBestWeights()
    {
        if (BestWeights is not null) foreach (var t in BestWeights.Values) t.Dispose();
        BestWeights = null;
    }
}

/// <summary>
/// An epoch-end callback as a value: a state that starts at <see cref="Initial"/>, and a function from the state and the
/// finished epoch's record to the next state and whether training goes on. The state is saved with the resumable
/// training state (<see cref="FitOptions.StateDirectory"/>), keyed by the callback's full value, so a resumed run continues
/// exactly where it stopped, and a callback whose options changed starts fresh. <see cref="From"/> builds them from
/// <see cref="FitOptions"/>.
/// </summary>
public abstract record EpochCallback
{
    /// <summary>The state before the first epoch.</summary>
    public virtual CallbackState Initial => new();

    /// <summary>The next state, and true to stop training after this epoch.</summary>
    public abstract (CallbackState State, bool Stop) OnEpochEnd(CallbackState state, EpochRecord record, CallbackContext context);

    /// <summary>Saves the model whenever the monitored value improves (Keras's ModelCheckpoint with save_best_only).</summary>
    public sealed record BestCheckpoint(string Directory, Monitor Monitor) : EpochCallback
    {
        /// <inheritdoc />
        public override (CallbackState, bool) OnEpochEnd(CallbackState s, EpochRecord r, CallbackContext c)
        {
            var v = Monitor.Read(r);
            if (!Monitor.Improves(v, s.Best)) return (s with { Wait = s.Wait + 1 }, false);
            ModelStore.Save(c.Network, Directory);
            return (new CallbackState(v, r.Epoch, 0), false);
        }
    }

    /// <summary>Stops when the monitored value has not improved for <c>Patience</c> epochs; with restore, the best
    /// epoch's weights are put back when training ends.</summary>
    public sealed record EarlyStop(Monitor Monitor, int Patience, double MinDelta, bool RestoreBest) : EpochCallback
    {
        /// <inheritdoc />
        public override (CallbackState, bool) OnEpochEnd(CallbackState s, EpochRecord r, CallbackContext c)
        {
            var v = Monitor.Read(r);
            if (Monitor.Improves(v, s.Best, MinDelta))
            {
                if (RestoreBest) c.KeepBestWeights();
                return (new CallbackState(v, r.Epoch, 0), false);
            }
            var next = s with { Wait = s.Wait + 1 };
            if (next.Wait < Patience) return (next, false);
            c.History.StopReason = $"early stopping: {Monitor.Name} did not improve for {Patience} epochs after epoch {s.BestEpoch}";
            return (next, true);
        }
    }

    /// <summary>Multiplies the learning rate by <c>Gamma</c> every <c>StepEpochs</c> epochs.</summary>
    public sealed record StepDecay(int StepEpochs, double Gamma) : EpochCallback
    {
        /// <inheritdoc />
        public override (CallbackState, bool) OnEpochEnd(CallbackState s, EpochRecord r, CallbackContext c)
        {
            if (r.Epoch % StepEpochs == 0) Trainer.SetLearningRate(c.Optimizer, Trainer.LearningRate(c.Optimizer) * Gamma);
            return (s, false);
        }
    }

    /// <summary>Multiplies the learning rate by <c>Factor</c> (not below <c>MinLearningRate</c>) when the monitored value
    /// has not improved for <c>Patience</c> epochs.</summary>
    public sealed record Plateau(Monitor Monitor, double Factor, int Patience, double MinLearningRate) : EpochCallback
    {
        /// <inheritdoc />
        public override (CallbackState, bool) OnEpochEnd(CallbackState s, EpochRecord r, CallbackContext c)
        {
            var v = Monitor.Read(r);
            if (Monitor.Improves(v, s.Best)) return (new CallbackState(v, r.Epoch, 0), false);
            if (s.Wait + 1 < Patience) return (s with { Wait = s.Wait + 1 }, false);
            Trainer.SetLearningRate(c.Optimizer, Math.Max(MinLearningRate, Trainer.LearningRate(c.Optimizer) * Factor));
            return (s with { Wait = 0 }, false);
        }
    }

    /// <summary>The callbacks a <see cref="FitOptions"/> asks for, in the order the loop runs them: checkpoint,
    /// schedule, early stopping.</summary>
    public static IReadOnlyList<EpochCallback> From(FitOptions o)
    {
        var list = new List<EpochCallback>();
        if (o.CheckpointDirectory is string dir)
        {
            // before the first epoch, not at the first improvement: a folder the save would refuse is named now
            ModelStore.CheckReplaceable(dir, "the checkpoint directory");
            list.Add(new BestCheckpoint(dir, Monitor.Of(o.CheckpointMonitor, o.CheckpointMode)));
        }
        switch (o.Schedule)
        {
            case Schedule.Step st: list.Add(new StepDecay(st.StepEpochs, st.Gamma)); break;
            case Schedule.ReduceOnPlateau p: list.Add(new Plateau(Monitor.Of(p.Monitor, p.Mode), p.Factor, p.Patience, p.MinLearningRate)); break;
        }
        if (o.EarlyStopping is EarlyStopping es) list.Add(new EarlyStop(Monitor.Of(es.Monitor, es.Mode), es.Patience, es.MinDelta, es.RestoreBest));
        return list;
    }
}
