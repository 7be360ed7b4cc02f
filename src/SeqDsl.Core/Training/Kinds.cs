namespace SeqDsl.Training;

/// <summary>The losses the textbooks train with.</summary>
public enum LossKind
{
    /// <summary>Binary cross-entropy on probabilities (a model ending in Dense(1, Sigmoid)); targets 0/1.</summary>
    BinaryCrossEntropy,
    /// <summary>Binary cross-entropy on raw scores (a model ending in a Linear Dense); targets 0/1.</summary>
    BinaryCrossEntropyWithLogits,
    /// <summary>Cross-entropy over classes: outputs (B, C) with targets (B), or per time step (B, T, C) with
    /// targets (B, T) where <c>Loss.IgnoreIndex</c> marks padding. A Softmax output is handled on its logits.</summary>
    CrossEntropy,
    /// <summary>Mean squared error.</summary>
    MeanSquaredError,
}

/// <summary>Metrics reported per epoch besides the loss.</summary>
public enum Metric
{
    /// <summary>Binary (threshold 0.5 on probabilities, 0 on logits), multiclass (argmax), or rounded (regression, seed 000's counting).</summary>
    Accuracy,
    /// <summary>exp of the mean per-token cross-entropy.</summary>
    Perplexity,
    /// <summary>Mean squared error.</summary>
    Mse,
    /// <summary>Mean absolute error.</summary>
    Mae,
    /// <summary>Coefficient of determination, 1 − SSE/SST.</summary>
    R2,
}
