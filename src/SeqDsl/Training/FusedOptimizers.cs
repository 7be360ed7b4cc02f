using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Training.Fused;

/// <summary>
/// libtorch's Adam (<see cref="TorchSharp.Modules.Adam"/>) whose step runs one fused pass per parameter
/// (<see cref="FusedUpdates.TorchAdam"/>) when it can: every parameter with a gradient is a CPU float32 contiguous
/// tensor, as are its gradient and slots, and every group has the plain options (amsgrad off, no weight decay, not
/// maximizing). Otherwise every parameter takes <see cref="TorchUpdates.Adam"/>: libtorch's arithmetic, every Scalar
/// held. The state (<see cref="TorchSharp.Modules.Adam.State"/>) and
/// options are libtorch's own, and the class is named Adam as libtorch's is (a saved optimizer state names its class
/// and loads only into a class of that name), so checkpoints saved by either load into the other.
/// </summary>
internal sealed class Adam : TorchSharp.Modules.Adam
{
    /// <summary>libtorch's Adam over <paramref name="parameters"/> with these hyper-parameters (its constructor).</summary>
    public Adam(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
    {
    }

    /// <summary>Parameter updates the fused loop has made (for tests: the fast path ran).</summary>
    internal long FusedParameterUpdates { get; private set; }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => FusedStep.Run(closure,
        fusable: () => FusedStep.Fusable(_parameter_groups,
            o => o is Options { amsgrad: false, maximize: false, weight_decay: 0 },
            p => [((State)_state[p.Handle]).exp_avg, ((State)_state[p.Handle]).exp_avg_sq]),
        unfused: () => _step<ParamGroup>(group => FusedStep.Each(group, (o, param, grad) =>
        {
            var state = (State)_state[param.Handle];
            state.step += 1;
            var a = (Options)o;
            TorchUpdates.Adam(param, grad, state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq, state.step, a.LearningRate!.Value,
                a.beta1!.Value, a.beta2!.Value, a.eps!.Value, a.weight_decay!.Value, a.amsgrad!.Value, a.maximize!.Value, decoupled: false);
        })),
        fused: () => _step<ParamGroup>(group => FusedParameterUpdates += FusedStep.Each(group, (o, param, grad) =>
        {
            var state = (State)_state[param.Handle];
            state.step += 1;
            var a = (Options)o;
            unsafe
            {
                FusedUpdates.TorchAdam(FusedUpdates.Ptr(param), FusedUpdates.Ptr(grad), FusedUpdates.Ptr(state.exp_avg),
                    FusedUpdates.Ptr(state.exp_avg_sq), param.numel(), a.beta1!.Value, a.beta2!.Value, a.eps!.Value,
                    a.LearningRate!.Value, state.step);
            }
        })));
}

/// <summary>
/// libtorch's RMSprop (<see cref="TorchSharp.Modules.RMSProp"/>) whose step runs one fused pass per parameter
/// (<see cref="FusedUpdates.TorchRmsProp"/>) when it can: every parameter with a gradient is a CPU float32 contiguous
/// tensor, as are its gradient and square average, and every group has the plain options (no momentum, not centered,
/// no weight decay, not maximizing). Otherwise every parameter takes <see cref="TorchUpdates.RmsProp"/>: libtorch's
/// arithmetic, every Scalar held. The state
/// (<see cref="TorchSharp.Modules.RMSProp.State"/>) and options are libtorch's own, and the class is named RMSProp as
/// libtorch's is, so checkpoints saved by either load into the other.
/// </summary>
internal sealed class RMSProp : TorchSharp.Modules.RMSProp
{
    /// <summary>libtorch's RMSprop over <paramref name="parameters"/> with these hyper-parameters (its constructor).</summary>
    public RMSProp(IEnumerable<Parameter> parameters, double lr = 1e-3, double alpha = 0.99, double eps = 1e-8,
        double weight_decay = 0, double momentum = 0.0, bool centered = false, bool maximize = false)
        : base(parameters, lr, alpha, eps, weight_decay, momentum, centered, maximize)
    {
    }

