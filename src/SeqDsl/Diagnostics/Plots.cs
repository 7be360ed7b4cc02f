using System.Globalization;
using SeqDsl.Training;

namespace SeqDsl.Diagnostics;

/// <summary>One panel of the learning curves: one quantity (the loss or one metric) on its own single y axis, with its
/// training series and, when the history holds it, its validation series (<c>val_</c> + the quantity).</summary>
/// <param name="Quantity">"loss", "accuracy", "perplexity", "r2", "mae", "mse", or any other name the history holds.</param>
/// <param name="Keys">The history's keys drawn in the panel: the quantity, then <c>val_</c> + the quantity, those present.</param>
/// <param name="LogScale">Whether the y axis is logarithmic (<see cref="Plots.NeedsLogScale"/> over both series).</param>
public sealed record CurvePanel(string Quantity, IReadOnlyList<string> Keys, bool LogScale);

/// <summary>PNG plots people would rather look at than read. Every plot is written in one rename (a reader sees the
/// old file or the whole new one), has its legend outside the data area, and draws a positive quantity spanning more
/// than <see cref="LogScaleRatio"/>× on a logarithmic y axis labelled so.</summary>
public static class Plots
{
    /// <summary>Width of the learning-curves image in pixels.</summary>
    public const int Width = 900;

    /// <summary>Height in pixels that each panel of the learning curves adds to the image (the title adds its own).</summary>
    public const int PanelHeight = 260;

    /// <summary>A positive series whose largest finite value is more than this many times its smallest is drawn on a
    /// logarithmic axis: on a linear one everything near the small end looks like zero.</summary>
    public const double LogScaleRatio = 20;

    // The metrics' panel order under the loss; any other quantity follows in the order the history first holds it.
    private static readonly string[] MetricOrder = ["accuracy", "perplexity", "r2", "mae", "mse"];

    private const float LeftMargin = 90, RightMargin = 150, BottomMargin = 48, TopMargin = 14;
    private const float TitleFontSize = 16, AxisLabelFontSize = 14;

    /// <summary>Whether a series belongs on a logarithmic axis: its finite values are all positive and the largest is more
    /// than <see cref="LogScaleRatio"/> times the smallest. Non-finite values (a diverged epoch) are ignored.</summary>
    public static bool NeedsLogScale(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        if (finite.Count == 0 || finite.Any(v => v <= 0)) return false;
        return finite.Max() / finite.Min() > LogScaleRatio;
    }

    /// <summary>The panels of <see cref="LearningCurves"/>: the loss first, then one per metric the history holds
    /// (accuracy, perplexity, r2, mae, mse, then any other), each with its training and validation series.</summary>
    public static IReadOnlyList<CurvePanel> CurvePanels(History history)
    {
        var keys = history.Epochs.SelectMany(e => e.Values.Keys).Distinct().ToList();
        static string QuantityOf(string key) => key.StartsWith("val_", StringComparison.Ordinal) ? key[4..] : key;
        int Rank(string q) => q == "loss" ? -1 : Array.IndexOf(MetricOrder, q) is var i and >= 0 ? i : MetricOrder.Length;
        return keys.Select(QuantityOf).Distinct()
            .OrderBy(Rank) // stable: other quantities keep the history's order
            .Select(q =>
            {
                var own = new[] { q, "val_" + q }.Where(keys.Contains).ToList();
                return new CurvePanel(q, own, NeedsLogScale(own.SelectMany(history.Series)));
            })
            .ToList();
    }

    /// <summary>Learning curves per epoch: one panel per quantity (<see cref="CurvePanels"/>) stacked top to bottom, so
    /// no series shares an axis with another quantity; training solid, validation dashed, the legend beside each
    /// panel. Written atomically as a PNG <see cref="Width"/> wide.</summary>
    public static void LearningCurves(History history, string path, string title = "learning curves")
    {
        var figure = LearningCurvesFigure(history, title);
        SavePng(figure.Plots, path, figure.Width, figure.Height);
    }

    /// <summary>The learning-curves figure, not yet rendered, and its size.</summary>
    internal sealed record Figure(ScottPlot.Multiplot Plots, IReadOnlyList<CurvePanel> Panels, int Width, int Height);

