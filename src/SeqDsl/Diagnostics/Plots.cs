using SeqDsl.Training;

namespace SeqDsl.Diagnostics;

/// <summary>PNG plots people would rather look at than read.</summary>
public static class Plots
{
    /// <summary>Learning curves: the loss (train and validation) on the left axis and, when present, one
    /// metric (accuracy, perplexity, r2, …) on the right, per epoch.</summary>
    public static void LearningCurves(History history, string path, string title = "learning curves")
    {
        var plt = new ScottPlot.Plot();
        var epochs = history.Epochs.Select(e => (double)e.Epoch).ToArray();
        var colours = new Dictionary<string, ScottPlot.Color>();
        void Line(string key, ScottPlot.IYAxis? axis = null)
        {
            if (!history.Epochs.Any(e => e.Values.ContainsKey(key))) return;
            var ys = history.Epochs.Select(e => e[key]).ToArray();
            var s = plt.Add.Scatter(epochs, ys);
            s.LegendText = key;
            // a validation curve: the training curve's colour, dashed
            if (key.StartsWith("val_", StringComparison.Ordinal) && colours.TryGetValue(key[4..], out var c))
            {
                s.Color = c;
                s.LinePattern = ScottPlot.LinePattern.Dashed;
            }
            colours[key] = s.Color;
            if (axis is not null) s.Axes.YAxis = axis;
        }
        Line("loss");
        Line("val_loss");
        var metric = new[] { "accuracy", "perplexity", "r2", "mae", "mse" }
            .FirstOrDefault(m => history.Epochs.Any(e => e.Values.ContainsKey(m)));
        if (metric is not null)
        {
            var right = plt.Axes.Right;
            right.Label.Text = metric;
            Line(metric, right);
            Line("val_" + metric, right);
        }
        plt.Axes.Left.Label.Text = "loss";
        plt.XLabel("epoch");
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        FittedTitle(plt, title, 800);
        plt.ShowLegend();
        plt.SavePng(path, 800, 500);
    }

    /// <summary>Sets the title, shrinking the font so that its longest line fits the image's width.</summary>
    internal static void FittedTitle(ScottPlot.Plot plt, string title, int width)
    {
        title ??= "";
        plt.Title(title);
        var label = plt.Axes.Title.Label;
        var longest = title.Split('\n').Max(l => l.Length);
        var fits = (width - 40) / (0.6 * Math.Max(1, longest)); // a glyph is about 0.6 em wide
        label.FontSize = (float)Math.Min(label.FontSize, Math.Max(9, fits));
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
        plt.Add.ColorBar(map);
        var ticks = tokens.Select((tok, t) => new ScottPlot.Tick(t, tok)).ToArray();
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Axes.Bottom.TickLabelStyle.Rotation = 60;
        plt.Axes.Bottom.TickLabelStyle.Alignment = ScottPlot.Alignment.MiddleLeft;
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual([]);
        var width = Math.Max(400, 40 * tokens.Count);
        FittedTitle(plt, title, width);
        plt.SavePng(path, width, 260);
    }
}
