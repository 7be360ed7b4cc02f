using System.Text.Json;
using System.Text.Json.Serialization;
using SeqDsl.Spec;

namespace SeqDsl.Workflows;

/// <summary>How data becomes tensors. Every field has a default that suits its data source.</summary>
public sealed record PreprocessingSpec
{
    /// <summary>keras, seed002, whitespace or chars; default: seed002 for text classification, chars for language models.</summary>
    public string? Tokenizer { get; init; }
    /// <summary>Keep the most frequent words (Keras num_words: indices below N).</summary>
    public int? NumWords { get; init; }
    /// <summary>Drop words seen fewer times.</summary>
    public int MinFreq { get; init; } = 1;
    /// <summary>Keras tokenizer: a token that stands in for words outside the vocabulary (Keras's oov_token; as
    /// <c>imdb.load_data</c> keeps rare words as an out-of-vocabulary mark) instead of dropping them; null drops them.</summary>
    public string? OovToken { get; init; }
    /// <summary>Text: a token put before every text's first token, reserved in the vocabulary after padding and the
    /// out-of-vocabulary token (Keras's <c>imdb.load_data</c> starts each review with its start_char); null puts none.</summary>
    public string? StartToken { get; init; }
    /// <summary>Fixed length (Keras pad_sequences); null pads each batch to its longest text and keeps lengths.</summary>
    public int? Maxlen { get; init; }
    /// <summary>pre or post (with maxlen; Keras default pre).</summary>
    public string Padding { get; init; } = "pre";
    /// <summary>Text column of a CSV.</summary>
    public string TextColumn { get; init; } = "text";
    /// <summary>Label column of a CSV (0/1, or class indices).</summary>
    public string LabelColumn { get; init; } = "label";
    /// <summary>Feature columns of a series (default: the target column, lagged one step).</summary>
    public IReadOnlyList<string>? FeatureColumns { get; init; }
    /// <summary>Target column of a series (default: value, or Close for price files).</summary>
    public string? TargetColumn { get; init; }
    /// <summary>raw (the feature columns, lagged one step) or seed002 (the 37 price features).</summary>
    public string FeatureSet { get; init; } = "raw";
    /// <summary>Rows per window of a series.</summary>
    public int Window { get; init; } = 5;
    /// <summary>Series: scale the target with a scaler fitted on the training period (as the features are), so the network
    /// learns values near 0; predictions and reported metrics are scaled back into the target's units. False learns the
    /// target as it is (seed 002's E5 does, as the book).</summary>
    public bool ScaleTarget { get; init; } = true;
    /// <summary>Last training date of a series (inclusive); default: the last 20 % of rows are the test set.</summary>
    public DateTime? TrainEnd { get; init; }
    /// <summary>First test date of a series (default: the day after TrainEnd).</summary>
    public DateTime? TestStart { get; init; }
    /// <summary>Last test date of a series.</summary>
    public DateTime? TestEnd { get; init; }
    /// <summary>Character corpus: keep the first N characters.</summary>
    public int? Chars { get; init; }
    /// <summary>Character corpus: replace line breaks by spaces (d2l's Jay Chou preparation).</summary>
    public bool ReplaceNewlines { get; init; }
    /// <summary>Lower-case the text.</summary>
    public bool Lowercase { get; init; }
    /// <summary>Language models: time steps per minibatch.</summary>
    public int Steps { get; init; } = 35;
    /// <summary>Language models: random, consecutive (state carried over) or chunks (seed 002: windows at any offset).</summary>
    public string Sampling { get; init; } = "random";
    /// <summary>Fraction held out as the test set when the source has no test split.</summary>
    public double TestSplit { get; init; } = 0.2;
    /// <summary>CSV sources: skip (and count) rows with a malformed cell or an empty label or target, instead of failing
    /// on the first with its line.</summary>
    public bool SkipBadRows { get; init; }

