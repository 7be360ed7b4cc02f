using System.Globalization;
using System.Text;

namespace SeqDsl.Training;

/// <summary>One epoch's metrics (train and, when there is validation data, val_*) and timing.</summary>
public sealed record EpochRecord(int Epoch, double Seconds, double LearningRate, IReadOnlyDictionary<string, double> Values)
{
    /// <summary>A value by name (loss, accuracy, val_loss, …); NaN when absent.</summary>
    public double this[string name] => Values.TryGetValue(name, out var v) ? v : double.NaN;

    /// <summary>"epoch 3, loss 0.1234, accuracy 0.9500, val_loss …, 1.2 sec".</summary>
    public override string ToString() =>
        $"epoch {Epoch}, " + string.Join(", ", Values.Select(kv => $"{kv.Key} {kv.Value.ToString("0.0000", CultureInfo.InvariantCulture)}"))
        + $", {Seconds.ToString("0.0", CultureInfo.InvariantCulture)} sec";
}

/// <summary>What <c>Fit</c> returns: per-epoch records and why training stopped early, if it did.</summary>
public sealed class History
{
    private readonly List<EpochRecord> _epochs = [];

    /// <summary>The epochs, in order.</summary>
    public IReadOnlyList<EpochRecord> Epochs => _epochs;
    /// <summary>Null when every epoch ran; otherwise why training stopped (non-finite loss, early stopping, cancellation).</summary>
    public string? StopReason { get; internal set; }
    /// <summary>True when training stopped on a NaN or infinite loss.</summary>
    public bool StoppedOnNonFiniteLoss { get; internal set; }
    /// <summary>The epoch whose weights the network holds after early stopping with restore, if any.</summary>
    public int? RestoredEpoch { get; internal set; }

    internal void Add(EpochRecord r) => _epochs.Add(r);

    /// <summary>One line per epoch ("epoch 1, loss …, 0.4 sec"), then why training stopped early, if it did.</summary>
    public override string ToString()
    {
        if (_epochs.Count == 0) return "no epochs";
        var lines = _epochs.Select(e => e.ToString()).ToList();
        if (StopReason is not null) lines.Add("stopped: " + StopReason);
        if (RestoredEpoch is int r) lines.Add($"weights restored from epoch {r}");
        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>Values of one metric over the epochs.</summary>
    public IReadOnlyList<double> Series(string name) => _epochs.Select(e => e[name]).ToList();

    /// <summary>CSV with a header: epoch, seconds, lr, then every metric column.</summary>
    public string ToCsv()
    {
        var columns = _epochs.SelectMany(e => e.Values.Keys).Distinct().ToList();
        var sb = new StringBuilder("epoch,seconds,lr");
        foreach (var c in columns) sb.Append(',').Append(c);
        sb.Append('\n');
        foreach (var e in _epochs)
        {
            sb.Append(e.Epoch).Append(',').Append(e.Seconds.ToString("R", CultureInfo.InvariantCulture))
              .Append(',').Append(e.LearningRate.ToString("R", CultureInfo.InvariantCulture));
            foreach (var c in columns) sb.Append(',').Append(e[c].ToString("R", CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    internal static History FromCsv(string csv)
    {
        var h = new History();
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) return h;
        var head = lines[0].Split(',');
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split(',');
            var values = new Dictionary<string, double>();
            for (var i = 3; i < head.Length; i++) values[head[i]] = double.Parse(f[i], CultureInfo.InvariantCulture);
            h.Add(new EpochRecord(int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture),
                double.Parse(f[2], CultureInfo.InvariantCulture), values));
        }
        return h;
    }
}
