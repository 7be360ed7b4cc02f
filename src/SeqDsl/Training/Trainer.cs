using System.Diagnostics;
using System.Text.Json;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>fit / evaluate / predict, Keras-style, over a compiled <see cref="Network"/>.</summary>
public static class Trainer
{
    /// <summary>Trains the network on rows of data (shuffled minibatches, see <see cref="RowBatches"/>), validating on
    /// <paramref name="validation"/> or on the last <see cref="FitOptions.ValidationSplit"/> of the rows; returns the
    /// per-epoch history. A NaN or infinite loss stops training (see <see cref="History.StopReason"/>) without applying
    /// that step, so the weights stay finite.</summary>
    public static History Fit(Network net, SequenceData data, FitOptions o, SequenceData? validation = null)
    {
        CheckData(net, data, "training data");
        CheckOptions(net, o);
        var train = data;
        if (validation is null && o.ValidationSplit > 0)
        {
            var (kept, held) = Splits.Last(data.Count, o.ValidationSplit, "validation split", "at least one training and one validation row");
            train = data.Slice(0, kept);         // Keras: the LAST fraction, before shuffling
            validation = data.Slice(kept, held);
        }
        if (validation is not null) CheckData(net, validation, "validation data");
        using var source = new RowBatches(train, o.BatchSize, o.Shuffle, o.Seed, o.BucketByLength);
        return Fit(net, source, o, validation);
    }