    /// <summary>Checks every bound and name before any data is read: the first problem as a SeqDslException that names the
    /// option (experiment-file path and command-line flag).</summary>
    public void Validate()
    {
        static SeqDslException Bad(string path, string flag, string what, string received, string expected) =>
            new(ErrorKind.Spec, $"preprocessing.{path} ({flag}): {what}") { Received = received, Expected = expected };
        static void Positive(int? v, string path, string flag)
        {
            if (v is int n && n < 1) throw Bad(path, flag, "must be at least 1.", n.ToString(), "≥ 1");
        }
        static void OneOf(string? v, string path, string flag, bool ignoreCase, params string[] names)
        {
            if (v is not null && !names.Contains(ignoreCase ? v.ToLowerInvariant() : v))
                throw Bad(path, flag, $"unknown value '{v}'.", v, "one of " + string.Join(", ", names));
        }
        Positive(NumWords, "numWords", "--num-words");
        if (MinFreq < 0) throw Bad("minFreq", "--min-freq", "must not be negative.", MinFreq.ToString(), "≥ 0");
        Positive(Maxlen, "maxlen", "--maxlen");
        Positive(Window, "window", "--window");
        Positive(Chars, "chars", "--chars");
        Positive(Steps, "steps", "--steps");
        // tokenizer and feature set are matched exactly where they are used; padding and sampling ignore case
        OneOf(Tokenizer, "tokenizer", "--tokenizer", false, "keras", "seed002", "whitespace", "chars");
        OneOf(Padding, "padding", "--padding", true, "pre", "post");
        OneOf(FeatureSet, "featureSet", "--feature-set", false, "raw", "seed002");
        OneOf(Sampling, "sampling", "--sampling", true, "random", "consecutive", "chunks");
        if (!(TestSplit > 0 && TestSplit < 1))
            throw Bad("testSplit", "--test-split", "the test split is a fraction of the rows.", TestSplit.ToString(System.Globalization.CultureInfo.InvariantCulture), "0 < split < 1");
        var start = TestStart ?? (TrainEnd is DateTime t && t < DateTime.MaxValue.Date ? t.AddDays(1) : TrainEnd);
        if (start is DateTime s0 && TestEnd is DateTime e0 && e0 < s0)
            throw Bad("testEnd", "--test-end", "the test period ends before it starts.", $"{s0:yyyy-MM-dd} … {e0:yyyy-MM-dd}", "testEnd ≥ testStart");
        if (TestStart is DateTime ts && TrainEnd is DateTime te && ts <= te)
            throw Bad("testStart", "--test-start", "the test period starts inside the training period.", $"train to {te:yyyy-MM-dd}, test from {ts:yyyy-MM-dd}", "testStart after trainEnd");
    }
}