    internal static Figure LearningCurvesFigure(History history, string title)
    {
        var panels = CurvePanels(history);
        if (panels.Count == 0)
            throw new Spec.SeqDslException(Spec.ErrorKind.Data, "A history with at least one value is needed to plot learning curves.")
            { Received = $"{history.Epochs.Count} epochs, no values" };
        var titleBand = TitleBand(title);
        var heights = panels.Select((_, i) => (float)PanelHeight + (i == 0 ? titleBand - TopMargin : 0)).ToArray();
        var markers = history.Epochs.Count <= 40;
        var plots = panels.Select((p, i) => Panel(history, p, markers, top: i == 0 ? titleBand : TopMargin)).ToArray();
        FittedTitle(plots[0], title, Width);
        var multiplot = new ScottPlot.Multiplot(plots[0]);
        foreach (var p in plots.Skip(1)) ScottPlot.IMultiplotExtensions.AddPlot(multiplot, p);
        multiplot.Layout = new StackedRows(heights);
        return new Figure(multiplot, panels, Width, (int)Math.Ceiling(heights.Sum()));
    }

    private static ScottPlot.Plot Panel(History history, CurvePanel panel, bool markers, float top)
    {
        var plt = new ScottPlot.Plot();
        var epochs = history.Epochs.Select(e => (double)e.Epoch).ToArray();
        var drawn = 0;
        foreach (var key in panel.Keys)
        {
            var validation = key.StartsWith("val_", StringComparison.Ordinal);
            var s = Line(plt, epochs, history.Series(key), panel.LogScale, validation ? "validation" : "training", validation ? 1 : 0,
                dashed: validation, markers);
            if (s is not null) drawn++;
        }
        if (drawn == 0) plt.Add.Annotation($"no finite {panel.Quantity} recorded");
        YAxis(plt, Display(panel.Quantity), panel.LogScale, panel.Keys.SelectMany(history.Series));
        plt.Axes.Bottom.Label.Text = "epoch";
        plt.Axes.Bottom.Label.FontSize = AxisLabelFontSize;
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plt.ShowLegend(ScottPlot.Edge.Right);
        // the same margins in every panel line their data areas up under each other; the legend sits in the right one
        plt.Layout.Fixed(new ScottPlot.PixelPadding(LeftMargin, RightMargin, BottomMargin, top));
        return plt;
    }

    /// <summary>Adds one series as a line in the <paramref name="colour"/>-th colour of Category10 (finite points only;
    /// on a log axis, log10 of the positive ones). Null when no point is left to draw.</summary>
    internal static ScottPlot.Plottables.Scatter? Line(ScottPlot.Plot plt, IReadOnlyList<double> xs, IReadOnlyList<double> ys,
        bool log, string legend, int colour, bool dashed, bool markers)
    {
        var points = xs.Zip(ys).Where(p => double.IsFinite(p.Second) && (!log || p.Second > 0)).ToArray();
        if (points.Length == 0) return null;
        var s = plt.Add.Scatter(points.Select(p => p.First).ToArray(), points.Select(p => log ? Math.Log10(p.Second) : p.Second).ToArray());
        s.LegendText = legend;
        s.Color = new ScottPlot.Palettes.Category10().GetColor(colour);
        s.LineWidth = 2;
        s.MarkerSize = markers ? 5 : 0;
        if (dashed) s.LinePattern = ScottPlot.LinePattern.Dashed;
        return s;
    }

    /// <summary>Labels the left axis; on a log axis (values drawn as log10) the label says "(log scale)" and the ticks are
    /// <see cref="LogTicks"/> over the finite positive values.</summary>
    internal static void YAxis(ScottPlot.Plot plt, string label, bool log, IEnumerable<double> values)
    {
        var axis = plt.Axes.Left;
        axis.Label.Text = log ? label + " (log scale)" : label;
        axis.Label.FontSize = AxisLabelFontSize;
        var positive = values.Where(v => double.IsFinite(v) && v > 0).ToList();
        if (log && positive.Count > 0) axis.TickGenerator = new ScottPlot.TickGenerators.NumericManual(LogTicks(positive.Min(), positive.Max()));
    }

    /// <summary>Ticks for an axis that holds log10 of values from <paramref name="min"/> to <paramref name="max"/> (both
    /// positive), labelled with the values themselves: every decade (every second, third … when more than eight are in
    /// view), also 2 and 5 × each decade when the values span fewer than 2.5 decades, and unlabelled minor ticks at the
    /// other multiples. Labels are plain numbers (0.002, 5000) when the values lie within 0.0001 … 100000, else 1e-5, 2e7.</summary>
    internal static ScottPlot.Tick[] LogTicks(double min, double max)
    {
        var (lo, hi) = ((int)Math.Floor(Math.Log10(min)) - 1, (int)Math.Ceiling(Math.Log10(max)) + 1); // the axis margins too
        var every = Math.Max(1, (int)Math.Ceiling((hi - lo - 2) / 8.0));
        var fine = Math.Log10(max / min) < 2.5;
        var plain = Math.Log10(min) >= -4 && Math.Log10(max) <= 5; // 0.0001 … 100000, and a decade beyond
        var ticks = new List<ScottPlot.Tick>();
        for (var k = lo; k <= hi; k++)
            for (var m = 1; m <= 9; m++)
            {
                var at = k + Math.Log10(m);
                var labelled = m == 1 ? ((k % every) + every) % every == 0 : fine && m is 2 or 5;
                if (!labelled) ticks.Add(ScottPlot.Tick.Minor(at));
                else if (plain) ticks.Add(ScottPlot.Tick.Major(at, (m * Math.Pow(10, k)).ToString("0.######", CultureInfo.InvariantCulture)));
                else ticks.Add(ScottPlot.Tick.Major(at, $"{m}e{k}"));
            }
        return ticks.ToArray();
    }

