using System.Text.Json;
using Microsoft.Data.Analysis;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Derived features of a time series, column by column on a <see cref="DataFrame"/> (pandas semantics:
/// missing values are null, rolling windows need a full window, standard deviations use ddof = 1).</summary>
public static class SeriesFeatures
{
    /// <summary>The column as nullable doubles.</summary>
    public static double?[] Values(DataFrame frame, string column)
    {
        if (!frame.Columns.Any(c => c.Name == column))
            throw new SeqDslException(ErrorKind.Data, $"No column '{column}'.")
            { Received = column, Expected = "one of " + string.Join(", ", frame.Columns.Select(c => c.Name)) };
        var col = frame.Columns[column];
        return Enumerable.Range(0, (int)col.Length).Select(i => col[i] switch
        {
            null => (double?)null,
            double d => d,
            float f => f,
            long l => l,
            int n => n,
            var o => throw new SeqDslException(ErrorKind.Data, $"Column '{column}' is not numeric.") { Received = o.GetType().Name, Expected = "numbers" },
        }).ToArray();
    }

    /// <summary>x[t − k] (pandas shift(k)).</summary>
    public static double?[] Shift(double?[] x, int k) =>
        Enumerable.Range(0, x.Length).Select(t => t - k >= 0 && t - k < x.Length ? x[t - k] : null).ToArray();

    /// <summary>Mean of the last <paramref name="w"/> values (pandas rolling(w).mean()).</summary>
    public static double?[] RollingMean(double?[] x, int w) => Rolling(x, w, v => v.Average());

    /// <summary>Sample standard deviation of the last <paramref name="w"/> values (pandas rolling(w).std(), ddof = 1).</summary>
    public static double?[] RollingStd(double?[] x, int w) => Rolling(x, w, v =>
    {
        var m = v.Average();
        return Math.Sqrt(v.Sum(a => (a - m) * (a - m)) / (v.Length - 1));
    });

    /// <summary>(x[t] − x[t − k]) / x[t − k].</summary>
    public static double?[] Return(double?[] x, int k) =>
        Enumerable.Range(0, x.Length).Select(t => t - k >= 0 && x[t] is double a && x[t - k] is double b ? (a - b) / b : (double?)null).ToArray();

    /// <summary>a / b elementwise.</summary>
    public static double?[] Ratio(double?[] a, double?[] b) =>
        a.Zip(b, (p, q) => p is double x && q is double y ? x / y : (double?)null).ToArray();

    private static double?[] Rolling(double?[] x, int w, Func<double[], double> f)
    {
        var r = new double?[x.Length];
        for (var t = w - 1; t < x.Length; t++)
        {
            var window = new double[w];
            var ok = true;
            for (var k = 0; k < w && ok; k++)
            {
                if (x[t - w + 1 + k] is double v) window[k] = v;
                else ok = false;
            }
            if (ok) r[t] = f(window);
        }
        return r;
    }

    /// <summary>
    /// Seed 002's (PMLbE ch. 6) 37 features from Date/Open/High/Low/Close/Volume, each known the
    /// morning of day t: open; yesterday's open, close, high, low, volume; averages and standard
    /// deviations of close and volume over 5, 21 and 252 days (with their three ratios each);
    /// returns over 1, 5, 21, 252 days; moving averages of the 1-day return over 5, 21, 252 days.
    /// Plus the target column <c>close</c> and <c>Date</c>. Rows with a missing value are dropped.
    /// </summary>
    public static DataFrame Seed002(DataFrame prices)
    {
        var open = Values(prices, "Open");
        var high = Values(prices, "High");
        var low = Values(prices, "Low");
        var close = Values(prices, "Close");
        var volume = Values(prices, "Volume");
        var f = new List<(string, double?[])>
        {
            ("open", open), ("open_1", Shift(open, 1)), ("close_1", Shift(close, 1)), ("high_1", Shift(high, 1)),
            ("low_1", Shift(low, 1)), ("volume_1", Shift(volume, 1)),
        };
        void Trio(string name, double?[] x, Func<double?[], int, double?[]> op)
        {
            var a5 = Shift(op(x, 5), 1);
            var a30 = Shift(op(x, 21), 1);
            var a365 = Shift(op(x, 252), 1);
            f.AddRange([($"{name}_5", a5), ($"{name}_30", a30), ($"{name}_365", a365),
                ($"ratio_{name}_5_30", Ratio(a5, a30)), ($"ratio_{name}_5_365", Ratio(a5, a365)), ($"ratio_{name}_30_365", Ratio(a30, a365))]);
        }
        Trio("avg_price", close, RollingMean);
        Trio("avg_volume", volume, RollingMean);
        Trio("std_price", close, RollingStd);
        Trio("std_volume", volume, RollingStd);
        var r1 = Shift(Return(close, 1), 1);
        f.AddRange([("return_1", r1), ("return_5", Shift(Return(close, 5), 1)), ("return_30", Shift(Return(close, 21), 1)),
            ("return_365", Shift(Return(close, 252), 1)), ("moving_avg_5", Shift(RollingMean(r1, 5), 1)),
            ("moving_avg_30", Shift(RollingMean(r1, 21), 1)), ("moving_avg_365", Shift(RollingMean(r1, 252), 1))]);
        f.Add(("close", close));
        var keep = Enumerable.Range(0, close.Length).Where(t => f.All(c => c.Item2[t] is double d && double.IsFinite(d))).ToArray();
        var cols = new List<DataFrameColumn>();
        if (prices.Columns.Any(c => c.Name == "Date"))
        {
            var date = prices.Columns["Date"];
            cols.Add(new PrimitiveDataFrameColumn<DateTime>("Date", keep.Select(t => (DateTime?)date[t])));
        }
        cols.AddRange(f.Select(c => (DataFrameColumn)new DoubleDataFrameColumn(c.Item1, keep.Select(t => c.Item2[t]))));
        return new DataFrame(cols);
    }
}

/// <summary>z = (x − mean) / std per feature, fitted on the training period only (sklearn StandardScaler: population std).</summary>
public sealed record StandardScaler(IReadOnlyList<string> Columns, IReadOnlyList<double> Mean, IReadOnlyList<double> Std)
{
    /// <summary>Fits means and standard deviations of the columns.</summary>
    public static StandardScaler Fit(DataFrame train, IReadOnlyList<string> columns)
    {
        var means = new List<double>();
        var stds = new List<double>();
        foreach (var c in columns)
        {
            var v = SeriesFeatures.Values(train, c).Select(x => x ?? throw new SeqDslException(ErrorKind.Data, $"Column '{c}' has missing values; drop or fill them before scaling.")).ToArray();
            var m = v.Average();
            var s = Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / v.Length);
            means.Add(m);
            stds.Add(s == 0 ? 1 : s); // sklearn leaves constant features unscaled
        }
        return new StandardScaler(columns, means, stds);
    }

    /// <summary>The scaled features, row-major (rows, features).</summary>
    public float[] Transform(DataFrame frame)
    {
        var rows = (int)frame.Rows.Count;
        var data = new float[rows * Columns.Count];
        for (var j = 0; j < Columns.Count; j++)
        {
            var v = SeriesFeatures.Values(frame, Columns[j]);
            for (var i = 0; i < rows; i++)
                data[i * Columns.Count + j] = (float)(((v[i] ?? double.NaN) - Mean[j]) / Std[j]);
        }
        return data;
    }

    /// <summary>z = (x − mean) / std of column <paramref name="j"/>.</summary>
    public double Scale(double x, int j = 0) => (x - Mean[j]) / Std[j];

    /// <summary>x = z · std + mean of column <paramref name="j"/>: a scaled value back in the column's units.</summary>
    public double Unscale(double z, int j = 0) => z * Std[j] + Mean[j];

    /// <summary>JSON form (saved with a model).</summary>
    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>Reads the JSON form.</summary>
    public static StandardScaler FromJson(string json) =>
        JsonSerializer.Deserialize<StandardScaler>(json) ?? throw new SeqDslException(ErrorKind.Data, "Invalid scaler JSON.");
}