/// <summary>How to train. Defaults as Keras's fit where the books rely on them.</summary>
public sealed record TrainingSpec
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Rows per minibatch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>adam, adamw, sgd, rmsprop or adagrad.</summary>
    public string Optimizer { get; init; } = "adam";
    /// <summary>Learning rate; default: the optimizer's (Adam and AdamW 1e-3, RMSprop 1e-3, AdaGrad 1e-2, SGD 1e-2).</summary>
    public double? LearningRate { get; init; }
    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; }
    /// <summary>AdamW's decoupled weight decay (null: 0.01, PyTorch's default).</summary>
    public double? WeightDecay { get; init; }
    /// <summary>Clip gradients by global norm.</summary>
    public double? ClipNorm { get; init; }
    /// <summary>Clip gradients elementwise.</summary>
    public double? ClipValue { get; init; }
    /// <summary>Seed of initialisation, shuffling, dropout and synthetic data.</summary>
    public int Seed { get; init; }
    /// <summary>cpu or cuda.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>CPU threads for libtorch (default: all cores).</summary>
    public int? Threads { get; init; }
    /// <summary>Fraction of the training rows held out (the last ones, as Keras).</summary>
    public double ValidationSplit { get; init; } = 0.1;
    /// <summary>Stop after this many epochs without improvement of val_loss (restoring the best weights).</summary>
    public int? EarlyStopping { get; init; }
    /// <summary>With a state directory (<c>seqdsl train --out</c>): also save the state to resume from every this many
    /// batches inside an epoch; null: at epoch ends only.</summary>
    public int? CheckpointEveryBatches { get; init; }
    /// <summary>Step schedule: multiply the learning rate by <see cref="LrFactor"/> every this many epochs.</summary>
    public int? LrStepEpochs { get; init; }
    /// <summary>Plateau schedule: multiply the learning rate by <see cref="LrFactor"/> after this many epochs without a
    /// better val_loss (loss where there is no validation part).</summary>
    public int? LrPlateauPatience { get; init; }
    /// <summary>The schedule's factor (null: 0.1).</summary>
    public double? LrFactor { get; init; }
    /// <summary>The plateau schedule's floor (null: 0).</summary>
    public double? LrMin { get; init; }
    /// <summary>Keep the weights of the epoch with the best val_loss (loss where there is no validation part) instead of
    /// the last epoch's: those are measured and saved (Keras's restore_best_weights).</summary>
    public bool KeepBest { get; init; }
    /// <summary>Batch texts of similar length together (when texts are padded per batch, without maxlen).</summary>
    public bool BucketByLength { get; init; } = true;
    /// <summary>torch or keras parameter layout.</summary>
    public string Convention { get; init; } = "torch";
    /// <summary>Whose optimizer update rules: keras (TensorFlow's: ε inside RMSprop's root, sparse embedding rows) or
    /// torch (libtorch's); null: the convention's.</summary>
    public string? OptimizerRules { get; init; }
    /// <summary>A weights file to start from instead of the initialisers: a PyTorch state dict (.pt) or safetensors whose
    /// names, shapes and element types match the model's (see the README's "PyTorch interop").</summary>
    public string? InitWeights { get; init; }

    /// <summary>Largest thread count accepted (libtorch spawns what it is told).</summary>
    public const int MaxThreads = 1024;

    /// <summary>Checks every bound before any data is read: the first problem as a SeqDslException that names the
    /// option (experiment-file path and command-line flag). <paramref name="cudaAvailable"/> is the engine's answer to
    /// whether a CUDA device can be used (the torch engine's <c>Experiment.Validate</c> passes libtorch's).</summary>
    public void Validate(Func<bool> cudaAvailable)
    {
        static SeqDslException Bad(string path, string flag, string what, string received, string expected) =>
            new(ErrorKind.Spec, $"{path} ({flag}): {what}") { Received = received, Expected = expected };
        static string F(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (Epochs < 1) throw Bad("training.epochs", "--epochs", "at least one epoch is needed.", Epochs.ToString(), "epochs ≥ 1");
        if (BatchSize < 1) throw Bad("training.batchSize", "--batch-size", "a batch holds at least one row.", BatchSize.ToString(), "batch size ≥ 1");
        if (LearningRate is double lr && !(lr > 0 && double.IsFinite(lr)))
            throw Bad("training.learningRate", "--lr", "the learning rate must be a positive number.", F(lr), "0 < learning rate");
        if (!(Momentum >= 0 && Momentum < 1)) throw Bad("training.momentum", "--momentum", "momentum must lie in [0, 1).", F(Momentum), "0 ≤ momentum < 1");
        if (ClipNorm is double cn && !(cn > 0 && double.IsFinite(cn))) throw Bad("training.clipNorm", "--clip-norm", "the clipping norm must be positive.", F(cn), "clip norm > 0");
        if (ClipValue is double cv && !(cv > 0 && double.IsFinite(cv))) throw Bad("training.clipValue", "--clip-value", "the clipping value must be positive.", F(cv), "clip value > 0");
        if (Threads is int th && (th < 1 || th > MaxThreads))
            throw Bad("training.threads", "--threads", "libtorch needs between one and a sane number of threads.", th.ToString(), $"1 ≤ threads ≤ {MaxThreads}");
        if (!(ValidationSplit >= 0 && ValidationSplit < 1))
            throw Bad("training.validationSplit", "--validation-split", "the validation split is a fraction of the training rows.", F(ValidationSplit), "0 ≤ split < 1");
        if (CheckpointEveryBatches is int cb && cb < 1)
            throw Bad("training.checkpointEveryBatches", "--checkpoint-batches", "a checkpoint comes after at least one batch.", cb.ToString(), "N ≥ 1");
        if (EarlyStopping is int es && es < 1) throw Bad("training.earlyStopping", "--early-stopping", "patience is at least one epoch.", es.ToString(), "patience ≥ 1");
        if (LrStepEpochs is int se && se < 1) throw Bad("training.lrStepEpochs", "--lr-step-epochs", "the rate changes after at least one epoch.", se.ToString(), "N ≥ 1");
        if (LrPlateauPatience is int pp && pp < 1) throw Bad("training.lrPlateauPatience", "--lr-plateau-patience", "patience is at least one epoch.", pp.ToString(), "patience ≥ 1");
        if (LrStepEpochs is not null && LrPlateauPatience is not null)
            throw Bad("training.lrPlateauPatience", "--lr-plateau-patience", "one learning-rate schedule at a time: a step schedule (--lr-step-epochs) is given too.",
                $"lrStepEpochs {LrStepEpochs}, lrPlateauPatience {LrPlateauPatience}", "one of the two");
        if (LrFactor is double lf)
        {
            if (!(lf > 0 && lf < 1)) throw Bad("training.lrFactor", "--lr-factor", "the schedule multiplies the rate by a factor between 0 and 1.", F(lf), "0 < factor < 1");
            if (LrStepEpochs is null && LrPlateauPatience is null)
                throw Bad("training.lrFactor", "--lr-factor", "there is no schedule to apply it: give --lr-step-epochs N or --lr-plateau-patience N.", F(lf), "a schedule");
        }
        if (LrMin is double lm)
        {
            if (!(lm >= 0 && double.IsFinite(lm))) throw Bad("training.lrMin", "--lr-min", "the floor of the learning rate must be a number ≥ 0.", F(lm), "lr-min ≥ 0");
            if (LrPlateauPatience is null)
                throw Bad("training.lrMin", "--lr-min", "the floor belongs to the plateau schedule: give --lr-plateau-patience N.", F(lm), "--lr-plateau-patience");
        }
        var device = (Device ?? "").Trim().ToLowerInvariant();
        if (device != "cpu" && !System.Text.RegularExpressions.Regex.IsMatch(device, "^cuda(:[0-9]+)?$"))
            throw Bad("training.device", "--device", "unknown device.", Device ?? "null", "cpu, cuda or cuda:N");
        if (!new[] { "adam", "adamw", "sgd", "rmsprop", "adagrad" }.Contains((Optimizer ?? "").ToLowerInvariant()))
            throw Bad("training.optimizer", "--optimizer", $"unknown optimizer '{Optimizer}'.", Optimizer ?? "null", "adam, adamw, sgd, rmsprop or adagrad");
        if (WeightDecay is double wd)
        {
            if (!(wd >= 0 && double.IsFinite(wd))) throw Bad("training.weightDecay", "--weight-decay", "the weight decay must be a number ≥ 0.", F(wd), "weight decay ≥ 0");
            if (!string.Equals(Optimizer, "adamw", StringComparison.OrdinalIgnoreCase))
                throw Bad("training.weightDecay", "--weight-decay", $"weight decay is AdamW's (decoupled from the gradient); the optimizer is {Optimizer}.", Optimizer ?? "null", "--optimizer adamw");
        }
        if (!new[] { "torch", "keras" }.Contains((Convention ?? "").ToLowerInvariant()))
            throw Bad("training.convention", "--convention", $"unknown convention '{Convention}'.", Convention ?? "null", "torch or keras");
        if (OptimizerRules is string rules && !new[] { "torch", "keras" }.Contains(rules.ToLowerInvariant()))
            throw Bad("training.optimizerRules", "--optimizer-rules", $"unknown optimizer rules '{rules}'.", rules, "torch or keras (or leave it out: the convention's)");
        if (InitWeights is string weights && !File.Exists(weights))
            throw Bad("training.initWeights", "--init-weights", Directory.Exists(weights) ? "give the weights file, not a folder." : "the weights file does not exist.",
                weights, "a PyTorch state dict (.pt) or safetensors file");
        if (device.StartsWith("cuda", StringComparison.Ordinal) && !cudaAvailable())
            throw Bad("training.device", "--device", "CUDA is not available here (a build with -p:TorchBackend=cuda on a machine with an NVIDIA GPU has it).", Device ?? "null", "cpu");
    }
}

