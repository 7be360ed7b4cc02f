using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>Accumulates exact epoch statistics over minibatches (sums, never means of means).</summary>
internal sealed class MetricAccumulator(Loss loss, IReadOnlyList<Metric> metrics)
{
    private double _lossSum, _lossCount, _correct, _counted, _sse, _sae, _ySum, _y2Sum, _n;

    public void Add(Tensor lossSum, Tensor lossCount, Tensor output, Tensor target, bool outputIsLogits)
    {
        _lossSum += lossSum.item<float>();
        _lossCount += lossCount.item<float>();
        if (metrics.Count == 0) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var o = output.detach();
        if (metrics.Contains(Metric.Accuracy))
        {
            Tensor hit, counted;
            switch (loss.Kind)
            {
                case LossKind.CrossEntropy:
                    var t = target.reshape(-1).to_type(ScalarType.Int64);
                    Tensor mask;
                    using (var ignored = loss.IgnoreIndex.ToScalar()) mask = t.ne(ignored);
                    hit = (o.reshape(-1, o.shape[^1]).argmax(-1) == t) & mask;
                    counted = mask;
                    break;
                case LossKind.BinaryCrossEntropy or LossKind.BinaryCrossEntropyWithLogits:
                    using (var threshold = (loss.Kind == LossKind.BinaryCrossEntropy && !outputIsLogits ? 0.5 : 0.0).ToScalar())
                    using (var half = 0.5.ToScalar())
                        hit = o.reshape(-1).gt(threshold) == target.reshape(-1).gt(half);
                    counted = ones_like(hit);
                    break;
                default:
                    hit = o.reshape(-1).round() == target.reshape(-1).to_type(o.dtype).round();
                    counted = ones_like(hit);
                    break;
            }
            _correct += hit.sum().item<long>();
            _counted += counted.sum().item<long>();
        }
        if (metrics.Any(m => m is Metric.Mse or Metric.Mae or Metric.R2))
        {
            var y = target.to_type(ScalarType.Float64).reshape(-1);
            var p = o.to_type(ScalarType.Float64).reshape(-1);
            var e = p - y;
            _sse += (e * e).sum().item<double>();
            _sae += e.abs().sum().item<double>();
            _ySum += y.sum().item<double>();
            _y2Sum += (y * y).sum().item<double>();
            _n += y.numel();
        }
    }

    /// <summary>The running sums (saved with a mid-epoch training state).</summary>
    public double[] Sums => [_lossSum, _lossCount, _correct, _counted, _sse, _sae, _ySum, _y2Sum, _n];

    /// <summary>Continues from saved running sums.</summary>
    public void Continue(double[] sums) =>
        (_lossSum, _lossCount, _correct, _counted, _sse, _sae, _ySum, _y2Sum, _n) =
        (sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7], sums[8]);

    public double MeanLoss => _lossCount == 0 ? double.NaN : _lossSum / _lossCount;

    public Dictionary<string, double> Result(string prefix = "")
    {
        var r = new Dictionary<string, double> { [prefix + "loss"] = MeanLoss };
        foreach (var m in metrics)
        {
            r[prefix + Name(m)] = m switch
            {
                Metric.Accuracy => _counted == 0 ? double.NaN : _correct / _counted,
                Metric.Perplexity => Math.Exp(MeanLoss),
                Metric.Mse => _sse / _n,
                Metric.Mae => _sae / _n,
                Metric.R2 => 1 - _sse / (_y2Sum - _ySum * _ySum / _n),
                _ => double.NaN,
            };
        }
        return r;
    }

    public static string Name(Metric m) => m.ToString().ToLowerInvariant();
}
