using System.Globalization;
using Microsoft.Data.Analysis;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Training;
using static TorchSharp.torch;

namespace SeqDsl.Workflows;

/// <summary>What training a task gave: the history, metrics per split and, for language models, generated samples.</summary>
public sealed record TrainingOutcome(History History, Dictionary<string, Dictionary<string, double>> Metrics, IReadOnlyList<string> Samples);

/// <summary>
/// A task as a value: how a data source becomes rows (<see cref="Prepare"/>), how a network learns them
/// (<see cref="Train"/>) and how it is measured on prepared data (<see cref="Evaluate"/>). <see cref="Experiment"/> and
/// <see cref="TrainedModel"/> choose one (<see cref="For(DataSource, PreprocessingSpec)"/>, <see cref="For(TaskInfo)"/>)
/// and dispatch to it once. A new task is a subclass here and a case in the two <c>For</c>s.
/// </summary>
public abstract class SeqTask
{
    /// <summary>The source's rows: fitting the preparation (vocabulary, scaler) on the training part, or, with
    /// <paramref name="fitted"/> (a saved model's task), applying the saved one.</summary>
    public abstract PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText);

    /// <summary>Trains the compiled network on prepared data and measures it; with <paramref name="stateDirectory"/>,
    /// the resumable training state is saved there after every epoch and training continues from it when present.</summary>
    public abstract TrainingOutcome Train(Network net, PreparedData data, ExperimentSpec spec, IProgress<TrainingProgress>? progress,
        CancellationToken cancellation, string? stateDirectory = null);

    /// <summary>Loss and metrics of a trained network on prepared data (its test part, or all of it).</summary>
    public abstract Dictionary<string, double> Evaluate(Network net, PreparedData data, ExperimentSpec spec);

    /// <summary>The task a data source implies (a CSV with feature or target columns is a series).</summary>
    public static SeqTask For(DataSource source, PreprocessingSpec p) => source switch
    {
        { Kind: "synthetic", Path: "counting" } => new CountingTask(),
        _ => source.Task(p) switch
        {
            TaskKind.LanguageModel => new LanguageModelTask(),
            TaskKind.Classification => new TextClassificationTask(),
            _ => new SeriesTask(),
        },
    };

    /// <summary>The task a saved model was trained for (a regression on synthetic:counting is the counting task).</summary>
    public static SeqTask For(TaskInfo info) => info.Kind switch
    {
        TaskKind.LanguageModel => new LanguageModelTask(),
        TaskKind.Classification => new TextClassificationTask(),
        _ when info.Data == "synthetic:counting" => new CountingTask(),
        _ => new SeriesTask(),
    };

    /// <summary>The task of a saved model measured on <paramref name="source"/>, which must be data for that task (a
    /// sentiment model is not measured on a corpus or on the counting generator).</summary>
    /// <exception cref="SeqDslException">The source is data for another task.</exception>
    public static SeqTask For(TaskInfo info, DataSource source, PreprocessingSpec p)
    {
        var saved = For(info);
        var given = For(source, p);
        if (saved.GetType() != given.GetType() || (source.Kind == "synthetic" && info.Data.StartsWith("synthetic:", StringComparison.Ordinal) && info.Data != source.ToString()))
            throw new SeqDslException(ErrorKind.Data, $"This model was trained on {info.Data} ({Describe(saved)}); {source} is data for {Describe(given)}.")
            { Received = source.ToString(), Expected = $"data for {Describe(saved)}" + (info.Data.StartsWith("synthetic:", StringComparison.Ordinal) ? $" ({info.Data})" : "") };
        return saved;
    }

    private static string Describe(SeqTask t) => t switch
    {
        TextClassificationTask => "text classification",
        CountingTask => "the counting task",
        SeriesTask => "series forecasting",
        _ => "a language model",
    };

    /// <summary>The one mapping from an experiment's training options to the optimizer.</summary>
    internal static OptimizerSpec Optimizer(TrainingSpec t) => (t.Optimizer.ToLowerInvariant() switch
    {
        "adam" => (OptimizerSpec)new OptimizerSpec.Adam(t.LearningRate ?? 1e-3),
        "adamw" => new OptimizerSpec.AdamW(t.LearningRate ?? 1e-3, t.WeightDecay ?? 0.01),
        "sgd" => new OptimizerSpec.Sgd(t.LearningRate ?? 1e-2, t.Momentum),
        "rmsprop" => new OptimizerSpec.RmsProp(t.LearningRate ?? 1e-3),
        "adagrad" => new OptimizerSpec.AdaGrad(t.LearningRate ?? 1e-2),
        _ => throw new SeqDslException(ErrorKind.Spec, $"Unknown optimizer '{t.Optimizer}'.") { Received = t.Optimizer, Expected = "adam, adamw, sgd, rmsprop or adagrad" },
    }) with { Rules = t.OptimizerRules is string r ? Experiment.ParseEnum<OptimizerRules>(r, "training.optimizerRules") : null };

    internal static Clip? Clipping(TrainingSpec t) => t.ClipNorm is double n ? new Clip.ByNorm(n) : t.ClipValue is double v ? new Clip.ByValue(v) : null;

    /// <summary>The learning-rate schedule of the training options, watching <paramref name="monitor"/> (plateau).</summary>
    internal static Schedule? Scheduling(TrainingSpec t, string monitor) =>
        t.LrStepEpochs is int every ? new Schedule.Step(every, t.LrFactor ?? 0.1)
        : t.LrPlateauPatience is int patience ? new Schedule.ReduceOnPlateau(monitor, t.LrFactor ?? 0.1, patience, t.LrMin ?? 0)
        : null;

    /// <summary>Early stopping (<see cref="TrainingSpec.EarlyStopping"/>), or keeping the best epoch's weights without
    /// stopping (<see cref="TrainingSpec.KeepBest"/>: a patience no run reaches), watching <paramref name="monitor"/>.</summary>
    internal static EarlyStopping? Stopping(TrainingSpec t, string monitor) =>
        t.EarlyStopping is int patience ? new EarlyStopping(monitor, patience, true)
        : t.KeepBest ? new EarlyStopping(monitor, int.MaxValue, true)
        : null;

    /// <summary>The validation part: the LAST fraction of the training rows (<see cref="Splits.HeldOut"/>); none when the
    /// fraction holds out no row, as Keras's fit on a handful of rows.</summary>
    internal static (SequenceData train, SequenceData? validation) SplitLast(SequenceData d, double fraction)
    {
        var held = Splits.HeldOut(d.Count, fraction);
        return held < 1 || held >= d.Count ? (d, null) : (d.Slice(0, d.Count - held), d.Slice(d.Count - held, held));
    }

    /// <summary>The test part of a frame without its own: the last fraction of its rows (<see cref="Splits.Last"/>).</summary>
    internal static (DataFrame, DataFrame) CutLast(DataFrame f, double fraction)
    {
        var (kept, test) = Splits.Last(f.Rows.Count, fraction, "test split", "0 < testSplit < 1 with rows on both sides", round: true);
        return (f[new Int32DataFrameColumn("i", Enumerable.Range(0, kept))], f[new Int32DataFrameColumn("i", Enumerable.Range(kept, test))]);
    }
}

