using SeqDsl.Engine;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>Whose update rules an optimizer follows.</summary>
public enum OptimizerRules
{
    /// <summary>libtorch's (PyTorch's) optimizers.</summary>
    Torch,
    /// <summary>TensorFlow 2 Keras's (OptimizerV2, the training kernels the Keras books ran): RMSprop divides by
    /// √(ms + ε); Adam's ε is added to √v before the bias correction of the rate; Adagrad's accumulator starts at 0.1;
    /// ε = 1e-7 throughout; and an embedding table's gradient is sparse — RMSprop and momentum SGD touch only the rows
    /// of the batch's tokens, so the state of absent rows neither decays nor moves them.</summary>
    Keras,
}

/// <summary>
/// The five optimizers with TensorFlow 2 Keras's update equations (<see cref="OptimizerRules.Keras"/>), as a TorchSharp
/// optimizer: its state (step and slots) is saved and restored with a resumable checkpoint like libtorch's.
/// <list type="bullet">
/// <item>RMSprop (ApplyRMSProp, momentum 0, not centered): ms ← ρ·ms + (1 − ρ)·g²; θ ← θ − lr·g / √(ms + ε).</item>
/// <item>Adam (ApplyAdam): m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; θ ← θ − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε).</item>
/// <item>AdamW (keras.optimizers.AdamW, TensorFlow 2.11+ and Keras 3): first the decoupled decay θ ← θ − θ·λ·lr, on every
/// parameter and every row of an embedding table, then Adam's step above. (TensorFlow Addons' older AdamW decays by
/// λ·θ without the learning rate; this is the Keras one.)</item>
/// <item>SGD (ApplyKerasMomentum): a ← μ·a − lr·g; θ ← θ + a (plain SGD when μ = 0).</item>
/// <item>Adagrad (ApplyAdagradV2): acc ← acc + g² (acc starts at 0.1); θ ← θ − lr·g / (√acc + ε).</item>
/// </list>
/// Sparse parameters (embedding tables): Keras hands their gradient over as the rows of the batch's tokens. For
/// RMSprop and momentum SGD the sparse kernels update only those rows, state included; Adam's and Adagrad's sparse
/// updates equal their dense ones. A row counts as in the batch when its gradient is not all zero (a row whose
/// gradient is exactly zero everywhere is treated as absent).
/// <para>RMSprop, Adam and AdamW on CPU float32 contiguous parameters take one fused pass per parameter
/// (<see cref="FusedUpdates"/>, the same float32 operations in the same order, the sparse rows checked row by row);
/// the tensor code runs otherwise.</para>
/// </summary>
public sealed class KerasOptimizer : OptimizerHelper
{
    /// <summary>The algorithm.</summary>
    public enum Algorithm
    {
        /// <summary>RMSprop.</summary>
        RmsProp,
        /// <summary>Adam.</summary>
        Adam,
        /// <summary>AdamW: Adam with decoupled weight decay.</summary>
        AdamW,
        /// <summary>SGD, optionally with momentum.</summary>
        Sgd,
        /// <summary>Adagrad.</summary>
        Adagrad,
    }

    /// <summary>Keras's ε (backend.epsilon()).</summary>
    public const double Epsilon = 1e-7;

    private readonly Algorithm _algorithm;
    private readonly double _rho, _beta1, _beta2, _momentum, _weightDecay;
    private readonly HashSet<IntPtr> _sparse;

    /// <summary>An optimizer over <paramref name="parameters"/>; <paramref name="sparse"/> are the embedding tables;
    /// <paramref name="weightDecay"/> is AdamW's λ (ignored by the others).</summary>
    public KerasOptimizer(IEnumerable<Parameter> parameters, IEnumerable<Parameter> sparse, Algorithm algorithm, double lr,
        double rho = 0.9, double momentum = 0, double beta1 = 0.9, double beta2 = 0.999, double weightDecay = 0.004)
    {
        if (!(lr >= 0)) throw new ArgumentException($"Invalid learning rate: {lr}", nameof(lr));
        if (!(weightDecay >= 0)) throw new ArgumentException($"Invalid weight decay: {weightDecay}", nameof(weightDecay));
        _weightDecay = weightDecay;
        _algorithm = algorithm;
        _rho = rho;
        _momentum = momentum;
        _beta1 = beta1;
        _beta2 = beta2;
        _sparse = sparse.Select(p => p.Handle).ToHashSet();
        _defaults = new Options { LearningRate = lr, InitialLearningRate = lr };
        _parameter_groups = [];
        add_param_group(new ParamGroup<Options>(parameters, new Options { LearningRate = lr, InitialLearningRate = lr }));
    }