    /// <summary>The training loop every task shares: epochs of minibatches from <paramref name="source"/>, the epoch
    /// record (training metrics, then validation metrics), then the callbacks (<see cref="EpochCallback.From"/>), whose
    /// states are saved with the resumable state (<see cref="FitOptions.StateDirectory"/>) after every epoch.</summary>
    public static History Fit(Network net, IBatchSource source, FitOptions o, SequenceData? validation = null)
    {
        CheckOptions(net, o);
        var (rows, steps) = source.BatchShape;
        net.CheckTrainingMemory(rows, steps);
        var history = new History();
        using var session = new TrainingSession(net, o);
        torch.manual_seed(o.Seed);
        // keyed by the callback's full value: a resumed run whose options changed a callback starts that one fresh
        var callbacks = EpochCallback.From(o).Select(c => (Callback: c, Key: c.ToString())).ToList();
        var states = callbacks.ToDictionary(c => c.Key, c => c.Callback.Initial);
        var context = new CallbackContext(net, session.Optimizer, history);
        if (o.CheckpointEveryBatches is int every && (every < 1 || source.CarriesState))
            throw new SeqDslException(ErrorKind.Spec, every < 1 ? "Checkpoints every N batches need N ≥ 1."
                : "Checkpoints inside an epoch (--checkpoint-batches) cannot carry the recurrent state across batches (consecutive sampling); save at epoch ends.")
            { Received = $"every {every} batches", Expected = every < 1 ? "N ≥ 1" : "no CheckpointEveryBatches with consecutive sampling" };
        var firstEpoch = 1;
        var firstBatch = 0;
        double[]? resumedSums = null;
        if (o.StateDirectory is string sd && TrainingState.Exists(sd))
        {
            var (done, batchesDone, sums) = TrainingState.Restore(sd, net, session.Optimizer, source, history, states, context);
            // a state saved inside an epoch continues that epoch after its last saved batch
            (firstEpoch, firstBatch, resumedSums) = batchesDone > 0 ? (done + 1, batchesDone, sums) : (done + 1, 0, null);
            if (done > o.Epochs || (done == o.Epochs && batchesDone > 0))
                throw new SeqDslException(ErrorKind.Spec, $"The training state in {sd} has already trained {done} epochs, more than the {o.Epochs} asked for.")
                { Received = $"epochs {o.Epochs}", Expected = $"epochs ≥ {done} to continue it" };
        }
        var clock = Stopwatch.StartNew();
        try
        {
            // a resumed run that had already stopped early stays stopped
            for (var epoch = firstEpoch; epoch <= o.Epochs && history.StopReason is null; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                net.train();
                var acc = new MetricAccumulator(o.Loss, o.Metrics);
                if (resumedSums is not null) acc.Continue(resumedSums);
                var epochStart = o.CheckpointEveryBatches is not null ? source.SaveState() : null; // redraws this epoch on resume
                var batches = source.Epoch(epoch);
                using var carried = new CarriedStates(source.CarriesState);
                for (var b = firstBatch; b < batches.Count; b++)
                {
                    if (o.Cancellation.IsCancellationRequested)
                    {
                        history.StopReason = $"cancelled at epoch {epoch}, batch {b + 1}";
                        return history;
                    }
                    using var scope = NewDisposeScope();
                    var batch = batches[b](net.Device);
                    var ctx = carried.Context(batch.Lengths);
                    var (value, stop) = session.StepAccumulating(batch, acc, ctx);
                    carried.Keep(ctx);
                    if (stop is not null)
                    {
                        StopNonFinite(history, value, epoch, b + 1, stop);
                        return history;
                    }
                    o.Progress?.Report(new TrainingProgress(epoch, o.Epochs, b + 1, batches.Count, value, clock.Elapsed, null));
                    if (o.StateDirectory is string sdb && o.CheckpointEveryBatches is int n && (b + 1) % n == 0 && b + 1 < batches.Count)
                        TrainingState.Save(sdb, net, session.Optimizer, epochStart!, history, epoch - 1, states, context, b + 1, acc.Sums);
                }
                (firstBatch, resumedSums) = (0, null);
                var values = acc.Result();
                if (validation is not null)
                    foreach (var (k, v) in Evaluate(net, validation, o.Loss, o.Metrics, o.BatchSize)) values["val_" + k] = v;
                var lr = LearningRate(session.Optimizer); // the rate this epoch trained with; schedules act after the record
                var record = new EpochRecord(epoch, epochClock.Elapsed.TotalSeconds, lr, values);
                history.Add(record);
                o.Progress?.Report(new TrainingProgress(epoch, o.Epochs, batches.Count, batches.Count, values["loss"], clock.Elapsed, record));

                var stopAfter = false;
                foreach (var (cb, key) in callbacks)
                {
                    (states[key], var stopNow) = cb.OnEpochEnd(states[key], record, context);
                    stopAfter |= stopNow;
                }
                if (o.StateDirectory is string sd2) TrainingState.Save(sd2, net, session.Optimizer, source.SaveState(), history, epoch, states, context);
                if (stopAfter) break;
            }
            if (context.BestWeights is not null && callbacks.FirstOrDefault(c => c.Callback is EpochCallback.EarlyStop { RestoreBest: true }) is { Key: { } restoring }
                && states[restoring] is { BestEpoch: > 0 } es)
            {
                Restore(net, context.BestWeights);
                history.RestoredEpoch = es.BestEpoch;
            }
            return history;
        }
        finally
        {
            context.DisposeBestWeights();
        }
    }

    private static void CheckOptions(Network net, FitOptions o)
    {
        if (o.Epochs < 1 || o.BatchSize < 1)
            throw new SeqDslException(ErrorKind.Spec, "Epochs and batch size must be positive.")
            { Received = $"epochs {o.Epochs}, batch size {o.BatchSize}", Expected = "both ≥ 1" };
        if (o.ValidationSplit is < 0 or >= 1)
            throw new SeqDslException(ErrorKind.Spec, "Validation split must lie in [0, 1).") { Received = o.ValidationSplit.ToString(), Expected = "0 ≤ split < 1" };
        o.Loss.CheckCompatible(net.OutputActivation);
    }

    /// <summary>Truncated backpropagation through time: the final recurrent states of one batch, cut from the graph,
    /// start the next (when the source's batches continue each other's rows); disposed at the end of the epoch.</summary>
    private sealed class CarriedStates(bool carries) : IDisposable
    {
        private Dictionary<int, RecurrentState>? _states;

