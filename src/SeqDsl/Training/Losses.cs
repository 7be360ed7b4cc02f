using SeqDsl.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>A loss and its options.</summary>
/// <param name="Kind">Which loss.</param>
/// <param name="IgnoreIndex">Target value skipped by per-token cross-entropy (padding).</param>
public sealed record Loss(LossKind Kind, long IgnoreIndex = -100)
{
    /// <summary>BCE on probabilities.</summary>
    public static Loss Bce => new(LossKind.BinaryCrossEntropy);
    /// <summary>BCE on logits.</summary>
    public static Loss BceWithLogits => new(LossKind.BinaryCrossEntropyWithLogits);
    /// <summary>Cross-entropy over classes.</summary>
    public static Loss CrossEntropy => new(LossKind.CrossEntropy);
    /// <summary>Mean squared error.</summary>
    public static Loss Mse => new(LossKind.MeanSquaredError);

    /// <summary>Whether the loss wants the final Dense's pre-activation output.</summary>
    internal bool WantsLogits(Activation output) => Kind == LossKind.CrossEntropy && output == Activation.Softmax;

    internal void CheckCompatible(Activation output)
    {
        if (Kind == LossKind.BinaryCrossEntropyWithLogits && output is Activation.Sigmoid or Activation.Softmax)
            throw new SeqDslException(ErrorKind.Spec,
                $"BinaryCrossEntropyWithLogits expects raw scores, but the model ends in Dense(…, {output}).")
            { Received = $"Dense(…, {output})", Expected = "a Linear final Dense, or the BinaryCrossEntropy loss" };
        if (Kind == LossKind.BinaryCrossEntropy && output != Activation.Sigmoid)
            throw new SeqDslException(ErrorKind.Spec,
                $"BinaryCrossEntropy reads probabilities, but the model ends in Dense(…, {output}).")
            { Received = $"Dense(…, {output})", Expected = "Dense(1, Sigmoid), or the BinaryCrossEntropyWithLogits loss" };
    }

    /// <summary>Sum of the per-element losses and the number of elements counted (for exact epoch means).</summary>
    internal (Tensor sum, Tensor count) SumAndCount(Tensor output, Tensor target)
    {
        switch (Kind)
        {
            case LossKind.CrossEntropy:
            {
                var classes = output.shape[^1];
                var flatOut = output.reshape(-1, classes);                          // (B·T, C)
                var flatTarget = target.reshape(-1).to_type(ScalarType.Int64);        // (B·T)
                var sum = nn.functional.cross_entropy(flatOut, flatTarget, ignore_index: IgnoreIndex, reduction: nn.Reduction.Sum);
                using var ignored = IgnoreIndex.ToScalar();
                var count = flatTarget.ne(ignored).sum().to_type(ScalarType.Float32);
                return (sum, count);
            }
            case LossKind.BinaryCrossEntropy:
            {
                var t = target.to_type(output.dtype).reshape(output.shape);
                // libtorch's BCE aborts on NaN probabilities; a NaN loss lets the trainer stop on it like the other losses
                if (!output.isfinite().all().item<bool>()) return (tensor(float.NaN), tensor((float)t.numel()));
                using var low = 1e-7.ToScalar();
                using var high = (1 - 1e-7).ToScalar();
                var p = output.clamp(low, high);
                return (nn.functional.binary_cross_entropy(p, t, reduction: nn.Reduction.Sum), tensor((float)t.numel()));
            }
            case LossKind.BinaryCrossEntropyWithLogits:
            {
                var t = target.to_type(output.dtype).reshape(output.shape);
                return (nn.functional.binary_cross_entropy_with_logits(output, t, reduction: nn.Reduction.Sum), tensor((float)t.numel()));
            }
            default:
            {
                var t = target.to_type(output.dtype).reshape(output.shape);
                return (nn.functional.mse_loss(output, t, reduction: nn.Reduction.Sum), tensor((float)t.numel()));
            }
        }
    }
}