/// <summary>Sliding windows over rows and date splits.</summary>
public static class Windows
{
    /// <summary>Every window of <paramref name="length"/> rows, the last one ending at the last row (what a forecast
    /// asks for; training keeps seed 002's <see cref="Sliding"/>, which stops one window earlier): inputs (N, length, F)
    /// with N = rows − length + 1, targets (N, 1) = the target of each window's last row (NaN where unknown).</summary>
    public static ArrayData Ending(float[] features, int featureCount, double[] target, int length)
    {
        var rows = featureCount < 1 ? 0 : features.Length / featureCount;
        if (length < 1 || rows - length + 1 < 1)
            throw new SeqDslException(ErrorKind.Data, $"A window of {length} rows needs {length} usable rows.")
            { Received = $"{rows} usable rows", Expected = $"at least {length}" };
        return Cut(features, featureCount, target, length, rows - length + 1);
    }

    /// <summary>The first <paramref name="n"/> windows of <paramref name="length"/> rows, each labelled with the target
    /// of its last row.</summary>
    private static ArrayData Cut(float[] features, int featureCount, double[] target, int length, int n)
    {
        var x = new float[(long)n * length * featureCount];
        for (var i = 0; i < n; i++)
            Array.Copy(features, (long)i * featureCount, x, (long)i * length * featureCount, (long)length * featureCount);
        var y = Enumerable.Range(0, n).Select(i => (float)target[i + length - 1]).ToArray();
        return new ArrayData(x, [n, length, featureCount], y, [n, 1]);
    }

    /// <summary>Seed 002's create_sequences: for i in 0 .. rows − length − 1, input rows [i, i + length), label = target
    /// of the window's last row. Features (rows, F) row-major → inputs (N, length, F), targets (N, 1).</summary>
    public static ArrayData Sliding(float[] features, int featureCount, double[] target, int length)
    {
        var rows = featureCount < 1 ? 0 : features.Length / featureCount;
        var n = rows - length;
        if (length < 1 || n < 1)
            throw new SeqDslException(ErrorKind.Data, $"Windows of {length} rows need more than {length} rows.")
            { Received = $"{rows} rows", Expected = $"more than {length}" };
        return Cut(features, featureCount, target, length, n);
    }

    /// <summary>Rows whose date lies in [from, to] (inclusive).</summary>
    public static DataFrame Between(DataFrame frame, DateTime from, DateTime to, string dateColumn = "Date")
    {
        var d = frame.Columns[dateColumn];
        var mask = new BooleanDataFrameColumn("mask", Enumerable.Range(0, (int)d.Length).Select(i => d[i] is DateTime t && t >= from && t <= to));
        return frame.Filter(mask);
    }
}
