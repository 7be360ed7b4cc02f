// C# examples, one per workflow: dotnet run --project examples/SeqDsl.Examples -- <name>
var examples = new Dictionary<string, (string about, Func<string[], int> run)>
{
    ["seed003-summaries"] = ("the five IMDB models of The Deep Learning Workshop, with Keras parameter counts",
        Seed003Summaries.Run),
    ["counting-lstm"] = ("seed 000 E2: an LSTM(20) counts the ones in 10,000 binary sequences [epochs]", CountingOnes.Lstm),
    ["counting-rnn"] = ("seed 000 E1: a 2-parameter linear RNN, and its 40-step explosion", CountingOnes.Rnn),
    ["sentiment"] = ("negation grammar; --real [tar.gz]: IMDB, seed 002's pipeline (E4); add --seed003 for E7's five models, --seed000 for E3",
        Workflows.Sentiment),
    ["char-lm"] = ("character LM with generation; --real [zip]: Jay Chou lyrics (E11); --warpeace [gz] (E6); --shakespeare [txt] (E12) [--epochs N]",
        Workflows.CharLm),
    ["gradient-flow"] = ("‖∂L/∂h_t‖ plots: vanishing (SimpleRnn vs LSTM), exploding (40-step RNN) [dir]", GradientFlowDemo.Run),
    ["user-cell"] = ("a user-defined cell (minimal gated unit) in model text, counting ones", UserCellExample.Run),
    ["forecast"] = ("seasonal series; --real [csv]: NASDAQ with seed 002's 37 features (E5)", Workflows.Forecast),
};

if (args.Length == 0 || !examples.TryGetValue(args[0], out var example))
{
    Console.Error.WriteLine("usage: dotnet run --project examples/SeqDsl.Examples -- <example> [args]");
    foreach (var (name, (about, _)) in examples) Console.Error.WriteLine($"  {name,-18} {about}");
    return args.Length == 0 ? 0 : 2;
}
return example.run(args[1..]);