    /// <summary>Parameter updates the fused loop has made (for tests: the fast path ran).</summary>
    internal long FusedParameterUpdates { get; private set; }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => FusedStep.Run(closure,
        fusable: () => FusedStep.Fusable(_parameter_groups,
            o => o is Options { momentum: 0, centered: false, maximize: false, weight_decay: 0 },
            p => [((State)_state[p.Handle]).square_avg]),
        unfused: () => _step<ParamGroup>(group => FusedStep.Each(group, (o, param, grad) =>
        {
            var state = (State)_state[param.Handle];
            state.step += 1;
            var r = (Options)o;
            TorchUpdates.RmsProp(param, grad, state.square_avg, state.momentum_buffer, state.grad_avg, r.LearningRate!.Value,
                r.alpha!.Value, r.eps!.Value, r.weight_decay!.Value, r.momentum!.Value, r.centered!.Value, r.maximize!.Value);
        })),
        fused: () => _step<ParamGroup>(group => FusedParameterUpdates += FusedStep.Each(group, (o, param, grad) =>
        {
            var state = (State)_state[param.Handle];
            state.step += 1;
            var r = (Options)o;
            unsafe
            {
                FusedUpdates.TorchRmsProp(FusedUpdates.Ptr(param), FusedUpdates.Ptr(grad), FusedUpdates.Ptr(state.square_avg),
                    param.numel(), r.alpha!.Value, r.eps!.Value, r.LearningRate!.Value);
            }
        })));
}

/// <summary>libtorch's SGD (<see cref="TorchSharp.Modules.SGD"/>: its class, options and state) whose step is
/// <see cref="TorchUpdates.Sgd"/>: the same arithmetic with every Scalar held.</summary>
internal sealed class SGD : TorchSharp.Modules.SGD
{
    /// <summary>libtorch's SGD over <paramref name="parameters"/> with these hyper-parameters (its constructor).</summary>
    public SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0,
        bool nesterov = false, bool maximize = false)
        : base(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize)
    {
    }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group => FusedStep.Each(group, (o, param, grad) =>
    {
        var state = (State)_state[param.Handle];
        var s = (Options)o;
        state.momentum_buffer = TorchUpdates.Sgd(param, grad, state.momentum_buffer, s.LearningRate!.Value, s.momentum!.Value,
            s.dampening!.Value, s.weight_decay!.Value, s.nesterov!.Value, s.maximize!.Value);
    }), closure);
}

/// <summary>libtorch's AdamW (<see cref="TorchSharp.Modules.AdamW"/>: its class, options and state) whose step is
/// <see cref="TorchUpdates.Adam"/> with the decay decoupled: the same arithmetic with every Scalar held.</summary>
internal sealed class AdamW : TorchSharp.Modules.AdamW
{
    /// <summary>libtorch's AdamW over <paramref name="parameters"/> with these hyper-parameters (its constructor).</summary>
    public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 0, bool amsgrad = false, bool maximize = false)
        : base(parameters, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize)
    {
    }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group => FusedStep.Each(group, (o, param, grad) =>
    {
        var state = (State)_state[param.Handle];
        state.step += 1;
        var a = (Options)o;
        TorchUpdates.Adam(param, grad, state.exp_avg, state.exp_avg_sq, state.max_exp_avg_sq, state.step, a.LearningRate!.Value,
            a.beta1!.Value, a.beta2!.Value, a.eps!.Value, a.weight_decay!.Value, a.amsgrad!.Value, a.maximize!.Value, decoupled: true);
    }), closure);
}