/// <summary>Tasks whose rows are (input, target) pairs: trained by <see cref="Trainer.Fit(Network, SequenceData, FitOptions, SequenceData?)"/>,
/// measured on the training, validation and test rows.</summary>
public abstract class RowTask : SeqTask
{
    /// <summary>Refuses a model that starts with Embed (it reads token ids) for data of numbers: without this the layer
    /// table asked for a vocabulary size the data cannot give.</summary>
    protected static void RequireNumbers(ExperimentSpec spec, ModelSpec model, string what)
    {
        if (model.Layers.IsEmpty || !model.ReadsTokenIds) return;
        // a CSV is a series only because a series option was given: say so (texts and labels take other options)
        var why = DataSource.Parse(spec.Data).Kind == "csv"
            ? " (--target-column, --feature-columns or --feature-set seed002 make a CSV a series; a CSV of texts takes --text-column and --label-column)"
            : "";
        throw SeqDslException.ForLayer(0, model.Layers[0], ErrorKind.Spec,
            $"{spec.Data} is {what}, not text{why}: a model for it cannot start with Embed, which reads token ids; start with a recurrent layer, e.g. Lstm(32).Dense(1).");
    }

    /// <inheritdoc />
    public override TrainingOutcome Train(Network net, PreparedData data, ExperimentSpec spec, IProgress<TrainingProgress>? progress,
        CancellationToken cancellation, string? stateDirectory = null)
    {
        var t = spec.Training;
        // without validation rows (validationSplit 0) the callbacks watch the training loss
        var monitor = data.Validation is null ? "loss" : "val_loss";
        var fit = new FitOptions
        {
            Epochs = t.Epochs, BatchSize = t.BatchSize, Seed = t.Seed, Optimizer = Optimizer(t), Clip = Clipping(t),
            Loss = new Loss(data.Info.Loss), Metrics = data.Info.Metrics, BucketByLength = t.BucketByLength,
            EarlyStopping = Stopping(t, monitor), Schedule = Scheduling(t, monitor),
            Progress = progress, Cancellation = cancellation, StateDirectory = stateDirectory,
            CheckpointEveryBatches = stateDirectory is null ? null : t.CheckpointEveryBatches,
        };
        var history = Trainer.Fit(net, data.Train!, fit, data.Validation);
        var metrics = new Dictionary<string, Dictionary<string, double>>();
        if (!history.StoppedOnNonFiniteLoss)
        {
            var batch = Math.Max(t.BatchSize, 256);
            Dictionary<string, double> Measure(SequenceData d) => InTargetUnits(Trainer.Evaluate(net, d, fit.Loss, fit.Metrics, batch), data.Info);
            metrics["train"] = Measure(data.Train!);
            if (data.Validation is not null) metrics["validation"] = Measure(data.Validation);
            if (data.Test is not null) metrics["test"] = Measure(data.Test);
        }
        return new TrainingOutcome(history, metrics, []);
    }

