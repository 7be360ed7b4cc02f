using SeqDsl.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Training.Fused;

/// <summary>
/// The updates of libtorch's optimizers (PyTorch's documented algorithms, in the order of operations TorchSharp's
/// classes use, so that the results are theirs to the bit) with every <see cref="Scalar"/> held until its native call
/// has returned. TorchSharp's own <c>step</c> methods pass implicitly converted Scalars (<c>mul_(beta1)</c>,
/// <c>add_(eps)</c>), which a garbage collection during the call can free (<see cref="Kept"/>). Each method updates one
/// parameter under no_grad (the caller's <c>_step</c>); a parameter's step count is raised by the caller first.
/// </summary>
internal static class TorchUpdates
{
    /// <summary>Adam, or AdamW with <paramref name="decoupled"/> (the weight decay applied to the parameter, not the
    /// gradient). With AMSGrad, <paramref name="maxExpAvgSq"/> (the state's) is updated in place.</summary>
    public static void Adam(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Tensor? maxExpAvgSq, long step,
        double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad, bool maximize, bool decoupled)
    {
        using var scope = NewDisposeScope();
        if (maximize) grad = grad.neg();
        if (decoupled)
        {
            using var keep = (1 - lr * weightDecay).ToScalar();
            param.mul_(keep);
        }
        else if (weightDecay != 0)
        {
            using var decay = weightDecay.ToScalar();
            grad = grad.add(param, decay);
        }
        var correction1 = 1 - Math.Pow(beta1, step);
        var correction2 = 1 - Math.Pow(beta2, step);
        using (var b1 = beta1.ToScalar())
        using (var rest1 = (1 - beta1).ToScalar())
            expAvg.mul_(b1).add_(grad, rest1);
        using (var b2 = beta2.ToScalar())
        using (var rest2 = (1 - beta2).ToScalar())
            expAvgSq.mul_(b2).addcmul_(grad, grad, rest2);
        var second = expAvgSq;
        if (amsgrad)
        {
            maxExpAvgSq!.copy_(maximum(maxExpAvgSq, expAvgSq));
            second = maxExpAvgSq;
        }
        using var root = Math.Sqrt(correction2).ToScalar();
        using var epsilon = eps.ToScalar();
        var denominator = second.sqrt().div(root).add_(epsilon, Kept.One);
        using var stepSize = (-(lr / correction1)).ToScalar();
        param.addcdiv_(expAvg, denominator, stepSize);
    }

    /// <summary>RMSprop (optionally centred, with momentum, weight decay, maximizing). <paramref name="momentumBuffer"/>
    /// and <paramref name="gradAvg"/> are the state's, needed only with momentum and centring.</summary>
    public static void RmsProp(Tensor param, Tensor grad, Tensor squareAvg, Tensor? momentumBuffer, Tensor? gradAvg,
        double lr, double alpha, double eps, double weightDecay, double momentum, bool centered, bool maximize)
    {
        using var scope = NewDisposeScope();
        if (maximize) grad = grad.neg();
        if (weightDecay != 0)
        {
            using var decay = weightDecay.ToScalar();
            grad = grad.add(param, decay);
        }
        using var a = alpha.ToScalar();
        using var rest = (1 - alpha).ToScalar();
        using var epsilon = eps.ToScalar();
        squareAvg.mul_(a).addcmul_(grad, grad, rest);
        Tensor avg;
        if (centered)
        {
            gradAvg!.mul_(a).add_(grad, rest);
            using var minusOne = (-1).ToScalar();
            avg = squareAvg.addcmul(gradAvg, gradAvg, minusOne).sqrt_().add_(epsilon, Kept.One);
        }
        else
        {
            avg = squareAvg.sqrt().add_(epsilon, Kept.One);
        }
        using var minusLr = (-lr).ToScalar();
        if (momentum > 0)
        {
            using var m = momentum.ToScalar();
            momentumBuffer!.mul_(m).addcdiv_(grad, avg, Kept.One);
            param.add_(momentumBuffer, minusLr);
        }
        else
        {
            param.addcdiv_(grad, avg, minusLr);
        }
    }

    /// <summary>SGD (momentum, dampening, Nesterov, weight decay, maximizing). Returns the momentum buffer: a new one
    /// (the gradient's copy, outside any dispose scope) at the first step with momentum, else <paramref name="buffer"/>.</summary>
    public static Tensor? Sgd(Tensor param, Tensor grad, Tensor? buffer, double lr, double momentum, double dampening,
        double weightDecay, bool nesterov, bool maximize)
    {
        using var scope = NewDisposeScope();
        if (weightDecay != 0)
        {
            using var decay = weightDecay.ToScalar();
            grad = grad.add(param, decay);
        }
        if (momentum != 0)
        {
            using var m = momentum.ToScalar();
            if (buffer is null)
            {
                buffer = grad.clone().detach().DetachFromDisposeScope();
            }
            else
            {
                using var undamped = (1 - dampening).ToScalar();
                buffer.mul_(m).add_(grad, undamped);
            }
            grad = nesterov ? grad.add(buffer, m) : buffer;
        }
        using var rate = (maximize ? lr : -lr).ToScalar();
        param.add_(grad, rate);
        return buffer;
    }

    /// <summary>Adagrad (learning-rate decay, weight decay) on a dense real gradient.</summary>
    public static void Adagrad(Tensor param, Tensor grad, Tensor sum, long step, double lr, double lrDecay, double eps,
        double weightDecay)
    {
        using var scope = NewDisposeScope();
        if (weightDecay != 0)
        {
            using var decay = weightDecay.ToScalar();
            grad = grad.add(param, decay);
        }
        if (grad.is_sparse) throw new NotSupportedException("Adagrad over sparse gradients is not supported.");
        if (is_complex(grad)) throw new NotSupportedException("Adagrad over complex parameters is not supported.");
        var rate = lr / (1 + (step - 1) * lrDecay);
        sum.addcmul_(grad, grad, Kept.One);
        using var epsilon = eps.ToScalar();
        var std = sum.sqrt().add_(epsilon, Kept.One);
        using var minusRate = (-rate).ToScalar();
        param.addcdiv_(grad, std, minusRate);
    }
}