    /// <inheritdoc />
    public override void add_param_group(TorchSharp.Modules.ParamGroup param_group)
    {
        param_group.Options ??= new Options();
        param_group.Options.LearningRate ??= _defaults.LearningRate;
        param_group.Options.InitialLearningRate = param_group.Options.LearningRate!.Value;
        _parameter_groups.Add(param_group);
        foreach (var p in param_group.Parameters)
        {
            var initial = _algorithm == Algorithm.Adagrad ? 0.1 : 0.0; // Keras's initial_accumulator_value
            static Tensor FullLike(Tensor p, double value)
            {
                using var fill = value.ToScalar();
                return full_like(p, fill).DetachFromDisposeScope();
            }
            _state[p.Handle] = new State(p)
            {
                First = FullLike(p, initial),
                Second = _algorithm is Algorithm.Adam or Algorithm.AdamW ? zeros_like(p).DetachFromDisposeScope() : null,
            };
        }
    }

    /// <inheritdoc />
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup<Options>>(group =>
    {
        var lr = group.Options.LearningRate!.Value;
        foreach (var p in group.Parameters)
        {
            var grad = p.grad;
            if (grad is null) continue;
            var state = (State)_state[p.Handle];
            state.Step++;
            if (Fused(p, grad, state, lr))
            {
                FusedParameterUpdates++;
                continue;
            }
            using var scope = NewDisposeScope();
            // rows of a sparse table that the batch touched: (V, 1, …) for broadcasting
            Tensor? rows = _sparse.Contains(p.Handle) && p.dim() >= 1 && _algorithm is Algorithm.RmsProp or Algorithm.Sgd
                ? grad.ne(Kept.Zero).flatten(1).any(1).reshape([p.shape[0], .. Enumerable.Repeat(1L, (int)p.dim() - 1)])
                : null;
            Tensor Keep(Tensor updated, Tensor old) => rows is null ? updated : where(rows, updated, old); // state of absent rows stays
            switch (_algorithm)
            {
                case Algorithm.RmsProp:
                {
                    var ms = Keep(state.First.Times(_rho).Plus(grad.pow(Kept.Two).Times(1 - _rho)), state.First);
                    state.First.copy_(ms);
                    // rows outside the batch have a zero gradient, so their step is zero without a mask
                    p.sub_(grad.Times(lr).div(ms.Plus(Epsilon).sqrt()));
                    break;
                }
                case Algorithm.Adam or Algorithm.AdamW:
                {
                    // Keras's _apply_weight_decay runs before the update: variable − variable·wd·lr
                    if (_algorithm == Algorithm.AdamW) p.sub_(p.Times(_weightDecay * lr));
                    using (var beta1 = _beta1.ToScalar())
                    using (var rest1 = (1 - _beta1).ToScalar())
                        state.First.mul_(beta1).add_(grad, alpha: rest1);
                    using (var beta2 = _beta2.ToScalar())
                    using (var rest2 = (1 - _beta2).ToScalar())
                        state.Second!.mul_(beta2).addcmul_(grad, grad, value: rest2);
                    var t = (double)state.Step;
                    var rate = lr * Math.Sqrt(1 - Math.Pow(_beta2, t)) / (1 - Math.Pow(_beta1, t));
                    p.sub_(state.First.Times(rate).div(state.Second!.sqrt().Plus(Epsilon)));
                    break;
                }
                case Algorithm.Sgd when _momentum == 0:
                    p.sub_(grad.Times(lr));
                    break;
                case Algorithm.Sgd:
                {
                    var accumulated = Keep(state.First.Times(_momentum).sub(grad.Times(lr)), state.First);
                    state.First.copy_(accumulated);
                    p.PlusInPlace(rows is null ? accumulated : accumulated * rows); // absent rows keep their momentum and do not move
                    break;
                }
                case Algorithm.Adagrad:
                    state.First.addcmul_(grad, grad, Kept.One);
                    p.sub_(grad.Times(lr).div(state.First.sqrt().Plus(Epsilon)));
                    break;
            }
        }
    }, closure);