    /// <inheritdoc />
    public override Dictionary<string, double> Evaluate(Network net, PreparedData data, ExperimentSpec spec) =>
        InTargetUnits(Trainer.Evaluate(net, data.Test ?? data.Train!, new Loss(data.Info.Loss), data.Info.Metrics), data.Info);

    /// <summary>Loss and metrics of a network that learnt a scaled target (<see cref="TaskInfo.TargetScaler"/>) in the
    /// target's own units: squared errors × std², absolute errors × std; R² is the same in both.</summary>
    internal static Dictionary<string, double> InTargetUnits(Dictionary<string, double> metrics, TaskInfo info)
    {
        if (info.TargetScaler is not { } target) return metrics;
        var std = target.Std[0];
        return metrics.ToDictionary(kv => kv.Key, kv => kv.Key switch
        {
            "loss" or "mse" => kv.Value * std * std,
            "mae" => kv.Value * std,
            _ => kv.Value,
        });
    }
}

/// <summary>Text → class (sentiment): IMDB, a CSV of texts and labels, or synthetic:negation; BCE or cross-entropy, accuracy.</summary>
public sealed class TextClassificationTask : RowTask
{
    /// <inheritdoc />
    public override PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        var source = DataSource.Parse(spec.Data);
        if (model.Layers.IsEmpty || !model.ReadsTokenIds)
            throw new SeqDslException(ErrorKind.Spec, $"{spec.Data} is text: the model must start with Embed(dim).")
            { Received = model.Layers.IsEmpty ? "an empty model" : model.Layers[0].Kind, Expected = "Embed(…) as layer 0" };
        var p = spec.Preprocessing;
        var seed = spec.Training.Seed;
        DataFrame train, test;
        var skipped = 0;
        IReadOnlyList<string>? classNames = null;
        switch (source.Kind)
        {
            case "imdb":
            {
                var all = Imdb.Load(source.Path);
                var split = (StringDataFrameColumn)all.Columns["split"];
                train = all.Filter(new BooleanDataFrameColumn("m", split.Select(s => s == "train")));
                test = all.Filter(new BooleanDataFrameColumn("m", split.Select(s => s == "test")));
                classNames = ["neg", "pos"]; // Imdb.Load: label 0 neg, 1 pos
                break;
            }
            case "synthetic":
                (train, test) = CutLast(Synthetic.Negation(5_000, seed + 1), p.TestSplit);
                break;
            default:
            {
                (var frame, skipped, classNames) = LabelledCsv(source.Path, p, fitted);
                (train, test) = CutLast(Shuffle(frame, seed), p.TestSplit);
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
        var tokenizer = fittedText is null ? Tokenizer.FromName(p.Tokenizer ?? (source.Kind == "synthetic" ? "whitespace" : "seed002"))
            : Tokenizer.FromName(fittedText.Tokenizer);
        // a saved model measured again needs only the test part; training texts are tokenized once, for the
        // vocabulary and the ids
        var trainTokens = fittedText is null ? TextPreprocessing.Tokenize(Texts(train), tokenizer) : null;
        var text = fittedText ?? FitText(trainTokens!, tokenizer, p);
        var last = model.Layers[^1] as DenseLayer;
        var classes = last?.Units ?? 1;
        if (classNames is not null && classNames.Count > Math.Max(2, classes))
            throw new SeqDslException(ErrorKind.Data,
                $"Column '{p.LabelColumn}' of {spec.Data} names {classNames.Count} classes ({Shorten(classNames)}), more than the model's {Math.Max(2, classes)}.")
            { Received = last?.ToString() ?? model.Layers[^1].Kind, Expected = $"Dense({classNames.Count}) as the last layer" };
        var loss = classes > 1 ? LossKind.CrossEntropy
            : last?.Activation == Activation.Sigmoid ? LossKind.BinaryCrossEntropy
            : last?.Activation == Activation.Linear ? LossKind.BinaryCrossEntropyWithLogits
            : throw new SeqDslException(ErrorKind.Spec, "A binary classifier ends in Dense(1, Sigmoid) or a linear Dense(1); several classes need Dense(k) with k ≥ 2.")
            { Received = last?.ToString() ?? model.Layers[^1].Kind, Expected = "Dense(1, Sigmoid)" };
        SequenceData Rows(DataFrame f, IReadOnlyList<IReadOnlyList<string>> tokens)
        {
            var labels = f.Columns[labelCol];
            var y = Enumerable.Range(0, (int)labels.Length).Select(i => Convert.ToInt64(labels[i], CultureInfo.InvariantCulture)).ToArray();
            var badAt = Array.FindIndex(y, v => v < 0 || v >= Math.Max(2, classes));
            if (badAt >= 0)
                throw new SeqDslException(ErrorKind.Data, $"Label {y[badAt]} in column '{labelCol}' is outside the model's classes.")
                { Received = y[badAt].ToString(), Expected = classes > 1 ? $"0 … {classes - 1}" : "0 or 1" };
            return SequenceData.From(classes > 1
                ? ArrayData.FromIds(text.Encode(tokens), y, [y.Length])
                : ArrayData.FromIds(text.Encode(tokens), y.Select(v => (float)v).ToArray(), [y.Length, 1]));
        }
        SequenceData? tr = null, va = null;
        if (trainTokens is not null) (tr, va) = SplitLast(Rows(train, trainTokens), spec.Training.ValidationSplit);
        return new PreparedData
        {
            Info = new TaskInfo { Kind = TaskKind.Classification, Data = spec.Data, Loss = loss, Metrics = [Metric.Accuracy], ClassNames = fitted?.ClassNames ?? classNames },
            Text = text,
            Input = new InputSpec(Vocab: text.Vocabulary.Size, SeqLen: text.Maxlen),
            Train = tr, Validation = va, Test = Rows(test, TextPreprocessing.Tokenize(Texts(test), tokenizer)),
            Description = $"{spec.Data} — {train.Rows.Count:N0} training texts ({tr?.Count ?? 0:N0} train, {va?.Count ?? 0:N0} validation), {test.Rows.Count:N0} test; "
                + (skipped > 0 ? $"{skipped:N0} bad rows skipped; " : "")
                + $"tokenizer {text.Tokenizer}, vocabulary {text.Vocabulary.Size:N0}, "
                + (text.Maxlen is int m ? $"maxlen {m} ({text.Padding.ToString().ToLowerInvariant()})" : "post-padded per batch with lengths"),
        };
    }

    /// <summary>Classifies texts: the probability of class 1 and the label, or the most likely class.</summary>
    public static IReadOnlyList<Prediction> Predict(Network net, TaskInfo info, TextPreprocessing text, IReadOnlyList<string> texts)
    {
        var (x, l) = text.Encode(texts).ToTensors();
        using var _x = x;
        using var _l = l;
        using var y = Trainer.Predict(net, x, l);
        using var rows = y.reshape(texts.Count, -1);
        return Predictions.FromOutputs(texts, rows.data<float>().ToArray(), (int)rows.shape[1], info, net.OutputActivation);
    }

    private static TextPreprocessing FitText(IReadOnlyList<IReadOnlyList<string>> tokens, Tokenizer tokenizer, PreprocessingSpec p)
    {
        var vocab = tokenizer == Tokenizer.Keras ? VocabularyOptions.Keras(p.NumWords, p.OovToken) : VocabularyOptions.Seed002(p.NumWords, p.MinFreq);
        var side = Experiment.ParseEnum<Side>(p.Padding, "preprocessing.padding");
        return TextPreprocessing.FitTokens(tokens, tokenizer, vocab, p.Maxlen, side, side, p.StartToken);
    }

    /// <summary>The text and label columns of a CSV, the labels as class indices. Labels are indices when the first is an
    /// integer (a later one that is not is an error naming its line, or a skipped row), class names otherwise: numbered
    /// in ordinal order of the names (a saved model numbers them as it was trained). Returns the frame, the rows
    /// skipped and the class names (null for indices).</summary>
    private static (DataFrame frame, int skipped, IReadOnlyList<string>? names) LabelledCsv(string path, PreprocessingSpec p, TaskInfo? fitted)
    {
        CsvOptions Options(ColumnType label) => new()
        {
            Columns = [p.TextColumn, p.LabelColumn], Required = [p.LabelColumn], SkipBadRows = p.SkipBadRows,
            Types = new Dictionary<string, ColumnType> { [p.TextColumn] = ColumnType.String, [p.LabelColumn] = label },
        };
        static bool IsIndex(string? s) => long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);
        var csv = Csv.Load(path, Options(ColumnType.String));
        var labels = (StringDataFrameColumn)csv.Frame.Columns[p.LabelColumn];
        var named = fitted is null ? !IsIndex(labels[0]) : fitted.ClassNames is not null;
        if (!named)
        {
            // integer labels (or a saved model trained on them): the loader converts them, naming a cell that is not one
            if (labels.Any(l => !IsIndex(l))) csv = Csv.Load(path, Options(ColumnType.Int64));
            else csv = csv with { Frame = new DataFrame(csv.Frame.Columns[p.TextColumn], new Int64DataFrameColumn(p.LabelColumn, labels.Select(l => long.Parse(l!, CultureInfo.InvariantCulture)))) };
            return (csv.Frame, csv.SkippedRows, null);
        }
        var names = fitted?.ClassNames ?? labels.Select(l => l!).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = names.Select((n, i) => (n, i)).ToDictionary(x => x.n, x => (long)x.i, StringComparer.Ordinal);
        var ids = labels.Select(l => index.TryGetValue(l!, out var i) ? i
            : throw new SeqDslException(ErrorKind.Data, $"Label '{l}' in column '{p.LabelColumn}' of {path} is not one of the model's classes.")
            { Received = l, Expected = "one of " + Shorten(names) }).ToList();
        return (new DataFrame(csv.Frame.Columns[p.TextColumn], new Int64DataFrameColumn(p.LabelColumn, ids)), csv.SkippedRows, names);
    }

