using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Analysis;
using SeqDsl.Data;
using SeqDsl.Diagnostics;
using SeqDsl.Engine;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Training;
using static TorchSharp.torch;

namespace SeqDsl.Workflows;

/// <summary>Tensors ready for training, and what was fitted to make them.</summary>
public sealed class PreparedData
{
    /// <summary>The task and fitted series preparation.</summary>
    public required TaskInfo Info { get; init; }
    /// <summary>Fitted text preparation (text tasks and language models).</summary>
    public TextPreprocessing? Text { get; init; }
    /// <summary>What the network is fed.</summary>
    public required InputSpec Input { get; init; }
    /// <summary>Training rows (null for language models).</summary>
    public SequenceData? Train { get; init; }
    /// <summary>Validation rows (the last fraction of the training rows), if any.</summary>
    public SequenceData? Validation { get; init; }
    /// <summary>Test rows, if the source has them.</summary>
    public SequenceData? Test { get; init; }
    /// <summary>The token corpus of a language model.</summary>
    public int[]? Corpus { get; init; }
    /// <summary>A one-line description for logs.</summary>
    public string Description { get; init; } = "";
}

/// <summary>A trained model with its history, metrics and preparation.</summary>
public sealed class ExperimentResult : IDisposable
{
    /// <summary>The trained network.</summary>
    public required Network Network { get; init; }
    /// <summary>Per-epoch history.</summary>
    public required History History { get; init; }
    /// <summary>Metrics per split: train, validation, test.</summary>
    public required Dictionary<string, Dictionary<string, double>> Metrics { get; init; }
    /// <summary>The task.</summary>
    public required TaskInfo Info { get; init; }
    /// <summary>Fitted text preparation.</summary>
    public TextPreprocessing? Text { get; init; }
    /// <summary>The experiment as run.</summary>
    public required ExperimentSpec Spec { get; init; }
    /// <summary>Generated text samples (language models).</summary>
    public IReadOnlyList<string> Samples { get; init; } = [];

    /// <summary>Writes the model directory with history.csv, metrics.json, experiment.json and learning-curves.png.</summary>
    public void Save(string directory)
    {
        var files = new Dictionary<string, string>
        {
            [TaskInfo.FileName] = Info.ToJson(),
            ["experiment.json"] = Spec.ToJson(),
            ["history.csv"] = History.ToCsv(),
            ["metrics.json"] = JsonSerializer.Serialize(Metrics, new JsonSerializerOptions { WriteIndented = true }),
        };
        if (Text is not null) files[TextPreprocessing.FileName] = Text.ToJson();
        ModelStore.Save(Network, directory, files);
        if (History.Epochs.Count > 0)
            Plots.LearningCurves(History, Path.Combine(directory, "learning-curves.png"), Title());
    }

    /// <summary>The plot's title: the model, then the data source with its file name (not the whole path).</summary>
    private string Title()
    {
        try
        {
            var source = DataSource.Parse(Spec.Data);
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(source.Path));
            return $"{Spec.Model}\n{source with { Path = name.Length > 0 ? name : source.Path }}";
        }
        catch (SeqDslException)
        {
            return $"{Spec.Model}\n{Spec.Data}"; // a result built by hand may carry any data text
        }
    }

    /// <summary>Classifies texts with the trained network and its fitted preprocessing.</summary>
    public IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts) =>
        new TrainedModel { Network = Network, Info = Info, Text = Text, Experiment = Spec }.PredictTexts(texts); // a view: not disposed

    /// <inheritdoc />
    public void Dispose() => Network.Dispose();
}