    /// <summary>Parameter updates the fused loops have made (for tests: the fast path ran).</summary>
    internal long FusedParameterUpdates { get; private set; }

    /// <summary>
    /// The update of <paramref name="p"/> in one pass (<see cref="FusedUpdates"/>), with the float32 arithmetic of the
    /// tensor code in <see cref="step"/>, when the algorithm is RMSprop, Adam or AdamW and the parameter, its gradient
    /// and slots are CPU float32 contiguous tensors; false (nothing done) otherwise. <see cref="State.Step"/> is
    /// already counted.
    /// </summary>
    private unsafe bool Fused(Parameter p, Tensor grad, State state, double lr)
    {
        if (!FusedUpdates.Enabled || _algorithm is not (Algorithm.RmsProp or Algorithm.Adam or Algorithm.AdamW)) return false;
        var n = p.numel();
        if (!FusedUpdates.Plain(p, n) || !FusedUpdates.Plain(grad, n) || !FusedUpdates.Plain(state.First, n)) return false;
        if (_algorithm == Algorithm.RmsProp)
        {
            var sparse = _sparse.Contains(p.Handle) && p.dim() >= 1;
            var rows = sparse ? p.shape[0] : 1;
            var rowSize = rows == 0 ? 0 : n / rows;
            FusedUpdates.KerasRmsProp(FusedUpdates.Ptr(p), FusedUpdates.Ptr(grad), FusedUpdates.Ptr(state.First), rows, rowSize,
                sparse, _rho, Epsilon, lr);
            return true;
        }
        if (!FusedUpdates.Plain(state.Second, n)) return false;
        var t = (double)state.Step;
        var rate = lr * Math.Sqrt(1 - Math.Pow(_beta2, t)) / (1 - Math.Pow(_beta1, t));
        FusedUpdates.KerasAdam(FusedUpdates.Ptr(p), FusedUpdates.Ptr(grad), FusedUpdates.Ptr(state.First),
            FusedUpdates.Ptr(state.Second!), n, _beta1, _beta2, Epsilon, rate,
            _algorithm == Algorithm.AdamW ? _weightDecay * lr : 0);
        return true;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        foreach (var (_, s) in _state) ((State)s).Dispose();
        _state.Clear();
    }

    /// <summary>Hyper-parameters of a group: the learning rate only (the others are fixed by the algorithm).</summary>
    public sealed class Options : OptimizerOptions
    {
    }

    /// <summary>Per-parameter state: the step and one or two slots (ms; m and v; the momentum; the accumulator).</summary>
    public sealed class State(Parameter parameter) : OptimizerState(parameter), IDisposable
    {
        /// <summary>Updates applied.</summary>
        public long Step;
        /// <summary>ms (RMSprop), m (Adam), the momentum (SGD) or the accumulator (Adagrad).</summary>
        public Tensor First = null!;
        /// <summary>v (Adam).</summary>
        public Tensor? Second;

        /// <inheritdoc />
        public void Dispose()
        {
            First.Dispose();
            Second?.Dispose();
        }

        /// <inheritdoc />
        public override void to(Device device)
        {
            First = First.to(device);
            Second = Second?.to(device);
        }

        /// <inheritdoc />
        public override void LoadStateDict(BinaryReader reader)
        {
            Step = reader.ReadInt64();
            First.Load(reader);
            LoadConditionalStateTensor(reader, ref Second, First.device);
        }

        /// <inheritdoc />
        public override void SaveStateDict(BinaryWriter writer)
        {
            writer.Write(Step);
            First.Save(writer);
            SaveConditionalStateTensor(writer, Second);
        }

        /// <inheritdoc />
        public override void LoadStateDict(OptimizerState source)
        {
            var s = (State)source;
            Step = s.Step;
            First.copy_(s.First);
            if (s.Second is not null) Second?.copy_(s.Second);
        }

        /// <summary>The slots are made when a parameter joins the optimizer (<see cref="add_param_group"/>).</summary>
        public override void Initialize(OptimizerOptions options)
        {
        }
    }
}