    /// <summary>Names for a message: the first ten, then how many more.</summary>
    private static string Shorten(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(10)) + (names.Count > 10 ? $", … ({names.Count - 10} more)" : "");

    private static DataFrame Shuffle(DataFrame f, int seed)
    {
        var idx = Enumerable.Range(0, (int)f.Rows.Count).ToArray();
        new Random(seed).Shuffle(idx);
        return f[new Int32DataFrameColumn("i", idx)];
    }
}

/// <summary>Seed 000's counting task (synthetic:counting): binary sequences → their number of ones; MSE, rounded accuracy.</summary>
public sealed class CountingTask : RowTask
{
    /// <inheritdoc />
    public override PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        RequireNumbers(spec, model, "binary sequences (one feature a step)");
        var seed = spec.Training.Seed;
        var train = SequenceData.From(Synthetic.CountingOnes(10_000, 20, seed + 1));
        var (tr, va) = fitted is null ? SplitLast(train, spec.Training.ValidationSplit) : (train, null);
        return new PreparedData
        {
            Info = new TaskInfo { Kind = TaskKind.Regression, Data = spec.Data, Loss = LossKind.MeanSquaredError, Metrics = [Metric.Accuracy, Metric.Mae] },
            Input = new InputSpec(Features: 1), Train = tr, Validation = va,
            Test = SequenceData.From(Synthetic.CountingOnes(1_000, 20, seed + 2)),
            Description = "synthetic:counting — 10,000 training and 1,000 test binary sequences of 20 steps; target: the number of ones",
        };
    }

    /// <summary>Counts the ones of binary strings.</summary>
    public static IReadOnlyList<Prediction> Predict(Network net, IReadOnlyList<string> bits) =>
        bits.Select(b =>
        {
            var d = SequenceData.From(Synthetic.OneSequence(b.Trim()));
            using var y = Trainer.Predict(net, d.Inputs);
            return new Prediction(b, y.item<float>(), null);
        }).ToList();
}

