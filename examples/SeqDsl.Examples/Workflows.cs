using SeqDsl;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Training;
using SeqDsl.Workflows;

/// <summary>The textbooks' workflows in C#: generated data by default, the real files with <c>--real [path]</c>.</summary>
public static class Workflows
{
    static string? RealPath(string[] args, string file)
    {
        var i = Array.IndexOf(args, "--real");
        if (i < 0) return null;
        if (i + 1 < args.Length && !args[i + 1].StartsWith("--")) return args[i + 1];
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, "..", "shared", "data", file);
            if (File.Exists(p)) return Path.GetFullPath(p);
        }
        throw new FileNotFoundException($"{file} not found; pass its path after --real");
    }

    static readonly IProgress<TrainingProgress> EpochLines =
        TrainingProgress.OnEpoch(Console.WriteLine);

    /// <summary>
    /// Sentiment. Generated: the negation grammar. Real (--real [aclImdb…tar.gz]): IMDB read straight from the
    /// archive into a frame, seed 002's regex tokenizer and vocabulary, post-padding with lengths, E4's model;
    /// with --seed003 as well, seed 003's Keras pipeline and its five models (E7); with --seed000, seed 000's
    /// LSTM (E3) on embeddings trained from scratch, since the book's GloVe vectors are not available here.
    /// </summary>
    public static int Sentiment(string[] args)
    {
        var imdb = RealPath(args, "aclImdb_v1_labeled.tar.gz");
        if (imdb is not null && args.Contains("--seed003")) return Seed003(imdb);
        var spec = imdb is not null && args.Contains("--seed000")
            ? new ExperimentSpec
            {
                // the book: GloVe-100 vectors copied into the embedding; here they are learned (a pretrained file
                // would load with Embed(100, pretrained: "glove.6B.100d.txt")); batches of similar lengths, as
                // torchtext's BucketIterator; the logits go to BCE with logits
                Model = Model.Embed(100, padding: 0).Lstm(256).Dense(1).ToString(),
                Data = "imdb:" + imdb,
                Preprocessing = new PreprocessingSpec { Tokenizer = "seed002", NumWords = 25000 },
                Training = new TrainingSpec { Epochs = 5, BatchSize = 64, ValidationSplit = 0, Seed = 1 },
            }
            : imdb is null
            ? new ExperimentSpec
            {
                Model = Model.Embed(16).Lstm(32, forgetBias: 1).Dense(1, Activation.Sigmoid).ToString(),
                Data = "synthetic:negation",
                Training = new TrainingSpec { Epochs = 6, LearningRate = 0.005, Seed = 1 },
            }
            : new ExperimentSpec
            {
                Model = Model.Embed(32, padding: 0).Lstm(50).Dense(32, Activation.Relu).Dense(1, Activation.Sigmoid).ToString(),
                Data = "imdb:" + imdb,
                Preprocessing = new PreprocessingSpec { Tokenizer = "seed002" },
                // shuffled batches padded to their longest review, as the book's DataLoader
                Training = new TrainingSpec { Epochs = 10, BatchSize = 32, LearningRate = 0.003, ValidationSplit = 0, BucketByLength = false, Seed = 1 },
            };
        using var result = Experiment.Run(spec, EpochLines, default, Console.WriteLine);
        foreach (var (split, m) in result.Metrics) Console.WriteLine($"{split}: accuracy {m["accuracy"]:F4}");
        string[] probe = imdb is null
            ? ["not good the film was long and the plot was quite slow with some music", "indeed great the cast was very fine and i think the ending was long"]
            : ["A wonderful, moving film with superb acting.", "Dull, predictable and far too long."];
        foreach (var p in result.PredictTexts(probe)) Console.WriteLine($"  P(positive) {p.Value:F3}  {p.Input}");
        return 0;
    }

    /// <summary>
    /// Seed 003's pipeline (E7): Keras tokenizer, 8,000 words, maxlen 200 pre-padded, and its five models under
    /// the Keras convention, RMSprop, batch 128, validation split 0.2, the book's epochs.
    /// </summary>
    private static int Seed003(string imdb)
    {
        var head = Model.Embed(32).SpatialDropout(0.4);
        var models = new (ModelSpec body, int epochs)[]
        {
            (head.SimpleRnn(32), 10), (head.Lstm(32), 5), (head.Gru(32, resetAfter: false), 4),
            (head.Lstm(32).Bidirectional(), 4), (head.Lstm(32).Stack(2), 4),
        };
        foreach (var (body, epochs) in models)
        {
            var model = body.Dropout(0.4).Dense(1, Activation.Sigmoid);
            using var result = Experiment.Run(new ExperimentSpec
            {
                Model = model.ToString(), Data = "imdb:" + imdb,
                Preprocessing = new PreprocessingSpec { Tokenizer = "keras", NumWords = 8000, Maxlen = 200, Padding = "pre" },
                Training = new TrainingSpec { Epochs = epochs, BatchSize = 128, Optimizer = "rmsprop", ValidationSplit = 0.2, Convention = "keras", Seed = 1 },
            }, EpochLines);
            Console.WriteLine($"{model}: test accuracy {result.Metrics["test"]["accuracy"]:F4}");
        }
        return 0;
    }

    /// <summary>
    /// A character language model with generation. Generated: a rhyme. Real (--real [jaychou_lyrics.txt.zip]):
    /// d2l's Jay Chou corpus (first 10,000 characters, line breaks as spaces), GRU 256, Adam 1e-2, 80 epochs (E11),
    /// printing perplexity every 10 epochs and lines for the prefixes 分开 and 不分开.
    /// --warpeace [warpeace_input.txt.gz] and --shakespeare [tinyshakespeare_input.txt] run E6 and E12 instead.
    /// </summary>
    public static int CharLm(string[] args)
    {
        if (args.Contains("--warpeace") || args.Contains("--shakespeare")) return CorpusLm(args);
        var path = RealPath(args, "jaychou_lyrics.txt.zip");
        var text = path is null
            ? string.Concat(Enumerable.Repeat("twinkle twinkle little star how i wonder what you are ", 40))
            : TextCorpus.Load(path, new TextOptions { NormalizeNewlines = true }).Replace('\n', ' ')[..10_000];
        string[] prefixes = path is null ? ["twinkle", "how"] : ["分开", "不分开"];
        var vocab = Vocabulary.Characters(text);
        var corpus = vocab.EncodeStrict(Tokenizer.Characters.Tokenize(text));
        Console.WriteLine($"{corpus.Length:N0} characters, {vocab.Size:N0} distinct");
        using var net = Network.Compile(Model.Gru(256, returnSequences: true).Dense(vocab.Size),
            new CompileOptions { Input = new InputSpec(Features: vocab.Size), Seed = 1 });
        LanguageModelTrainer.Fit(net, corpus, new LanguageModelOptions
        {
            Epochs = path is null ? 30 : 80, BatchSize = 32, Steps = 35, Sampling = Sampling.Consecutive,
            Optimizer = new OptimizerSpec.Adam(1e-2), Clip = new Clip.ByNorm(0.01), Seed = 1,
            Progress = TrainingProgress.OnEpoch(e =>
            {
                if (e.Epoch % 10 == 0) Console.WriteLine($"epoch {e.Epoch}, perplexity {e["perplexity"]:F3}, time {e.Seconds:F2} sec");
            }),
        });
        foreach (var prefix in prefixes)
        {
            var ids = vocab.EncodeStrict(Tokenizer.Characters.Tokenize(prefix));
            Console.WriteLine($" - {string.Concat(vocab.Decode(Decoding.Generate(net, ids, 50, DecodeOptions.ArgMax)))}");
        }
        return 0;
    }

    /// <summary>
    /// A character model on a book through an experiment: --warpeace is seed 002's E6 (lowercased War and Peace,
    /// Embedding 256, LSTM 512, 64 windows of 40 characters at random offsets, Adam 3e-3, 8 epochs ≈ 10,000 steps,
    /// about an hour on one core); --shakespeare is seed 001's E12 mixed stack (a GRU layer under an LSTM layer,
    /// 2 epochs). --epochs N shortens either. Prints the loss per epoch and 500 sampled characters after a prefix,
    /// as seed 002 does (sampling from the whole distribution, seeded).
    /// </summary>
    private static int CorpusLm(string[] args)
    {
        var warAndPeace = args.Contains("--warpeace");
        var flag = warAndPeace ? "--warpeace" : "--shakespeare";
        var file = warAndPeace ? "warpeace_input.txt.gz" : "tinyshakespeare_input.txt";
        var path = RealPath(args.Select(a => a == flag ? "--real" : a).ToArray(), file)!;
        var e = Array.IndexOf(args, "--epochs");
        int? epochs = e >= 0 && e + 1 < args.Length ? int.Parse(args[e + 1], System.Globalization.CultureInfo.InvariantCulture) : null;
        var spec = warAndPeace
            ? new ExperimentSpec
            {
                Model = Model.Embed(256).Lstm(512, returnSequences: true).Dense(56).ToString(), // 56 lowercase characters
                Data = "text:" + path,
                Preprocessing = new PreprocessingSpec { Lowercase = true, Steps = 40, Sampling = "chunks" },
                Training = new TrainingSpec { Epochs = epochs ?? 8, BatchSize = 64, LearningRate = 0.003, Seed = 1 },
            }
            : new ExperimentSpec
            {
                Model = Model.Embed(64).Gru(256, returnSequences: true).Lstm(256, returnSequences: true).Dense(65).ToString(),
                Data = "text:" + path,
                Preprocessing = new PreprocessingSpec { Steps = 64, Sampling = "chunks" },
                Training = new TrainingSpec { Epochs = epochs ?? 2, BatchSize = 64, LearningRate = 0.003, ClipNorm = 5, Seed = 1 },
            };
        using var result = Experiment.Run(spec, EpochLines, default, Console.WriteLine);
        var prefix = warAndPeace ? "the emperor" : "ROMEO:";
        Console.WriteLine(Experiment.Generate(result.Network, result.Text!, prefix, 500, DecodeOptions.Sample(seed: 1)));
        return 0;
    }

    /// <summary>
    /// Forecasting. Generated: a noisy seasonal series, 14-day windows. Real (--real [19900101_20230630.csv]): seed 002's
    /// E5 — NASDAQ close from 37 features over 5-day windows, train to 2022-12-31, test 2023-H1, LSTM(16)×2, 1000 epochs.
    /// </summary>
    public static int Forecast(string[] args)
    {
        var csv = RealPath(args, "19900101_20230630.csv");
        var spec = csv is null
            ? new ExperimentSpec
            {
                Model = "Lstm(32).Dense(1)", Data = "synthetic:seasonal",
                Preprocessing = new PreprocessingSpec { Window = 14 },
                Training = new TrainingSpec { Epochs = 30, LearningRate = 0.01, Seed = 1 },
            }
            : new ExperimentSpec
            {
                Model = Model.Lstm(16).Stack(2).Dense(16, Activation.Relu).Dense(1).ToString(), Data = "series:" + csv,
                Preprocessing = new PreprocessingSpec
                {
                    FeatureSet = "seed002", Window = 5, TrainEnd = new DateTime(2022, 12, 31),
                    TestStart = new DateTime(2023, 1, 1), TestEnd = new DateTime(2023, 6, 30),
                    ScaleTarget = false, // the book learns the close price unscaled
                },
                Training = new TrainingSpec { Epochs = 1000, BatchSize = 128, LearningRate = 0.01, ValidationSplit = 0, Seed = 1 },
            };
        using var result = Experiment.Run(spec, csv is null ? EpochLines : TrainingProgress.OnEpoch(e =>
        {
            if ((e.Epoch - 1) % 100 == 0) Console.WriteLine(e);
        }), default, Console.WriteLine);
        var test = result.Metrics["test"];
        Console.WriteLine($"test R²: {test["r2"]:F4}, MAE: {test["mae"]:F4}");
        return 0;
    }
}