/// <summary>
/// An experiment: model text, data source, preprocessing and training options — what
/// <c>seqdsl train --experiment file.json</c> reads. Command-line options override its values.
/// </summary>
public sealed record ExperimentSpec
{
    /// <summary>The same experiment on other data (every other field kept).</summary>
    public ExperimentSpec WithData(string data) => this with { Data = data };

    /// <summary>The same experiment with other training options (every other field kept).</summary>
    public ExperimentSpec WithTraining(TrainingSpec training) => this with { Training = training };

    /// <summary>The same experiment with other preprocessing options (every other field kept).</summary>
    public ExperimentSpec WithPreprocessing(PreprocessingSpec preprocessing) => this with { Preprocessing = preprocessing };

    /// <summary>The model as fluent text.</summary>
    public string Model { get; init; } = "";
    /// <summary>The data: imdb:PATH, csv:PATH, text:PATH[!member], series:PATH, synthetic:counting|negation|seasonal.</summary>
    public string Data { get; init; } = "";
    /// <summary>Preprocessing options.</summary>
    public PreprocessingSpec Preprocessing { get; init; } = new();
    /// <summary>Training options.</summary>
    public TrainingSpec Training { get; init; } = new();

    /// <summary>Options for reading and writing experiment files.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        // "training": null, "optimizer": null, … are errors with their JSON path, not a NullReferenceException later
        RespectNullableAnnotations = true,
    };

    /// <summary>Reads an experiment file; errors give the JSON path and line.</summary>
    public static ExperimentSpec Load(string path)
    {
        SeqDsl.Spec.InputFiles.Require(path, "Experiment file");
        try
        {
            return JsonSerializer.Deserialize<ExperimentSpec>(File.ReadAllText(path), JsonOptions)
                   ?? throw new SeqDslException(ErrorKind.Syntax, $"{path}: the file holds null.");
        }
        catch (JsonException e)
        {
            var cut = e.Message.IndexOf(" Path:", StringComparison.Ordinal);
            var msg = cut > 0 ? e.Message[..cut] : e.Message;
            if (msg.Contains("doesn't allow setting null values", StringComparison.Ordinal))
                msg = "null is not allowed here; give a value, or leave the member out for its default.";
            msg = Readable(msg);
            throw new SeqDslException(ErrorKind.Syntax,
                $"{path}: {(e.Path is null ? "" : $"at {e.Path} ")}(line {(e.LineNumber ?? 0) + 1}): {msg}", e);
        }
    }

    /// <summary>System.Text.Json's messages in the experiment file's terms: member names as the file writes them, value
    /// types as a user would say them.</summary>
    private static string Readable(string msg)
    {
        var unknown = System.Text.RegularExpressions.Regex.Match(msg, "The JSON property '([^']*)' could not be mapped to any \\.NET member contained in type '([^']+)'");
        if (unknown.Success && typeof(ExperimentSpec).Assembly.GetType(unknown.Groups[2].Value) is Type t)
        {
            var names = t.GetProperties().Where(p => p.CanWrite).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)).ToList();
            var given = unknown.Groups[1].Value;
            var near = names.OrderBy(n => ModelSyntax.Distance(n.ToLowerInvariant(), given.ToLowerInvariant())).First();
            return $"unknown member '{given}'" + (ModelSyntax.Distance(near.ToLowerInvariant(), given.ToLowerInvariant()) <= 3 ? $" (did you mean '{near}'?)" : "")
                + "; the members here are " + string.Join(", ", names) + ".";
        }
        var type = System.Text.RegularExpressions.Regex.Match(msg, "could not be converted to (?:System\\.Nullable`1\\[)?(System\\.)?([A-Za-z0-9]+)");
        if (type.Success)
            return "this value has the wrong type: expected " + type.Groups[2].Value switch
            {
                "Int32" or "Int64" => "an integer",
                "Double" or "Single" => "a number",
                "Boolean" => "true or false",
                "String" => "a \"string\"",
                "DateTime" => "a date such as \"2022-12-31\"",
                var other => other.Contains("List", StringComparison.Ordinal) ? "a list [ … ]" : other,
            } + ".";
        return msg;
    }

    /// <summary>The experiment as JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}
