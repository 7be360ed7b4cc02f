using SeqDsl.Engine;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>
/// One network with its optimizer, taking training steps on batches you supply: the unit
/// <see cref="Trainer.Fit(Network, IBatchSource, FitOptions, SequenceData?)"/> loops over, exposed for loops of your own
/// (benchmarks; a new way of cutting batches is better written as an <see cref="IBatchSource"/>).
/// Call <see cref="Step"/> inside a dispose scope.
/// </summary>
public sealed class TrainingSession : IDisposable
{
    private readonly Network _net;
    private readonly FitOptions _options;
    private readonly List<TorchSharp.Modules.Parameter> _parameters;
    private readonly bool _wantsLogits;

    /// <summary>Creates the optimizer for the network's trainable parameters.</summary>
    public TrainingSession(Network net, FitOptions options)
    {
        options.Loss.CheckCompatible(net.OutputActivation);
        if (net.Device.type == TorchSharp.DeviceType.CPU) Network.CheckMemory(net.Spec, net.Summary, 3, "its gradients and optimizer state");
        _net = net;
        _options = options;
        _parameters = net.TrainableParameters.ToList();
        Rules = options.Optimizer.EffectiveRules(net.Options.Convention);
        Optimizer = options.Optimizer.Create(_parameters, net.EmbeddingTables, Rules);
        _wantsLogits = options.Loss.WantsLogits(net.OutputActivation);
        // libtorch's OpenMP workers start at its first parallel operation and keep the starting thread's flush mode:
        // one here, outside any step, so that they never start inside a step's flush scope
        if (net.Device.type == TorchSharp.DeviceType.CPU)
            using (NewDisposeScope()) ones(1 << 18).add_(Kept.One, Kept.One);
    }

    /// <summary>The loss and the rest of the step's options.</summary>
    internal FitOptions Options => _options;

    /// <summary>Whether the loss takes the output layer's logits.</summary>
    internal bool WantsLogits => _wantsLogits;

    /// <summary>Whose update rules the optimizer follows (the network's convention unless the spec names them).</summary>
    public OptimizerRules Rules { get; }

    /// <summary>The optimizer (its state is part of a resumable checkpoint).</summary>
    public optim.Optimizer Optimizer { get; }

    /// <summary>One step: forward, loss, backward, clipping, update. Returns the batch's mean loss;
    /// when the loss or the clipped gradient is not finite, no update is applied and the second
    /// value names what was not finite.</summary>
    public (float loss, string? nonFinite) Step(SequenceData batch)
    {
        if (!_net.training) _net.train();
        return StepAccumulating(batch, null);
    }

    /// <summary>A step that also feeds the epoch's metrics (the network is already in training mode).</summary>
    internal (float loss, string? nonFinite) StepAccumulating(SequenceData batch, MetricAccumulator? metrics, ForwardContext? context = null)
    {
        // subnormal floats flushed to zero on this thread for the step (as Keras's TensorFlow does): a long sequence's
        // gradient shrinks below float32's normal range, and on Intel CPUs each instruction on such a value takes a
        // microcode assist — libtorch's fused LSTM backward on E7 took 510.6 ms unflushed, 40.7 flushed (Intel Xeon @ 2.00GHz,
        // avx512f; docs/BENCHMARKS.md)
        using var flush = Engine.Simd.Denormals.Flush();
        var (output, lossSum, lossCount) = Trainer.Step(_net, _options.Loss, batch, _wantsLogits, context);
        var loss = lossSum / lossCount.clamp_min(Kept.One);
        var value = loss.item<float>();
        if (!float.IsFinite(value)) return (value, "loss");
        ClearGradients();
        loss.backward();
        if (!Trainer.ClipGradients(_parameters, _options.Clip)) return (float.NaN, "gradient");
        Optimizer.step();
        metrics?.Add(lossSum, lossCount, output, batch.Targets, _wantsLogits);
        return (value, null);
    }

    /// <summary>Drops every trained parameter's gradient before a backward pass (PyTorch's zero_grad(set_to_none)):
    /// libtorch then keeps the pass's gradient as it comes instead of zero-filling the old one and adding the new one
    /// into it — for E4's 75,979 × 32 embedding, 9.7 MB filled and 9.7 MB added less a step. The optimizers skip a
    /// parameter the pass gave no gradient (as libtorch's do).</summary>
    internal void ClearGradients()
    {
        foreach (var p in _parameters) p.grad = null;
    }

    /// <inheritdoc />
    public void Dispose() => Optimizer.Dispose();
}