        public ForwardContext Context(Tensor? lengths) => new() { Lengths = lengths, InitialStates = _states, KeepStates = carries };

        public void Keep(ForwardContext ctx)
        {
            if (!carries) return;
            Dispose();
            _states = ctx.FinalStates.ToDictionary(kv => kv.Key, kv => kv.Value.Detach().DetachFromDisposeScope());
        }

        public void Dispose()
        {
            if (_states is not null) foreach (var s in _states.Values) s.Dispose();
            _states = null;
        }
    }

    /// <summary>Loss and metrics on data, in evaluation mode (no dropout), without gradients.</summary>
    public static Dictionary<string, double> Evaluate(Network net, SequenceData data, Loss loss, IReadOnlyList<Metric> metrics, int batchSize = 256)
    {
        CheckData(net, data, "evaluation data");
        var wasTraining = net.training;
        net.eval();
        try
        {
            using var _ = no_grad();
            var acc = new MetricAccumulator(loss, metrics);
            var wantsLogits = loss.WantsLogits(net.OutputActivation);
            // with lengths and one target per row, rows of similar length go together (the metrics are sums over
            // rows, so the order does not matter), and each batch, trimmed to its longest row, carries little
            // padding; per-step targets keep the data's order, since trimming decides which padded steps count
            var perStep = data.Targets.dim() >= 2 && data.Inputs.dim() >= 2 && data.Targets.shape[1] == data.Inputs.shape[1];
            using var order = data.Lengths is Tensor l && !perStep ? l.argsort() : null;
            for (long start = 0; start < data.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var n = Math.Min(batchSize, data.Count - start);
                var batch = order is null ? Move(data.Slice(start, n), net.Device) : Take(data, order.narrow(0, start, n), net.Device);
                var (output, sum, count) = Step(net, loss, batch, wantsLogits);
                acc.Add(sum, count, output, batch.Targets, wantsLogits);
            }
            return acc.Result();
        }
        finally
        {
            net.train(wasTraining);
        }
    }

    /// <summary>The network's outputs (probabilities or values, as the final layer gives them) for every row, on the CPU.</summary>
    public static Tensor Predict(Network net, Tensor inputs, Tensor? lengths = null, int batchSize = 256)
    {
        var wasTraining = net.training;
        net.eval();
        try
        {
            using var _ = no_grad();
            var parts = new List<Tensor>();
            using (var outer = NewDisposeScope())
            {
                var n = inputs.shape[0];
                for (long start = 0; start < n; start += batchSize)
                {
                    using var scope = NewDisposeScope();
                    var len = Math.Min(batchSize, n - start);
                    var x = inputs.narrow(0, start, len).to(net.Device);
                    var l = lengths?.narrow(0, start, len);
                    parts.Add(net.Forward(x, l).cpu().MoveToOuterDisposeScope());
                }
                return cat(parts, 0).MoveToOuterDisposeScope();
            }
        }
        finally
        {
            net.train(wasTraining);
        }
    }

    internal static (Tensor output, Tensor lossSum, Tensor lossCount) Step(Network net, Loss loss, SequenceData batch, bool wantsLogits,
        ForwardContext? context = null)
    {
        var ctx = context ?? new ForwardContext { Lengths = batch.Lengths };
        var output = wantsLogits ? net.ForwardLogits(batch.Inputs, ctx)! : net.Forward(batch.Inputs, ctx);
        CheckTargets(net, loss, output, batch.Targets);
        var (sum, count) = loss.SumAndCount(output, batch.Targets);
        return (output, sum, count);
    }

    private static void CheckTargets(Network net, Loss loss, Tensor output, Tensor targets)
    {
        var ok = loss.Kind == LossKind.CrossEntropy
            ? targets.numel() * output.shape[^1] == output.numel()
            : targets.numel() == output.numel();
        if (!ok)
        {
            var last = net.Spec.Layers.Length - 1;
            throw SeqDslException.ForLayer(last, net.Spec.Layers[last], ErrorKind.Shape,
                $"The targets do not match the model's output for the {loss.Kind} loss.",
                $"targets [{string.Join(", ", targets.shape)}] for output [{string.Join(", ", output.shape)}]",
                loss.Kind == LossKind.CrossEntropy ? "one class index per output row (or per time step)" : "one target per output value");
        }
    }

