using System.Globalization;
using SeqDsl.Spec;
using SeqDsl.Training;

namespace SeqDsl.Workflows;

/// <summary>One prediction of a classifier or regressor.</summary>
/// <param name="Input">What was given (text, or a row's date for series).</param>
/// <param name="Value">Probability of class 1, the probability of the predicted class, or the predicted value.</param>
/// <param name="Label">The class (0/1 or index) for classifiers; null for regression.</param>
public sealed record Prediction(string Input, double Value, int? Label)
{
    /// <summary>Every class's probability (classifiers with two or more outputs); null otherwise.</summary>
    public IReadOnlyList<double>? Probabilities { get; init; }

    /// <summary>The name of class <see cref="Label"/> when the model was trained on named labels
    /// (<see cref="TaskInfo.ClassNames"/>); null otherwise.</summary>
    public string? ClassName { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        Label is int label
            ? $"{ClassName ?? label.ToString(CultureInfo.InvariantCulture)} ({Value.ToString("0.0000", CultureInfo.InvariantCulture)})  {Input}"
            : $"{Value.ToString("0.######", CultureInfo.InvariantCulture)}  {Input}";
}

/// <summary>The one reading of a model's outputs as predictions, whichever engine computed them (libtorch or ONNX
/// Runtime): a sigmoid for a binary classifier that outputs logits, a softmax for classes unless the model ends in
/// one, the label and its class name, or for regression the value itself, scaled back into the target's units when the
/// model learnt a scaled target (<see cref="TaskInfo.TargetScaler"/>).</summary>
public static class Predictions
{
    /// <summary>Predictions of <paramref name="inputs"/>.Count rows of <paramref name="width"/> outputs each (row-major).</summary>
    public static IReadOnlyList<Prediction> FromOutputs(IReadOnlyList<string> inputs, ReadOnlySpan<float> outputs, int width,
        TaskInfo info, Activation outputActivation)
    {
        if (outputs.Length != inputs.Count * width)
            throw new ArgumentException($"{outputs.Length} outputs for {inputs.Count} inputs of width {width}.", nameof(outputs));
        var result = new List<Prediction>(inputs.Count);
        for (var i = 0; i < inputs.Count; i++)
        {
            var row = outputs.Slice(i * width, width);
            if (info.Kind == TaskKind.Regression)
                result.Add(new Prediction(inputs[i], info.TargetScaler is { } target ? target.Unscale(row[0]) : row[0], null));
            else if (width == 1)
            {
                double v = row[0];
                var p = info.Loss == LossKind.BinaryCrossEntropyWithLogits ? 1 / (1 + Math.Exp(-v)) : v;
                var label = p >= 0.5 ? 1 : 0;
                result.Add(new Prediction(inputs[i], p, label) { ClassName = NameOf(info, label) });
            }
            else
            {
                var probs = outputActivation == Activation.Softmax ? row.ToArray().Select(v => (double)v).ToArray() : Softmax(row);
                var best = 0;
                for (var k = 1; k < width; k++) if (probs[k] > probs[best]) best = k;
                result.Add(new Prediction(inputs[i], probs[best], best) { Probabilities = probs, ClassName = NameOf(info, best) });
            }
        }
        return result;
    }

    /// <summary>The name of class <paramref name="label"/>, or null (labels were indices, or a class no training label named).</summary>
    private static string? NameOf(TaskInfo info, int label) =>
        info.ClassNames is { } names && label < names.Count ? names[label] : null;

    /// <summary>Probabilities of scores (a numerically stable softmax, in double precision).</summary>
    public static double[] Softmax(ReadOnlySpan<float> scores)
    {
        var probs = new double[scores.Length];
        double max = double.NegativeInfinity, sum = 0;
        foreach (var v in scores) max = Math.Max(max, v);
        for (var k = 0; k < scores.Length; k++) sum += probs[k] = Math.Exp(scores[k] - max);
        for (var k = 0; k < scores.Length; k++) probs[k] /= sum;
        return probs;
    }
}
