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
        void Line(string key, ScottPlot.IYAxis? axis = null)
        {
            if (!history.Epochs.Any(e => e.Values.ContainsKey(key))) return;
            var ys = history.Epochs.Select(e => e[key]).ToArray();
            var s = plt.Add.Scatter(epochs, ys);
            s.LegendText = key;
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
        plt.Title(title);
        plt.ShowLegend();
        plt.SavePng(path, 800, 500);
    }
}