    private static string Display(string quantity) => quantity switch
    {
        "r2" => "R²",
        "mae" => "MAE",
        "mse" => "MSE",
        _ => quantity,
    };

    /// <summary>Height of the band above the first panel that holds the title (one line per title line).</summary>
    private static float TitleBand(string title) => TopMargin + 10 + (title ?? "").Split('\n').Length * TitleFontSize * 1.5f;

    /// <summary>Sets the title, shrinking the font so that its longest line fits the image's width.</summary>
    internal static void FittedTitle(ScottPlot.Plot plt, string title, int width)
    {
        title ??= "";
        plt.Title(title);
        var label = plt.Axes.Title.Label;
        label.FontSize = TitleFontSize;
        var longest = title.Split('\n').Max(l => l.Length);
        var fits = (width - 40) / (0.6 * Math.Max(1, longest)); // a glyph is about 0.6 em wide
        label.FontSize = (float)Math.Min(label.FontSize, Math.Max(9, fits));
    }

    /// <summary>Renders and writes a PNG in one rename (<see cref="Durable.ReplaceFile"/>).</summary>
    internal static void SavePng(ScottPlot.Plot plt, string path, int width, int height) =>
        Durable.ReplaceFile(path, plt.GetImageBytes(width, height, ScottPlot.ImageFormat.Png));

    private static void SavePng(ScottPlot.Multiplot plots, string path, int width, int height)
    {
        using var image = ScottPlot.IMultiplotExtensions.Render(plots, width, height);
        Durable.ReplaceFile(path, image.GetImageBytes(ScottPlot.ImageFormat.Png, 100));
    }

    /// <summary>Panels stacked top to bottom with the given heights in pixels, each the figure's full width.</summary>
    private sealed class StackedRows(float[] heights) : ScottPlot.IMultiplotLayout
    {
        public ScottPlot.PixelRect[] GetSubplotRectangles(ScottPlot.SubplotCollection subplots, ScottPlot.PixelRect figure)
        {
            var rects = new ScottPlot.PixelRect[subplots.Count];
            var top = figure.Top;
            for (var i = 0; i < rects.Length; i++)
            {
                var h = heights[i] * figure.Height / heights.Sum(); // the figure as rendered, if not the size asked for
                rects[i] = new ScottPlot.PixelRect(figure.Left, figure.Right, top + h, top);
                top += h;
            }
            return rects;
        }
    }

    /// <summary>An attention heat map: one cell per token, shaded by its alignment weight α_t.</summary>
    public static void AttentionHeatmap(IReadOnlyList<string> tokens, IReadOnlyList<double> weights, string path, string title = "attention")
    {
        if (tokens.Count != weights.Count || tokens.Count == 0)
            throw new Spec.SeqDslException(Spec.ErrorKind.Data, "One weight per token is needed.")
            { Received = $"{tokens.Count} tokens, {weights.Count} weights", Expected = "equal, non-zero counts" };
        var plt = new ScottPlot.Plot();
        var cells = new double[1, tokens.Count];
        for (var t = 0; t < tokens.Count; t++) cells[0, t] = weights[t];
        var map = plt.Add.Heatmap(cells);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        plt.Add.ColorBar(map).Label = "weight α_t";
        var ticks = tokens.Select((tok, t) => new ScottPlot.Tick(t, tok)).ToArray();
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Axes.Bottom.TickLabelStyle.FontSize = 13;
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual([]);
        // each cell wide enough for its token written level (about 8 px a glyph at 13 px) beside the colour bar
        var cell = Math.Max(40, 8 * tokens.Max(t => t.Length) + 12);
        var width = Math.Max(400, cell * tokens.Count + 160);
        FittedTitle(plt, title, width);
        SavePng(plt, path, width, 260);
    }
}
