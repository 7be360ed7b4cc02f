using SeqDsl;
using SeqDsl.Data;
using SeqDsl.Diagnostics;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;
using SeqDsl.Workflows;

/// <summary>
/// Gradient flow through time, as plots: vanishing gradients of a SimpleRnn against an LSTM on the
/// long-range negation grammar, and seed 000's exploding 40-step counting RNN.
/// </summary>
public static class GradientFlowDemo
{
    public static int Run(string[] args)
    {
        var dir = args.Length > 0 ? args[0] : Path.Combine("runs", "gradient-flow");
        Directory.CreateDirectory(dir);

        // vanishing: one batch of 64 texts whose label is decided by their first two words
        var spec = new ExperimentSpec { Model = "Embed(16).SimpleRnn(32).Dense(1, Sigmoid)", Data = "synthetic:negation" };
        var data = Experiment.Prepare(spec, Experiment.ParseModel(spec.Model), null, null);
        var batch = data.Train!.Slice(0, 64);
        var flows = new List<StepGradients>();
        foreach (var text in new[] { "Embed(16).SimpleRnn(32).Dense(1, Sigmoid)", "Embed(16).Lstm(32, forgetBias: 1).Dense(1, Sigmoid)" })
        {
            using var net = Network.Compile(ModelSyntax.Parse(text), new CompileOptions { Input = data.Input, Seed = 1 });
            var flow = GradientFlow.Measure(net, batch, Loss.Bce)[0];
            // with post-padding the last steps of short texts are padding: compare t = 1 with t = 15 (every text is longer)
            Console.WriteLine($"{text}: ‖∂L/∂h_1‖ = {flow.Norms[0]:E2}, ‖∂L/∂h_15‖ = {flow.Norms[14]:E2}, ratio {flow.Norms[0] / flow.Norms[14]:E2}");
            flows.Add(flow with { Name = text.Split('.')[1] });
        }
        GradientFlow.Plot(flows, Path.Combine(dir, "vanishing.png"), "negation grammar, at initialisation");

        // exploding: the 2-parameter counting RNN trained on a 40-step sequence until |W| passes 1 (a few
        // epochs before the loss becomes infinite): ∂L/∂h_t = W^(40−t) ∂L/∂h_40 grows towards t = 1
        using var rnn = Network.Compile(Model.SimpleRnn(1, Activation.Linear, Bias.None), new CompileOptions { Input = new InputSpec(Features: 1) });
        rnn.Assign("layers.0.rnn.weight_ih_l0", -2f);
        rnn.Assign("layers.0.rnn.weight_hh_l0", 0f);
        var sequence = SequenceData.From(Synthetic.OneSequence(string.Concat(Enumerable.Repeat("0000101010", 4))));
        float W() => rnn.named_parameters().First(p => p.name.EndsWith("weight_hh_l0")).parameter.item<float>();
        var epochs = 0;
        while (Math.Abs(W()) <= 1 && epochs < 100)
        {
            Trainer.Fit(rnn, sequence, new FitOptions { Epochs = 1, BatchSize = 1, Shuffle = false, Loss = Loss.Mse, Optimizer = new OptimizerSpec.Sgd(5e-4) });
            epochs++;
        }
        var w = W();
        var exploding = GradientFlow.Measure(rnn, sequence, Loss.Mse)[0];
        Console.WriteLine($"counting RNN after {epochs} epochs, W = {w:G4}: ‖∂L/∂h_1‖ = {exploding.Norms[0]:E2}, ‖∂L/∂h_40‖ = {exploding.Norms[39]:E2}");
        GradientFlow.Plot([exploding], Path.Combine(dir, "exploding.png"), $"40-step counting RNN after {epochs} epochs (W = {w:G3})");
        Console.WriteLine($"plots written to {dir}");
        return 0;
    }
}
