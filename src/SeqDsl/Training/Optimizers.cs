using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>An optimizer and its hyper-parameters, as a value.</summary>
public abstract record OptimizerSpec(double LearningRate)
{
    /// <summary>Whose update rules it follows; null: the network's convention (Keras → <see cref="OptimizerRules.Keras"/>,
    /// Torch → <see cref="OptimizerRules.Torch"/>).</summary>
    public OptimizerRules? Rules { get; init; }

    /// <summary>Plain or momentum SGD (d2l's from-scratch RNN uses lr 100 with clipping).</summary>
    public sealed record Sgd(double LearningRate, double Momentum = 0) : OptimizerSpec(LearningRate);
    /// <summary>Adam (β1 0.9, β2 0.999).</summary>
    public sealed record Adam(double LearningRate = 1e-3) : OptimizerSpec(LearningRate);
    /// <summary>AdamW (Loshchilov and Hutter): Adam with weight decay decoupled from the gradient, θ ← θ − lr·λ·θ each step
    /// (β1 0.9, β2 0.999; λ default 0.01, PyTorch's — Keras's AdamW defaults to 0.004). Under the libtorch rules,
    /// libtorch's AdamW (ε 1e-8); under the Keras rules, keras.optimizers.AdamW's equations (<see cref="KerasOptimizer"/>).</summary>
    public sealed record AdamW(double LearningRate = 1e-3, double WeightDecay = 0.01) : OptimizerSpec(LearningRate);
    /// <summary>RMSprop with Keras's defaults (ρ 0.9, ε 1e-7).</summary>
    public sealed record RmsProp(double LearningRate = 1e-3, double Rho = 0.9) : OptimizerSpec(LearningRate);
    /// <summary>AdaGrad (seed 001).</summary>
    public sealed record AdaGrad(double LearningRate = 1e-2) : OptimizerSpec(LearningRate);

    /// <summary>The rules in effect for a network compiled under <paramref name="convention"/>.</summary>
    public OptimizerRules EffectiveRules(Spec.Convention convention) =>
        Rules ?? (convention == Spec.Convention.Keras ? OptimizerRules.Keras : OptimizerRules.Torch);

    /// <summary>The optimizer for <paramref name="parameters"/> under <paramref name="rules"/>; <paramref name="sparse"/>
    /// are the embedding tables (sparse gradients under the Keras rules).</summary>
    internal optim.Optimizer Create(IEnumerable<Parameter> parameters, IEnumerable<Parameter> sparse, OptimizerRules rules) =>
        rules == OptimizerRules.Torch ? Create(parameters) : this switch
        {
            Sgd s => new KerasOptimizer(parameters, sparse, KerasOptimizer.Algorithm.Sgd, s.LearningRate, momentum: s.Momentum),
            Adam a => new KerasOptimizer(parameters, sparse, KerasOptimizer.Algorithm.Adam, a.LearningRate),
            AdamW a => new KerasOptimizer(parameters, sparse, KerasOptimizer.Algorithm.AdamW, a.LearningRate, weightDecay: a.WeightDecay),
            RmsProp r => new KerasOptimizer(parameters, sparse, KerasOptimizer.Algorithm.RmsProp, r.LearningRate, rho: r.Rho),
            AdaGrad g => new KerasOptimizer(parameters, sparse, KerasOptimizer.Algorithm.Adagrad, g.LearningRate),
            _ => throw new ArgumentOutOfRangeException(nameof(parameters)),
        };

    /// <summary>The optimizer for <paramref name="parameters"/> under libtorch's rules: libtorch's classes, options and
    /// state, with SeqDsl's step (<see cref="Fused.TorchUpdates"/>: libtorch's arithmetic with every Scalar held); Adam
    /// and RMSprop take a fused CPU loop where they can (<see cref="Fused.Adam"/>, <see cref="Fused.RMSProp"/>: one pass
    /// per parameter instead of one per operation).</summary>
    internal optim.Optimizer Create(IEnumerable<Parameter> parameters) => this switch
    {
        Sgd s => new Fused.SGD(parameters, s.LearningRate, s.Momentum),
        Adam a => new Fused.Adam(parameters, a.LearningRate),
        AdamW a => new Fused.AdamW(parameters, a.LearningRate, weight_decay: a.WeightDecay),
        RmsProp r => new Fused.RMSProp(parameters, r.LearningRate, alpha: r.Rho, eps: 1e-7),
        AdaGrad g => new Fused.Adagrad(parameters, g.LearningRate),
        _ => throw new ArgumentOutOfRangeException(nameof(parameters)),
    };
}

/// <summary>Learning-rate schedules, applied at the end of each epoch.</summary>
public abstract record Schedule
{
    /// <summary>Multiply the rate by <paramref name="Gamma"/> every <paramref name="StepEpochs"/> epochs.</summary>
    public sealed record Step(int StepEpochs, double Gamma = 0.1) : Schedule;
    /// <summary>Multiply the rate by <paramref name="Factor"/> after <paramref name="Patience"/> epochs without improvement of <paramref name="Monitor"/>.</summary>
    public sealed record ReduceOnPlateau(string Monitor = "val_loss", double Factor = 0.1, int Patience = 10, double MinLearningRate = 0, MonitorMode? Mode = null) : Schedule;
}

/// <summary>Gradient clipping.</summary>
public abstract record Clip
{
    /// <summary>g ← min(θ/‖g‖, 1)·g over all parameters together (d2l's formula).</summary>
    public sealed record ByNorm(double MaxNorm) : Clip;
    /// <summary>Each gradient element clamped to [−v, v] (seed 001 uses ±2).</summary>
    public sealed record ByValue(double Value) : Clip;
}