/// <summary>Runs experiments: data source → preparation → compiled model → training → metrics.</summary>
public static class Experiment
{
    /// <summary>Prepares the data, compiles the model, trains it and measures it.</summary>
    public static ExperimentResult Run(ExperimentSpec spec, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default, Action<string>? log = null)
    {
        var model = ParseModel(spec.Model);
        var t = spec.Training;
        t.Validate(); // every bound, before any data is read
        if (t.Threads is int threads) set_num_threads(threads);
        var data = Prepare(spec, model, null, null);
        log?.Invoke(data.Description);
        var input = data.Input;
        var net = Network.Compile(model, new CompileOptions
        {
            Input = input,
            Convention = ParseEnum<Convention>(t.Convention, "training.convention"),
            Device = t.Device,
            Seed = t.Seed,
            Vocabulary = data.Text?.Vocabulary.Index,
            Diagnostics = log,
        });
        log?.Invoke(net.Summary.ToString());
        try
        {
            var optimizer = Optimizer(t);
            Clip? clip = t.ClipNorm is double n ? new Clip.ByNorm(n) : t.ClipValue is double v ? new Clip.ByValue(v) : null;
            History history;
            var metrics = new Dictionary<string, Dictionary<string, double>>();
            var samples = new List<string>();
            if (data.Info.Kind == TaskKind.LanguageModel)
            {
                history = LanguageModelTrainer.Fit(net, data.Corpus!, new LanguageModelOptions
                {
                    Epochs = t.Epochs, BatchSize = t.BatchSize, Steps = spec.Preprocessing.Steps,
                    Sampling = ParseEnum<Sampling>(spec.Preprocessing.Sampling, "preprocessing.sampling"),
                    Optimizer = optimizer, Clip = clip, Seed = t.Seed, Progress = progress, Cancellation = cancellation,
                });
                if (history.Epochs.Count > 0)
                    metrics["train"] = history.Epochs[^1].Values.ToDictionary(kv => kv.Key, kv => kv.Value);
                var vocab = data.Text!.Vocabulary;
                var prefix = vocab.Decode(data.Corpus!.Take(Math.Min(4, data.Corpus!.Length)));
                samples.Add(Generate(net, data.Text, string.Concat(prefix), 60, DecodeOptions.ArgMax));
            }
            else
            {
                var fit = new FitOptions
                {
                    Epochs = t.Epochs, BatchSize = t.BatchSize, Seed = t.Seed, Optimizer = optimizer, Clip = clip,
                    Loss = new Loss(data.Info.Loss), Metrics = data.Info.Metrics, BucketByLength = t.BucketByLength,
                    EarlyStopping = t.EarlyStopping is int patience ? new EarlyStopping("val_loss", patience, true) : null,
                    Progress = progress, Cancellation = cancellation,
                };
                history = Trainer.Fit(net, data.Train!, fit, data.Validation);
                if (!history.StoppedOnNonFiniteLoss)
                {
                    metrics["train"] = Trainer.Evaluate(net, data.Train!, fit.Loss, fit.Metrics, Math.Max(t.BatchSize, 256));
                    if (data.Validation is not null) metrics["validation"] = Trainer.Evaluate(net, data.Validation, fit.Loss, fit.Metrics, Math.Max(t.BatchSize, 256));
                    if (data.Test is not null) metrics["test"] = Trainer.Evaluate(net, data.Test, fit.Loss, fit.Metrics, Math.Max(t.BatchSize, 256));
                }
            }
            return new ExperimentResult
            {
                Network = net, History = history, Metrics = metrics, Info = data.Info, Text = data.Text, Spec = spec, Samples = samples,
            };
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>Parses the model text, reporting errors with the text's column.</summary>
    public static ModelSpec ParseModel(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new SeqDslException(ErrorKind.Spec, "No model given.") { Expected = "a model text such as \"Embed(32).Lstm(64).Dense(1, Sigmoid)\"" };
        return ModelSyntax.Parse(text);
    }

    /// <summary>Generates text from a prefix with a trained language model.</summary>
    public static string Generate(Network net, TextPreprocessing text, string prefix, int length, DecodeOptions options)
    {
        var tok = Tokenizer.FromName(text.Tokenizer);
        var ids = text.Vocabulary.EncodeStrict(tok.Tokenize(prefix));
        return string.Concat(text.Vocabulary.Decode(Decoding.Generate(net, ids, length, options)));
    }

    internal static T ParseEnum<T>(string value, string what) where T : struct, Enum =>
        Enum.TryParse<T>(value, true, out var r) && Enum.IsDefined(r) ? r
        : throw new SeqDslException(ErrorKind.Spec, $"Invalid {what} '{value}'.")
        { Received = value, Expected = "one of " + string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant())) };

