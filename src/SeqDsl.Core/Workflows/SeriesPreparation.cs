using System.Globalization;
using Microsoft.Data.Analysis;
using SeqDsl.Data;
using SeqDsl.Spec;

namespace SeqDsl.Workflows;

/// <summary>A series as training prepared it and as every engine that uses the model prepares it again (libtorch,
/// ONNX Runtime, the service): raw rows → lagged or derived feature columns and the target → scaled windows.</summary>
public static class SeriesPreparation
{
    /// <summary>The columns a series reads; they may not have empty cells (a row would otherwise vanish in DropNulls).</summary>
    public static IReadOnlyList<string> RequiredColumns(string featureSet, string? targetColumn, IReadOnlyList<string>? featureColumns) =>
        [.. targetColumn is string t ? [t] : (string[])["value|Close"], .. featureColumns ?? [],
         .. featureSet == "seed002" ? (string[])["Open", "High", "Low", "Close", "Volume"] : []];

    /// <summary>The series frame with its feature columns (lagged or derived) and target, as training built it: read from
    /// the data source (a CSV or the synthetic series), then <see cref="Features"/>.</summary>
    public static (DataFrame frame, List<string> features, string target, string featureSet) Frame(
        DataSource source, ExperimentSpec spec, TaskInfo? fitted)
    {
        var (featureSet, targetColumn, featureColumns) = Columns(spec, fitted);
        return Features(Raw(source, spec, fitted), featureSet, targetColumn, featureColumns);
    }

    /// <summary>The feature set, target and feature columns a series reads: a saved model's, else the spec's.</summary>
    private static (string FeatureSet, string? TargetColumn, IReadOnlyList<string>? FeatureColumns) Columns(ExperimentSpec spec, TaskInfo? fitted)
    {
        var p = spec.Preprocessing;
        return (fitted?.FeatureSet ?? p.FeatureSet, fitted?.TargetColumn ?? p.TargetColumn, fitted?.FeatureColumns ?? p.FeatureColumns);
    }

    /// <summary>The series' raw rows, read from the data source (a CSV or the synthetic series), their dates (when the
    /// file has a Date column) each later than the one before. Training needs every cell it reads. A trained model
    /// measuring or forecasting (<paramref name="fitted"/>) reads a raw-features file whose last row may leave the target
    /// empty (the day still to forecast, as a service request's last row); any other empty cell is an error naming its
    /// line and column, unless the preprocessing skips bad rows. (Dropping such rows silently joined the rows on either
    /// side into one window and shifted every forecast after it.)</summary>
    private static DataFrame Raw(DataSource source, ExperimentSpec spec, TaskInfo? fitted)
    {
        if (source.Kind == "synthetic") return Synthetic.Seasonal(1_500, spec.Training.Seed + 1);
        var (featureSet, targetColumn, featureColumns) = Columns(spec, fitted);
        var required = RequiredColumns(featureSet, targetColumn, featureColumns);
        string[] lastRow = [];
        if (fitted is not null && featureSet == "raw")
        {
            // the target (the first required entry) may be empty in the last row; a feature column named apart from it not
            var target = required[0];
            lastRow = [target];
            required = [.. required.Skip(1).Where(c => !target.Split('|').Contains(c))];
        }
        return Csv.Load(source.Path, new CsvOptions
        {
            Types = new Dictionary<string, ColumnType> { ["Date"] = ColumnType.Date }, Required = required, EmptyInLastRow = lastRow,
            Increasing = "Date", SkipBadRows = spec.Preprocessing.SkipBadRows,
        }).Frame;
    }

