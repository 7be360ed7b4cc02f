using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;
using static TorchSharp.torch;

namespace SeqDsl.Diagnostics;

/// <summary>‖∂L/∂h_t‖ of one recurrent layer (one stacked layer, one direction) for every time step.</summary>
/// <param name="Layer">Index of the recurrent layer in the model.</param>
/// <param name="Stacked">Which of its stacked layers (0 = lowest).</param>
/// <param name="Direction">0 forward, 1 backward.</param>
/// <param name="Norms">Mean over the batch of the per-sequence L2 norm of ∂L/∂h_t, for the steps in the order the
/// direction reads them (forward: t = 1..T; backward: from each sequence's end). Padding steps count as zero.</param>
public sealed record StepGradients(int Layer, int Stacked, int Direction, double[] Norms)
{
    /// <summary>A name for plots; default "layer 1 (l0)" / "layer 1 (l0, backward)".</summary>
    public string? Name { get; init; }

    /// <summary>The legend text.</summary>
    public string Label => Name ?? $"layer {Layer} (l{Stacked}{(Direction == 1 ? ", backward" : "")})";
}

/// <summary>
/// Gradient-flow diagnostics: how strongly the loss at the end reaches each time step. The model is
/// run on the per-step loop kernel with the same weights (the fused kernels hide h_t inside
/// libtorch), every h_t keeps its gradient, and one backward pass gives ∂L/∂h_t for all t and layers.
/// Vanishing gradients show as norms falling towards t = 1; exploding ones as norms rising.
/// </summary>
public static class GradientFlow
{
    /// <summary>Measures ∂L/∂h_t for a batch; the network's own weights are not changed.</summary>
    public static IReadOnlyList<StepGradients> Measure(Network net, SequenceData batch, Loss loss)
    {
        var spec = ModelSpec.Of(net.Spec.Layers.Select(l => l is RecurrentLayer r ? r with { Kernel = Kernel.Loop } : l));
        using var twin = Network.Compile(spec, net.Options with { Diagnostics = null });
        twin.CopyParametersFrom(net);
        twin.eval(); // no dropout: the measurement is of the weights, not of a random mask
        using var scope = NewDisposeScope();
        var ctx = new ForwardContext { Lengths = batch.Lengths, KeepStepStates = true };
        var wantsLogits = loss.WantsLogits(twin.OutputActivation);
        var (_, sum, count) = Trainer.Step(twin, loss, batch, wantsLogits, ctx);
        (sum / count.clamp_min(Kept.One)).backward();
        var result = new List<StepGradients>();
        foreach (var ((layer, stacked, direction), steps) in ctx.StepStates.OrderBy(kv => kv.Key))
        {
            var norms = steps.Select(h => h.grad is Tensor g ? g.norm(1, keepdim: false).mean().item<float>() : 0.0).ToArray();
            result.Add(new StepGradients(layer, stacked, direction, norms));
        }
        if (result.Count == 0)
            throw new SeqDslException(ErrorKind.Spec, "Gradient flow needs a recurrent layer.") { Received = net.Spec.ToString() };
        return result;
    }

    /// <summary>Writes ‖∂L/∂h_t‖ against t, one line per layer and direction (backward dashed), the legend beside the data; the y axis is
    /// logarithmic (labelled so) when the norms span more than <see cref="Plots.LogScaleRatio"/>×, and a step whose
    /// norm is zero is left out there. Written atomically.</summary>
    public static void Plot(IReadOnlyList<StepGradients> flow, string path, string title)
    {
        var plt = new ScottPlot.Plot();
        var log = Plots.NeedsLogScale(flow.SelectMany(g => g.Norms).Where(v => v > 0)); // a norm is never negative; zero is no line
        var markers = flow.Max(g => g.Norms.Length) <= 40;
        for (var i = 0; i < flow.Count; i++)
        {
            var g = flow[i];
            var xs = Enumerable.Range(1, g.Norms.Length).Select(t => (double)t).ToArray();
            Plots.Line(plt, xs, g.Norms, log, g.Label, i, dashed: g.Direction == 1, markers);
        }
        Plots.FittedTitle(plt, title, 800);
        plt.Axes.Bottom.Label.Text = "time step t";
        plt.Axes.Bottom.Label.FontSize = 14;
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        Plots.YAxis(plt, "‖∂L/∂h_t‖", log, flow.SelectMany(g => g.Norms));
        plt.ShowLegend(ScottPlot.Edge.Right);
        Plots.SavePng(plt, path, 800, 500);
    }
}
