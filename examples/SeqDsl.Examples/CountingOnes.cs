using SeqDsl;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;

/// <summary>Seed 000 (Advanced Deep Learning with Python, ch. 7): counting the ones in binary sequences.</summary>
public static class CountingOnes
{
    /// <summary>
    /// E2: an LSTM with 20 hidden units reads 10,000 random binary sequences of length 20 and
    /// regresses the number of ones (MSE, Adam); accuracy is the share of rounded predictions
    /// that equal the count, on 1,000 test sequences.
    /// </summary>
    public static int Lstm(string[] args)
    {
        var epochs = args.Length > 0 ? int.Parse(args[0]) : 8;
        var train = SequenceData.From(Synthetic.CountingOnes(10_000, 20, seed: 1));
        var test = SequenceData.From(Synthetic.CountingOnes(1_000, 20, seed: 2));
        var model = Model.Lstm(20).Dense(1);
        using var net = Network.Compile(model, new CompileOptions { Input = new InputSpec(Features: 1), Seed = 2 });
        // the book's LSTMCell draws every weight from U(−√(3/H), √(3/H))
        var bound = Math.Sqrt(3.0 / 20);
        net.Initialize("layers.0.*", new Init.Uniform(-bound, bound));
        Console.WriteLine(model.Summary(new InputSpec(Features: 1)));
        var history = Trainer.Fit(net, train, new FitOptions
        {
            Epochs = epochs, BatchSize = 16, Seed = 1, Loss = Loss.Mse, Metrics = [Metric.Accuracy],
            Optimizer = new OptimizerSpec.Adam(5e-3),
            Progress = TrainingProgress.OnEpoch(Console.WriteLine),
        }, test);
        var final = Trainer.Evaluate(net, test, Loss.Mse, [Metric.Accuracy]);
        Console.WriteLine($"test accuracy: {final["accuracy"]:F4}");
        var perfect = history.Epochs.FirstOrDefault(e => e["val_accuracy"] == 1.0);
        Console.WriteLine(perfect is null ? $"best test accuracy over the epochs: {history.Series("val_accuracy").Max():F4}"
                                          : $"first epoch at 100 % test accuracy: {perfect.Epoch}");
        return 0;
    }

    /// <summary>
    /// E1: the scalar linear RNN s_t = x_t·U + s_{t−1}·W (2 parameters, no bias) started at U = −2,
    /// W = 0 and trained with plain SGD (lr 5e-4) on 0000101010 → 3 for 150 epochs; then the same on
    /// a 40-step sequence, where the gradients explode and training stops on the non-finite loss.
    /// </summary>
    public static int Rnn(string[] args)
    {
        foreach (var bits in new[] { "0000101010", string.Concat(Enumerable.Repeat("0000101010", 4)) })
        {
            using var net = Network.Compile(Model.SimpleRnn(1, Activation.Linear, Bias.None),
                new CompileOptions { Input = new InputSpec(Features: 1), Diagnostics = Console.WriteLine });
            net.Assign("layers.0.rnn.weight_ih_l0", -2f); // U
            net.Assign("layers.0.rnn.weight_hh_l0", 0f);  // W
            var h = Trainer.Fit(net, SequenceData.From(Synthetic.OneSequence(bits)), new FitOptions
            {
                Epochs = 150, BatchSize = 1, Shuffle = false, Loss = Loss.Mse, Optimizer = new OptimizerSpec.Sgd(5e-4),
            });
            var p = net.named_parameters().ToDictionary(q => q.name, q => q.parameter.item<float>());
            Console.WriteLine($"sequence {bits} ({bits.Length} steps, {bits.Count(c => c == '1')} ones)");
            Console.WriteLine($"  loss: epoch 1 {h.Epochs[0]["loss"]:G4}, epoch {h.Epochs.Count} {h.Epochs[^1]["loss"]:G4}");
            Console.WriteLine($"  U = {p["layers.0.rnn.weight_ih_l0"]:G6}, W = {p["layers.0.rnn.weight_hh_l0"]:G6}");
            if (h.StopReason is not null) Console.WriteLine($"  {h.StopReason}");
        }
        return 0;
    }
}