/// <summary>Numbers → number over time (a price or value series): lagged or derived features, a scaler fitted on the
/// training period, sliding windows; MSE, MAE, R².</summary>
public sealed class SeriesTask : RowTask
{
    /// <inheritdoc />
    public override PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        RequireNumbers(spec, model, "a series of numbers");
        var source = DataSource.Parse(spec.Data);
        var p = spec.Preprocessing;
        var (frame, features, target, featureSet) = Frame(source, spec, fitted);
        DataFrame train, test;
        if (p.TrainEnd is DateTime end)
        {
            train = Windows.Between(frame, DateTime.MinValue, end);
            test = Windows.Between(frame, p.TestStart ?? (end < DateTime.MaxValue.Date ? end.AddDays(1) : DateTime.MaxValue), p.TestEnd ?? DateTime.MaxValue);
        }
        else
        {
            (train, test) = CutLast(frame, p.TestSplit);
        }
        var window = fitted?.Window ?? p.Window;
        if (fitted is null && train.Rows.Count <= window)
            throw new SeqDslException(ErrorKind.Data, $"The training part of {spec.Data} holds {train.Rows.Count} rows; windows of {window} rows need more.")
            { Received = p.TrainEnd is DateTime te ? $"trainEnd {te:yyyy-MM-dd}" : $"{frame.Rows.Count} rows, testSplit {p.TestSplit}", Expected = $"more than {window} training rows" };
        var scaler = fitted?.Scaler ?? StandardScaler.Fit(train, features);
        // a saved model keeps the scaling it was trained with (none for models saved before target scaling)
        var targetScaler = fitted is not null ? fitted.TargetScaler : p.ScaleTarget ? StandardScaler.Fit(train, [target]) : null;
        var trainRows = Rows(train, scaler, target, window, targetScaler);
        var (tr, va) = fitted is null ? SplitLast(trainRows, spec.Training.ValidationSplit) : (trainRows, null);
        return new PreparedData
        {
            Info = new TaskInfo
            {
                Kind = TaskKind.Regression, Data = spec.Data, Loss = LossKind.MeanSquaredError, Metrics = [Metric.Mae, Metric.R2],
                FeatureColumns = featureSet == "raw" ? (fitted?.FeatureColumns ?? p.FeatureColumns ?? [target]) : null,
                TargetColumn = target, FeatureSet = featureSet, Window = window, Scaler = scaler, TargetScaler = targetScaler,
            },
            Input = new InputSpec(Features: features.Count, SeqLen: window),
            Train = tr, Validation = va, Test = Rows(test, scaler, target, window, targetScaler),
            Description = $"{spec.Data} — {features.Count} features ({featureSet}), target {target}, windows of {window}; "
                + $"{tr.Count:N0} train, {va?.Count ?? 0:N0} validation, {test.Rows.Count - window:N0} test windows"
                + (targetScaler is { } ts
                    ? $"; target scaled (mean {ts.Mean[0].ToString("G6", CultureInfo.InvariantCulture)}, std {ts.Std[0].ToString("G6", CultureInfo.InvariantCulture)}): "
                      + "the epoch lines' losses are in scaled units, the metrics after training and the predictions in the target's"
                    : "; target not scaled"),
        };
    }

    /// <summary>The one windowing of a series (<see cref="SeriesPreparation.Windows"/>), as tensors.</summary>
    internal static SequenceData Rows(DataFrame f, StandardScaler scaler, string target, int window, StandardScaler? targetScaler) =>
        SequenceData.From(SeriesPreparation.Windows(f, scaler, target, window, targetScaler));

    /// <summary>Forecasts every window of a series CSV (the value at each window's last row).</summary>
    public static IReadOnlyList<Prediction> Predict(Network net, TaskInfo info, string csvPath)
    {
        var (windows, labels) = SeriesPreparation.ForPrediction(info, csvPath);
        return Predict(net, info, windows, labels);
    }

    /// <summary>Forecasts every window of raw series rows (columns as in the training CSV).</summary>
    public static IReadOnlyList<Prediction> Predict(Network net, TaskInfo info, DataFrame rows)
    {
        var (windows, labels) = SeriesPreparation.ForPrediction(info, rows);
        return Predict(net, info, windows, labels);
    }

    private static IReadOnlyList<Prediction> Predict(Network net, TaskInfo info, ArrayData windows, string[] labels)
    {
        using var x = SequenceData.Tensor(windows.Inputs, windows.InputShape);
        using var y = Trainer.Predict(net, x);
        return Predictions.FromOutputs(labels, y.reshape(-1).data<float>().ToArray(), 1, info, net.OutputActivation);
    }

    private static (DataFrame frame, List<string> features, string target, string featureSet) Frame(
        DataSource source, ExperimentSpec spec, TaskInfo? fitted) => SeriesPreparation.Frame(source, spec, fitted);
}