    private static OptimizerSpec Optimizer(TrainingSpec t) => t.Optimizer.ToLowerInvariant() switch
    {
        "adam" => new OptimizerSpec.Adam(t.LearningRate ?? 1e-3),
        "sgd" => new OptimizerSpec.Sgd(t.LearningRate ?? 1e-2, t.Momentum),
        "rmsprop" => new OptimizerSpec.RmsProp(t.LearningRate ?? 1e-3),
        "adagrad" => new OptimizerSpec.AdaGrad(t.LearningRate ?? 1e-2),
        _ => throw new SeqDslException(ErrorKind.Spec, $"Unknown optimizer '{t.Optimizer}'.") { Received = t.Optimizer, Expected = "adam, sgd, rmsprop or adagrad" },
    };

    /// <summary>Turns the data source into tensors. With <paramref name="fitted"/> (a saved model's task) the saved
    /// preparation is applied instead of fitting a new one.</summary>
    public static PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        var source = DataSource.Parse(spec.Data);
        var p = spec.Preprocessing;
        var seed = spec.Training.Seed;
        var task = fitted?.Kind ?? source.Task(p);
        switch (task)
        {
            case TaskKind.LanguageModel:
                return PrepareLanguageModel(source, p, model, fittedText);
            case TaskKind.Classification:
                return PrepareText(source, spec, model, fittedText);
            default:
                if (source is { Kind: "synthetic", Path: "counting" })
                {
                    var train = Synthetic.CountingOnes(10_000, 20, seed + 1);
                    var (tr, va) = SplitLast(train, spec.Training.ValidationSplit);
                    return new PreparedData
                    {
                        Info = new TaskInfo { Kind = TaskKind.Regression, Data = spec.Data, Loss = LossKind.MeanSquaredError, Metrics = [Metric.Accuracy, Metric.Mae] },
                        Input = new InputSpec(Features: 1), Train = tr, Validation = va,
                        Test = Synthetic.CountingOnes(1_000, 20, seed + 2),
                        Description = "synthetic:counting — 10,000 training and 1,000 test binary sequences of 20 steps; target: the number of ones",
                    };
                }
                return PrepareSeries(source, spec, fitted);
        }
    }

    private static (SequenceData train, SequenceData? validation) SplitLast(SequenceData d, double fraction)
    {
        var n = (long)Math.Floor(d.Count * fraction);
        return n < 1 || fraction <= 0 ? (d, null) : (d.Slice(0, d.Count - n), d.Slice(d.Count - n, n));
    }

    private static void RequireEmbed(ModelSpec model, string what)
    {
        if (model.Layers.IsEmpty || model.Layers[0] is not EmbedLayer)
            throw new SeqDslException(ErrorKind.Spec, $"{what} is text: the model must start with Embed(dim).")
            { Received = model.Layers.IsEmpty ? "an empty model" : model.Layers[0].Kind, Expected = "Embed(…) as layer 0" };
    }

    private static PreparedData PrepareText(DataSource source, ExperimentSpec spec, ModelSpec model, TextPreprocessing? fitted)
    {
        RequireEmbed(model, spec.Data);
        var p = spec.Preprocessing;
        var seed = spec.Training.Seed;
        DataFrame train, test;
        switch (source.Kind)
        {
            case "imdb":
            {
                var all = Imdb.Load(source.Path);
                var split = (StringDataFrameColumn)all.Columns["split"];
                train = all.Filter(new BooleanDataFrameColumn("m", split.Select(s => s == "train")));
                test = all.Filter(new BooleanDataFrameColumn("m", split.Select(s => s == "test")));
                break;
            }
            case "synthetic":
                (train, test) = CutLast(Synthetic.Negation(5_000, seed + 1), p.TestSplit);
                break;
            default:
            {
                var csv = Csv.Load(source.Path, new CsvOptions { Columns = [p.TextColumn, p.LabelColumn], Types = new Dictionary<string, ColumnType> { [p.TextColumn] = ColumnType.String, [p.LabelColumn] = ColumnType.Int64 } });
                (train, test) = CutLast(Shuffle(csv.Frame, seed), p.TestSplit);
                break;
            }
        }
        // sources sorted by label (IMDB: positive first) must be mixed before Keras's last-fraction validation
        // split; a CSV's rows were shuffled above, before the test cut
        if (source.Kind != "csv") train = Shuffle(train, seed);
        var textCol = source.Kind is "imdb" or "synthetic" ? "text" : p.TextColumn;
        var labelCol = source.Kind is "imdb" or "synthetic" ? "label" : p.LabelColumn;
        var lower = p.Lowercase;
        IEnumerable<string> Texts(DataFrame f) => ((StringDataFrameColumn)f.Columns[textCol]).Select(s => lower ? (s ?? "").ToLowerInvariant() : s ?? "");
        var tokenizer = fitted is null ? Tokenizer.FromName(p.Tokenizer ?? (source.Kind == "synthetic" ? "whitespace" : "seed002"))
            : Tokenizer.FromName(fitted.Tokenizer);
        // a saved model measured again needs only the test part; training texts are tokenized once, for the
        // vocabulary and the ids
        var trainTokens = fitted is null ? TextPreprocessing.Tokenize(Texts(train), tokenizer) : null;
        var text = fitted ?? Fit(trainTokens!, tokenizer, p);
        var last = model.Layers[^1] as DenseLayer;
        var classes = last?.Units ?? 1;
        var loss = classes > 1 ? LossKind.CrossEntropy
            : last?.Activation == Activation.Sigmoid ? LossKind.BinaryCrossEntropy
            : last?.Activation == Activation.Linear ? LossKind.BinaryCrossEntropyWithLogits
            : throw new SeqDslException(ErrorKind.Spec, "A binary classifier ends in Dense(1, Sigmoid) or a linear Dense(1); several classes need Dense(k) with k ≥ 2.")
            { Received = last?.ToString() ?? model.Layers[^1].Kind, Expected = "Dense(1, Sigmoid)" };
        SequenceData Data(DataFrame f, IReadOnlyList<IReadOnlyList<string>> tokens)
        {
            var (x, l) = text.Encode(tokens);
            var labels = f.Columns[labelCol];
            var y = Enumerable.Range(0, (int)labels.Length).Select(i => Convert.ToInt64(labels[i], CultureInfo.InvariantCulture)).ToArray();
            var badAt = Array.FindIndex(y, v => v < 0 || v >= Math.Max(2, classes));
            var bad = badAt >= 0 ? y[badAt] : 0;
            if (badAt >= 0)
                throw new SeqDslException(ErrorKind.Data, $"Label {bad} in column '{labelCol}' is outside the model's classes.")
                { Received = bad.ToString(), Expected = classes > 1 ? $"0 … {classes - 1}" : "0 or 1" };
            var targets = classes > 1 ? tensor(y) : tensor(y.Select(v => (float)v).ToArray(), [y.Length, 1]);
            return new SequenceData(x, targets, l);
        }
        SequenceData? tr = null, va = null;
        if (trainTokens is not null) (tr, va) = SplitLast(Data(train, trainTokens), spec.Training.ValidationSplit);
        return new PreparedData
        {
            Info = new TaskInfo { Kind = TaskKind.Classification, Data = spec.Data, Loss = loss, Metrics = [Metric.Accuracy] },
            Text = text,
            Input = new InputSpec(Vocab: text.Vocabulary.Size, SeqLen: text.Maxlen),
            Train = tr, Validation = va, Test = Data(test, TextPreprocessing.Tokenize(Texts(test), tokenizer)),
            Description = $"{spec.Data} — {train.Rows.Count:N0} training texts ({tr?.Count ?? 0:N0} train, {va?.Count ?? 0:N0} validation), {test.Rows.Count:N0} test; "
                + $"tokenizer {text.Tokenizer}, vocabulary {text.Vocabulary.Size:N0}, "
                + (text.Maxlen is int m ? $"maxlen {m} ({text.Padding.ToString().ToLowerInvariant()})" : "post-padded per batch with lengths"),
        };
    }

    private static TextPreprocessing Fit(IReadOnlyList<IReadOnlyList<string>> tokens, Tokenizer tokenizer, PreprocessingSpec p)
    {
        var vocab = tokenizer == Tokenizer.Keras ? VocabularyOptions.Keras(p.NumWords) : VocabularyOptions.Seed002(p.NumWords, p.MinFreq);
        var side = ParseEnum<Side>(p.Padding, "preprocessing.padding");
        return TextPreprocessing.FitTokens(tokens, tokenizer, vocab, p.Maxlen, side, side);
    }

    private static DataFrame Shuffle(DataFrame f, int seed)
    {
        var idx = Enumerable.Range(0, (int)f.Rows.Count).ToArray();
        new Random(seed).Shuffle(idx);
        return f[new Int32DataFrameColumn("i", idx)];
    }

    private static (DataFrame, DataFrame) CutLast(DataFrame f, double fraction)
    {
        var n = (int)f.Rows.Count;
        var test = (int)Math.Round(n * fraction);
        if (fraction <= 0 || fraction >= 1 || test < 1 || test >= n)
            throw new SeqDslException(ErrorKind.Data, $"A test split of {fraction} leaves no rows on one side.")
            { Received = $"{n} rows", Expected = "0 < testSplit < 1 with rows on both sides" };
        return (f[new Int32DataFrameColumn("i", Enumerable.Range(0, n - test))], f[new Int32DataFrameColumn("i", Enumerable.Range(n - test, test))]);
    }

    private static PreparedData PrepareLanguageModel(DataSource source, PreprocessingSpec p, ModelSpec model, TextPreprocessing? fitted)
    {
        var text = TextCorpus.Load(source.Path, new TextOptions { ZipMember = source.Member, NormalizeNewlines = true, Lowercase = p.Lowercase });
        if (p.ReplaceNewlines) text = text.Replace('\n', ' ');
        if (p.Chars is int c && c < text.Length) text = text[..c];
        var prep = fitted ?? new TextPreprocessing("chars", Vocabulary.Characters(text));
        var corpus = prep.Vocabulary.EncodeStrict(Tokenizer.Characters.Tokenize(text));
        var embed = model.Layers.Length > 0 && model.Layers[0] is EmbedLayer;
        var size = prep.Vocabulary.Size;
        if (model.Layers.Length == 0 || model.Layers[^1] is not DenseLayer { } head || head.Units != size)
        {
            var last = model.Layers.Length - 1;
            throw new SeqDslException(ErrorKind.Spec,
                $"A language model ends in one output per character of the vocabulary ({size:N0} in {source}).")
            {
                LayerIndex = last >= 0 ? last : null, LayerKind = last >= 0 ? model.Layers[last].Kind : null,
                Received = last >= 0 ? model.Layers[last].ToString() : "an empty model", Expected = $"Dense({size})",
            };
        }
        return new PreparedData
        {
            Info = new TaskInfo { Kind = TaskKind.LanguageModel, Data = source.ToString(), Loss = LossKind.CrossEntropy, Metrics = [Metric.Perplexity], OneHot = embed ? null : prep.Vocabulary.Size },
            Text = prep,
            Input = embed ? new InputSpec(Vocab: prep.Vocabulary.Size) : new InputSpec(Features: prep.Vocabulary.Size),
            Corpus = corpus,
            Description = $"{source} — {corpus.Length:N0} characters, {prep.Vocabulary.Size:N0} distinct; "
                + (embed ? "embedded" : "one-hot") + $" input; {p.Sampling} sampling, {p.Steps} steps",
        };
    }

    /// <summary>The series frame with its feature columns (lagged or derived) and target, as training built it.</summary>
    internal static (DataFrame frame, List<string> features, string target, string featureSet) SeriesFrame(
        DataSource source, ExperimentSpec spec, TaskInfo? fitted)
    {
        var p = spec.Preprocessing;
        DataFrame frame = source.Kind == "synthetic"
            ? Synthetic.Seasonal(1_500, spec.Training.Seed + 1)
            : Csv.Load(source.Path, new CsvOptions { Types = new Dictionary<string, ColumnType> { ["Date"] = ColumnType.Date } }).Frame;
        var featureSet = fitted?.FeatureSet ?? p.FeatureSet;
        string target;
        List<string> features;
        if (featureSet == "seed002")
        {
            frame = SeriesFeatures.Seed002(frame);
            target = "close";
            features = frame.Columns.Select(c => c.Name).Where(n => n is not ("Date" or "close")).ToList();
        }
        else if (featureSet == "raw")
        {
            target = fitted?.TargetColumn ?? p.TargetColumn ?? (frame.Columns.Any(c => c.Name == "value") ? "value" : "Close");
            var raw = fitted?.FeatureColumns ?? p.FeatureColumns ?? [target];
            // features known before the target's day: every feature column lagged one step
            var lagged = new DataFrame();
            if (frame.Columns.Any(c => c.Name == "Date")) lagged.Columns.Add(frame.Columns["Date"]);
            features = [];
            foreach (var c in raw)
            {
                lagged.Columns.Add(new DoubleDataFrameColumn($"{c}_lag1", SeriesFeatures.Shift(SeriesFeatures.Values(frame, c), 1)));
                features.Add($"{c}_lag1");
            }
            lagged.Columns.Add(new DoubleDataFrameColumn(target, SeriesFeatures.Values(frame, target)));
            frame = lagged.DropNulls();
        }
        else
        {
            throw new SeqDslException(ErrorKind.Spec, $"Unknown feature set '{featureSet}'.") { Received = featureSet, Expected = "raw or seed002" };
        }
        return (frame, features, target, featureSet);
    }

    private static PreparedData PrepareSeries(DataSource source, ExperimentSpec spec, TaskInfo? fitted)
    {
        var p = spec.Preprocessing;
        var (frame, features, target, featureSet) = SeriesFrame(source, spec, fitted);
        DataFrame train, test;
        if (p.TrainEnd is DateTime end)
        {
            train = Windows.Between(frame, DateTime.MinValue, end);
            test = Windows.Between(frame, p.TestStart ?? end.AddDays(1), p.TestEnd ?? DateTime.MaxValue);
        }
        else
        {
            (train, test) = CutLast(frame, p.TestSplit);
        }
        var scaler = fitted?.Scaler ?? StandardScaler.Fit(train, features);
        var window = fitted?.Window ?? p.Window;
        SequenceData Data(DataFrame f) =>
            Windows.Sliding(scaler.Transform(f), SeriesFeatures.Values(f, target).Select(v => v ?? double.NaN).ToArray(), window);
        var trainData = Data(train);
        var (tr, va) = SplitLast(trainData, spec.Training.ValidationSplit);
        return new PreparedData
        {
            Info = new TaskInfo
            {
                Kind = TaskKind.Regression, Data = spec.Data, Loss = LossKind.MeanSquaredError, Metrics = [Metric.Mae, Metric.R2],
                FeatureColumns = featureSet == "raw" ? (fitted?.FeatureColumns ?? p.FeatureColumns ?? [target]) : null,
                TargetColumn = target, FeatureSet = featureSet, Window = window, Scaler = scaler,
            },
            Input = new InputSpec(Features: features.Count, SeqLen: window),
            Train = tr, Validation = va, Test = Data(test),
            Description = $"{spec.Data} — {features.Count} features ({featureSet}), target {target}, windows of {window}; "
                + $"{tr.Count:N0} train, {va?.Count ?? 0:N0} validation, {test.Rows.Count - window:N0} test windows",
        };
    }
}
