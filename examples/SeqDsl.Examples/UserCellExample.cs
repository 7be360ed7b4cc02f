using SeqDsl;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Workflows;
using static TorchSharp.torch;

/// <summary>A user-defined cell: the minimal gated unit (Zhou et al. 2016), one gate instead of GRU's two.</summary>
public static class UserCellExample
{
    // f = σ(x W_f + h U_f + b_f);  h̃ = tanh(x W_h + (f ⊙ h) U_h + b_h);  h' = (1 − f) ⊙ h + f ⊙ h̃
    public static readonly UserCell MinimalGru = UserCells.Register("MinimalGru", arity: 1,
        [("w", [Dim.H(2), Dim.I()]), ("u_f", [Dim.H(), Dim.H()]), ("u_h", [Dim.H(), Dim.H()]), ("b", [Dim.H(2)])],
        project: (x, p) => nn.functional.linear(x, p["w"], p["b"]),                     // (B, T, 2H), once
        step: (px, s, p) =>
        {
            var (xf, xh) = (px.chunk(2, -1)[0], px.chunk(2, -1)[1]);
            var f = (xf + s[0].matmul(p["u_f"].t())).sigmoid();
            var candidate = (xh + (f * s[0]).matmul(p["u_h"].t())).tanh();
            return [(1 - f) * s[0] + f * candidate];
        });

    public static int Run(string[] args)
    {
        // as a value in the builder; registered, it also has a name in model text
        var model = Model.Recurrent(MinimalGru, 20).Dense(1);
        Console.WriteLine($"{model}  (parses back: {ModelSyntax.Parse(model.ToString()) == model})");
        Console.WriteLine(model.Summary(new InputSpec(Features: 1)));
        using var result = Experiment.Run(new ExperimentSpec
        {
            Model = model.ToString(), Data = "synthetic:counting",   // seed 000's counting task
            Training = new TrainingSpec { Epochs = 6, BatchSize = 16, LearningRate = 0.005, Seed = 1 },
        }, SeqDsl.Training.TrainingProgress.OnEpoch(Console.WriteLine));
        Console.WriteLine($"test accuracy: {result.Metrics["test"]["accuracy"]:F4}");
        return 0;
    }
}