    private static void CheckData(Network net, SequenceData d, string what)
    {
        if (d.Targets.shape[0] != d.Inputs.shape[0] || (d.Lengths is not null && d.Lengths.shape[0] != d.Inputs.shape[0]))
            throw new SeqDslException(ErrorKind.Data, $"The {what} has {d.Inputs.shape[0]} input rows but {d.Targets.shape[0]} target rows"
                + (d.Lengths is null ? "." : $" and {d.Lengths.shape[0]} lengths."));
        if (d.Count == 0) throw new SeqDslException(ErrorKind.Data, $"The {what} is empty.");
    }

    internal static SequenceData Take(SequenceData d, Tensor idx, Device device) =>
        Trim(new(d.Inputs.index_select(0, idx), d.Targets.index_select(0, idx), d.Lengths?.index_select(0, idx)), device);

    private static SequenceData Move(SequenceData d, Device device) => Trim(d, device);

    /// <summary>With lengths (post-padded rows), cuts the time axis to the batch's longest sequence, so
    /// a corpus padded to its longest text costs no more per batch than padding per batch would.</summary>
    private static SequenceData Trim(SequenceData d, Device device)
    {
        if (d.Lengths is not Tensor l || d.Inputs.dim() < 2) return new(d.Inputs.to(device), d.Targets.to(device), d.Lengths);
        var T = d.Inputs.shape[1];
        var max = l.max().item<long>();
        if (max >= T) return new(d.Inputs.to(device), d.Targets.to(device), l);
        var targets = d.Targets.dim() >= 2 && d.Targets.shape[1] == T ? d.Targets.narrow(1, 0, max) : d.Targets;
        return new(d.Inputs.narrow(1, 0, max).to(device), targets.to(device), l);
    }

    /// <summary>Clips gradients; false when their norm is not finite (the step must not be applied).</summary>
    internal static bool ClipGradients(List<Parameter> parameters, Clip? clip)
    {
        switch (clip)
        {
            case Clip.ByNorm c:
            {
                var grads = parameters.Select(p => p.grad).Where(g => g is not null).Cast<Tensor>().ToList();
                if (grads.Count == 0) return true;
                using var norm = stack(grads.Select(g => g.pow(Kept.Two).sum())).sum().sqrt();
                var total = norm.item<float>();
                if (!float.IsFinite(total)) return false;
                if (total > c.MaxNorm)
                {
                    using var _ = no_grad();
                    using var scale = (c.MaxNorm / total).ToScalar(); // d2l: g ← (θ / ‖g‖) g when ‖g‖ > θ
                    foreach (var g in grads) g.mul_(scale);
                }
                return true;
            }
            case Clip.ByValue v:
                nn.utils.clip_grad_value_(parameters, v.Value);
                return true;
            default:
                return true;
        }
    }

    internal static void StopNonFinite(History h, float value, int epoch, int batch, string what = "loss")
    {
        h.StoppedOnNonFiniteLoss = true;
        h.StopReason = $"training stopped: the {what} became {(float.IsNaN(value) ? "NaN" : value > 0 ? "+infinity" : "-infinity")} "
            + $"at epoch {epoch}, batch {batch}; that step was not applied, so the weights are those of the last finite step";
    }

    internal static double LearningRate(optim.Optimizer opt) => opt.ParamGroups.First().LearningRate;

    internal static void SetLearningRate(optim.Optimizer opt, double lr)
    {
        foreach (var g in opt.ParamGroups) g.LearningRate = lr;
    }

    private static void Restore(Network net, Dictionary<string, Tensor> weights)
    {
        using var _ = no_grad();
        foreach (var (name, t) in net.state_dict()) t.copy_(weights[name]);
    }
}