/// <summary>libtorch's Adagrad (<see cref="TorchSharp.Modules.Adagrad"/>: its class, options and state) whose step is
/// <see cref="TorchUpdates.Adagrad"/>: the same arithmetic with every Scalar held. Its parameter groups are added here
/// too: TorchSharp's fills each accumulator from a temporary Scalar.</summary>
internal sealed class Adagrad : TorchSharp.Modules.Adagrad
{
    /// <summary>libtorch's Adagrad over <paramref name="parameters"/> with these hyper-parameters (its constructor).</summary>
    public Adagrad(IEnumerable<Parameter> parameters, double lr = 1e-2, double lr_decay = 0, double weight_decay = 0,
        double initial_accumulator_value = 0, double eps = 1e-10)
        : base(parameters, lr, lr_decay, weight_decay, initial_accumulator_value, eps)
    {
    }

    /// <summary>As TorchSharp's: the group's unset options from the defaults, then per parameter a state whose
    /// accumulator is filled with the initial value (real parameters; Adagrad's step rejects complex ones).</summary>
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        var defaults = (Options)_defaults;
        param_group.Options ??= new Options();
        var options = (Options)param_group.Options;
        options.LearningRate ??= defaults.LearningRate;
        options.lr_decay ??= defaults.lr_decay;
        options.eps ??= defaults.eps;
        options.weight_decay ??= defaults.weight_decay;
        options.initial_accumulator_value ??= defaults.initial_accumulator_value;
        options.InitialLearningRate = options.LearningRate!.Value;
        _parameter_groups.Add(param_group);
        using var initial = options.initial_accumulator_value!.Value.ToScalar();
        foreach (var p in param_group.Parameters)
            _state[p.Handle] = new State(p) { step = 0, sum = full_like(p, initial).DetachFromDisposeScope() };
    }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group => FusedStep.Each(group, (o, param, grad) =>
    {
        var state = (State)_state[param.Handle];
        state.step += 1;
        var a = (Options)o;
        TorchUpdates.Adagrad(param, grad, state.sum, state.step, a.LearningRate!.Value, a.lr_decay!.Value, a.eps!.Value,
            a.weight_decay!.Value);
    }), closure);
}

/// <summary>What the fused optimizers share: OptimizerHelper._step's closure handling, and the check that every
/// parameter with a gradient, its gradient and its slots are plain float32 CPU memory.</summary>
internal static class FusedStep
{
    /// <summary>As OptimizerHelper._step: the closure under enable_grad first, then the update — the fused one when
    /// <paramref name="fusable"/> says so, else the tensor update (<see cref="TorchUpdates"/>). Returns the closure's loss.</summary>
    public static Tensor Run(Func<Tensor>? closure, Func<bool> fusable, Action unfused, Action fused)
    {
        Tensor? loss = null;
        if (closure is not null)
            using (enable_grad())
                loss = closure();
        if (FusedUpdates.Enabled && fusable()) fused();
        else unfused();
        return loss!;
    }

    /// <summary>Runs <paramref name="update"/> (the group's options, the parameter, its gradient) on every parameter of
    /// <paramref name="group"/> that has a gradient; returns how many.</summary>
    public static long Each(TorchSharp.Modules.ParamGroup group, Action<OptimizerOptions, Parameter, Tensor> update)
    {
        var n = 0L;
        foreach (var param in group.Parameters)
        {
            if (param.grad is not { } grad) continue;
            update(group.Options, param, grad);
            n++;
        }
        return n;
    }

    /// <summary>Whether every group's options pass <paramref name="plainOptions"/> and every parameter with a gradient,
    /// the gradient and the parameter's <paramref name="slots"/> are plain (<see cref="FusedUpdates.Plain"/>).</summary>
    public static bool Fusable(IEnumerable<TorchSharp.Modules.ParamGroup> groups, Func<OptimizerOptions, bool> plainOptions,
        Func<Parameter, IEnumerable<Tensor?>> slots)
    {
        using var scope = NewDisposeScope();
        foreach (var group in groups)
        {
            if (!plainOptions(group.Options)) return false;
            foreach (var param in group.Parameters)
            {
                var grad = param.grad;
                if (grad is null) continue;
                var n = param.numel();
                if (!FusedUpdates.Plain(param, n) || !FusedUpdates.Plain(grad, n) || slots(param).Any(t => !FusedUpdates.Plain(t, n)))
                    return false;
            }
        }
        return true;
    }
}