    /// <summary>Feature columns and target of raw rows: seed 002's derived features, or every raw feature column lagged
    /// one step (features known before the target's day).</summary>
    public static (DataFrame frame, List<string> features, string target, string featureSet) Features(
        DataFrame frame, string featureSet, string? targetColumn, IReadOnlyList<string>? featureColumns, bool keepUnknownTarget = false)
    {
        string target;
        List<string> features;
        if (featureSet == "seed002")
        {
            frame = SeriesFeatures.Seed002(frame);
            target = "close";
            features = frame.Columns.Select(c => c.Name).Where(n => n is not ("Date" or "close")).ToList();
        }
        else if (featureSet == "raw")
        {
            target = targetColumn ?? (frame.Columns.Any(c => c.Name == "value") ? "value" : "Close");
            var raw = featureColumns ?? [target];
            var lagged = new DataFrame();
            if (frame.Columns.Any(c => c.Name == "Date")) lagged.Columns.Add(frame.Columns["Date"]);
            features = [];
            foreach (var c in raw)
            {
                lagged.Columns.Add(new DoubleDataFrameColumn($"{c}_lag1", SeriesFeatures.Shift(SeriesFeatures.Values(frame, c), 1)));
                features.Add($"{c}_lag1");
            }
            lagged.Columns.Add(new DoubleDataFrameColumn(target, SeriesFeatures.Values(frame, target)));
            // a forecast may ask for a day whose value is not known yet (its target empty): only its features must be
            if (keepUnknownTarget)
            {
                var known = Enumerable.Range(0, (int)lagged.Rows.Count).Select(i => features.All(c => lagged.Columns[c][i] is not null)).ToArray();
                frame = lagged.Filter(new PrimitiveDataFrameColumn<bool>("known", known));
            }
            else
            {
                frame = lagged.DropNulls();
            }
        }
        else
        {
            throw new SeqDslException(ErrorKind.Spec, $"Unknown feature set '{featureSet}'.") { Received = featureSet, Expected = "raw or seed002" };
        }
        return (frame, features, target, featureSet);
    }

    /// <summary>The one windowing of a series: scaled features, windows of <paramref name="window"/> rows, each labelled
    /// with the target of its last row (scaled by <paramref name="targetScaler"/> when the model learns a scaled target).</summary>
    public static ArrayData Windows(DataFrame f, StandardScaler scaler, string target, int window, StandardScaler? targetScaler = null) =>
        Data.Windows.Sliding(scaler.Transform(f), scaler.Columns.Count, Targets(f, target, targetScaler), window);

    /// <summary>The target column as the network learns it: scaled when the model has a target scaler; NaN where unknown.</summary>
    private static double[] Targets(DataFrame f, string target, StandardScaler? targetScaler) =>
        SeriesFeatures.Values(f, target).Select(v => v is double x ? targetScaler?.Scale(x) ?? x : double.NaN).ToArray();

    /// <summary>Every window of a series CSV, prepared with a trained model's task description, and the label of each
    /// (the date of its last row, or its row number).</summary>
    public static (ArrayData windows, string[] labels) ForPrediction(TaskInfo info, string csvPath)
    {
        // the file's rows as a service request's: its last row may ask for the day whose value is not known yet
        var spec = new ExperimentSpec { Data = "series:" + csvPath };
        return ForPrediction(info, Raw(DataSource.Parse(spec.Data), spec, info));
    }

    /// <summary>Every window of raw rows (columns as in the training CSV), prepared with a trained model's task description;
    /// a last row with the date to forecast and an empty target asks for the value after the data (raw features).</summary>
    public static (ArrayData windows, string[] labels) ForPrediction(TaskInfo info, DataFrame raw)
    {
        var (frame, _, target, _) = Features(raw, info.FeatureSet ?? "raw", info.TargetColumn, info.FeatureColumns, keepUnknownTarget: true);
        return ForPrediction(info, frame, target, raw.Rows.Count);
    }

    /// <summary>Windows for forecasting: every window, the last one ending at the last row; each labelled by the date
    /// (or row) whose value it forecasts.</summary>
    private static (ArrayData windows, string[] labels) ForPrediction(TaskInfo info, DataFrame frame, string target, long? given)
    {
        var window = info.Window ?? 5;
        var scaler = info.Scaler ?? throw new SeqDslException(ErrorKind.Data, "The model's task description has no fitted scaler: it was not trained on a series.");
        if (frame.Rows.Count < window)
            throw new SeqDslException(ErrorKind.Data, $"A forecast reads windows of {window} rows; "
                + (info.FeatureSet == "seed002" ? "the derived price features use the first rows up." : "the first row only feeds the one-day lag of the features."))
            {
                Received = given is long g ? $"{g} rows ({frame.Rows.Count} usable)" : $"{frame.Rows.Count} usable rows",
                Expected = info.FeatureSet == "seed002" ? $"{window} usable rows (seed 002's features need about 250 rows before them)" : $"at least {window + 1} rows",
            };
        var data = Data.Windows.Ending(scaler.Transform(frame), scaler.Columns.Count, Targets(frame, target, info.TargetScaler), window);
        var dates = frame.Columns.Any(c => c.Name == "Date") ? frame.Columns["Date"] : null;
        string Label(int i) => dates?[i + window - 1] is DateTime d ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : $"row {i + window}";
        return (data, Enumerable.Range(0, (int)data.Count).Select(Label).ToArray());
    }
}