/// <summary>Text → next character (d2l's language models): a character corpus, d2l's samplers, cross-entropy per
/// step, perplexity, generation.</summary>
public sealed class LanguageModelTask : SeqTask
{
    /// <inheritdoc />
    public override PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        var source = DataSource.Parse(spec.Data);
        var p = spec.Preprocessing;
        var text = TextCorpus.Load(source.Path, new TextOptions { ZipMember = source.Member, NormalizeNewlines = true, Lowercase = p.Lowercase });
        if (p.ReplaceNewlines) text = text.Replace('\n', ' ');
        if (p.Chars is int c && c < text.Length) text = text[..c];
        if (text.Length == 0)
            throw new SeqDslException(ErrorKind.Data, $"{source} holds no text: a language model learns from a corpus of characters; give a file with text in it (UTF-8).")
            { Received = "0 characters", Expected = "a non-empty text file" };
        var prep = fittedText ?? new TextPreprocessing("chars", Vocabulary.Characters(text));
        var corpus = prep.Vocabulary.EncodeStrict(Tokenizer.Characters.Tokenize(text));
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
        var embed = model.ReadsTokenIds;
        return new PreparedData
        {
            Info = new TaskInfo { Kind = TaskKind.LanguageModel, Data = source.ToString(), Loss = LossKind.CrossEntropy, Metrics = [Metric.Perplexity], OneHot = embed ? null : size },
            Text = prep,
            Input = embed ? new InputSpec(Vocab: size) : new InputSpec(Features: size),
            Corpus = corpus,
            Description = $"{source} — {corpus.Length:N0} characters, {size:N0} distinct; "
                + (embed ? "embedded" : "one-hot") + $" input; {p.Sampling} sampling, {p.Steps} steps",
        };
    }

    /// <inheritdoc />
    public override TrainingOutcome Train(Network net, PreparedData data, ExperimentSpec spec, IProgress<TrainingProgress>? progress,
        CancellationToken cancellation, string? stateDirectory = null)
    {
        var t = spec.Training;
        var history = LanguageModelTrainer.Fit(net, data.Corpus!, new LanguageModelOptions
        {
            Epochs = t.Epochs, BatchSize = t.BatchSize, Steps = spec.Preprocessing.Steps,
            Sampling = Experiment.ParseEnum<Sampling>(spec.Preprocessing.Sampling, "preprocessing.sampling"),
            Optimizer = Optimizer(t), Clip = Clipping(t), Seed = t.Seed, Progress = progress, Cancellation = cancellation,
            // a language model has no validation rows: early stopping and the schedule watch the training loss
            EarlyStopping = Stopping(t, "loss"), Schedule = Scheduling(t, "loss"),
            StateDirectory = stateDirectory, CheckpointEveryBatches = stateDirectory is null ? null : t.CheckpointEveryBatches,
        });
        var metrics = new Dictionary<string, Dictionary<string, double>>();
        if (history.Epochs.Count > 0)
            metrics["train"] = history.Epochs[^1].Values.ToDictionary(kv => kv.Key, kv => kv.Value);
        var prefix = data.Text!.Vocabulary.Decode(data.Corpus!.Take(Math.Min(4, data.Corpus!.Length)));
        return new TrainingOutcome(history, metrics, [Generate(net, data.Text, string.Concat(prefix), 60, DecodeOptions.ArgMax)]);
    }

    /// <summary>Every character of the corpus predicted once (<see cref="LanguageModelData.Windows"/>).</summary>
    public override Dictionary<string, double> Evaluate(Network net, PreparedData data, ExperimentSpec spec)
    {
        using var scope = NewDisposeScope();
        var (ids, targets) = SequenceData.From(LanguageModelData.Windows(data.Corpus!, spec.Preprocessing.Steps));
        return Trainer.Evaluate(net, new SequenceData(net.TokenInput(ids), targets), new Loss(LossKind.CrossEntropy), [Metric.Perplexity]);
    }

    /// <summary>Generates text from a prefix with a trained language model.</summary>
    public static string Generate(Network net, TextPreprocessing text, string prefix, int length, DecodeOptions options)
    {
        var tok = Tokenizer.FromName(text.Tokenizer);
        var ids = text.Vocabulary.EncodeStrict(tok.Tokenize(prefix));
        return string.Concat(text.Vocabulary.Decode(Decoding.Generate(net, ids, length, options)));
    }
}
