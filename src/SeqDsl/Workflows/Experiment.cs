using System.Text.Json;
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

    /// <summary>The model, the task, and the metrics of each split, one line each.</summary>
    public override string ToString() =>
        $"{Spec.Model} ({Info.Kind}, {History.Epochs.Count} epochs)" + string.Concat(Metrics.Select(split =>
            Environment.NewLine + split.Key + ": " + string.Join(", ", split.Value.Select(m =>
                $"{m.Key} {m.Value.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)}"))));

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

/// <summary>Runs experiments: data source → task (<see cref="SeqTask"/>) → prepared rows → compiled model → training → metrics.</summary>
public static class Experiment
{
    /// <summary>Prepares the data, compiles the model, trains it and measures it. With <paramref name="stateDirectory"/>,
    /// the training state is saved there after every epoch (one atomic unit per epoch) and a run that finds a state
    /// there continues from it — bit for bit as if it had not been interrupted; a state written by another experiment
    /// (anything but the number of epochs differs) is refused.</summary>
    public static ExperimentResult Run(ExperimentSpec spec, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default, Action<string>? log = null, string? stateDirectory = null)
    {
        var model = ParseModel(spec.Model);
        var t = spec.Training;
        Validate(spec); // every bound, before any data is read
        if (t.Threads is int threads) set_num_threads(threads);
        var task = SeqTask.For(DataSource.Parse(spec.Data), spec.Preprocessing);
        if (stateDirectory is not null) ClaimState(stateDirectory, spec, log);
        var data = task.Prepare(spec, model, null, null);
        log?.Invoke(data.Description);
        var net = Network.Compile(model, new CompileOptions
        {
            Input = data.Input,
            Convention = ParseEnum<Convention>(t.Convention, "training.convention"),
            Device = t.Device,
            Seed = t.Seed,
            Vocabulary = data.Text?.Vocabulary.Index,
            Diagnostics = log,
            KernelChoices = stateDirectory is not null && HasTrainingState(stateDirectory) ? SavedKernels(stateDirectory, log) : null,
        });
        log?.Invoke(net.Summary.ToString());
        try
        {
            if (stateDirectory is not null && !HasTrainingState(stateDirectory))
                SaveKernels(stateDirectory, net.MeasuredKernels);
            if (t.InitWeights is string weights) log?.Invoke(TorchWeights.Load(net, weights).ToString());
            var outcome = task.Train(net, data, spec, progress, cancellation, stateDirectory);
            return new ExperimentResult
            {
                Network = net, History = outcome.History, Metrics = outcome.Metrics, Info = data.Info, Text = data.Text, Spec = spec,
                Samples = outcome.Samples,
            };
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>The kernels Auto measured and took in the run that wrote a state (kernels.json: layer index → kernel), so
    /// that the resumed run takes the same ones; null when there is none (a state from before the file, or a model
    /// without such layers), and the layers are measured again.</summary>
    private static Dictionary<int, Kernel>? SavedKernels(string dir, Action<string>? log)
    {
        var file = Path.Combine(dir, "kernels.json");
        if (!File.Exists(file)) return null;
        try
        {
            var saved = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(file)) ?? [];
            return saved.ToDictionary(e => int.Parse(e.Key, System.Globalization.CultureInfo.InvariantCulture), e => Enum.Parse<Kernel>(e.Value));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or ArgumentException or OverflowException or IOException
            or UnauthorizedAccessException)
        {
            log?.Invoke($"{file} could not be read ({e.Message}); kernel Auto measures again, so the resumed run may take other kernels");
            return null;
        }
    }

    private static void SaveKernels(string dir, IReadOnlyDictionary<int, Kernel> kernels)
    {
        var file = Path.Combine(dir, "kernels.json");
        if (kernels.Count == 0)
        {
            if (File.Exists(file)) File.Delete(file);
            return;
        }
        Directory.CreateDirectory(dir);
        Durable.ReplaceText(file, System.Text.Json.JsonSerializer.Serialize(
            kernels.OrderBy(k => k.Key).ToDictionary(k => k.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), k => k.Value.ToString())));
    }

    /// <summary>Whether <paramref name="dir"/> holds a saved training state to resume from (at least one published
    /// generation).</summary>
    public static bool HasTrainingState(string dir) => Directory.Exists(dir) && Directory.GetDirectories(dir, "epoch-*").Length > 0;

    /// <summary>Writes the experiment (and a fingerprint of its data file) into a state directory that holds no state yet,
    /// or checks that an existing state was written by the same experiment on the same data (the number of epochs and
    /// the batch checkpoints may differ: a resumed run may train longer).</summary>
    private static void ClaimState(string dir, ExperimentSpec spec, Action<string>? log)
    {
        var file = Path.Combine(dir, "experiment.json");
        var dataFile = Path.Combine(dir, "data.sha256");
        var fingerprint = DataFingerprint(spec.Data);
        static System.Text.Json.Nodes.JsonNode Comparable(ExperimentSpec s) =>
            System.Text.Json.Nodes.JsonNode.Parse((s with { Training = s.Training with { Epochs = 0, CheckpointEveryBatches = null } }).ToJson())!;
        if (HasTrainingState(dir))
        {
            if (!File.Exists(file))
                throw new SeqDslException(ErrorKind.Data, $"The training state in {dir} is damaged: it has no experiment.json; start over with --fresh.");
            ExperimentSpec saved;
            try
            {
                saved = ExperimentSpec.Load(file);
            }
            catch (SeqDslException e)
            {
                throw new SeqDslException(ErrorKind.Data, $"The training state in {dir} is damaged: {e.Message}", e);
            }
            var a = Comparable(saved);
            var b = Comparable(spec);
            if (!System.Text.Json.Nodes.JsonNode.DeepEquals(a, b))
            {
                var differs = Differences(a, b, "").Take(3).ToList();
                throw new SeqDslException(ErrorKind.Spec, $"The training state in {dir} belongs to another experiment ({string.Join(", ", differs)} {(differs.Count == 1 ? "differs" : "differ")}); resume with the options of the interrupted run, or start over with --fresh.")
                { Received = string.Join(", ", differs), Expected = "the experiment that wrote the state (the number of epochs may differ)" };
            }
            var savedPrint = File.Exists(dataFile) ? File.ReadAllText(dataFile).Trim() : "";
            if (savedPrint != fingerprint)
                throw new SeqDslException(ErrorKind.Data, $"The data file of {spec.Data} changed since the interrupted run (its SHA-256 differs); resuming would not continue the same training. Start over with --fresh.")
                { Received = fingerprint, Expected = savedPrint };
            log?.Invoke($"resuming from the training state in {dir}");
            return;
        }
        // no state yet (or only what a run that stopped before its first save wrote): this run claims the directory
        Directory.CreateDirectory(dir);
        Durable.ReplaceText(file, spec.ToJson());
        Durable.ReplaceText(dataFile, fingerprint);
    }

    /// <summary>SHA-256 of the data file a source reads (empty for generated data and folders).</summary>
    private static string DataFingerprint(string data)
    {
        var source = DataSource.Parse(data);
        return source.Kind == "synthetic" || !File.Exists(source.Path) ? "" : Durable.Sha256(source.Path);
    }

    private static IEnumerable<string> Differences(System.Text.Json.Nodes.JsonNode? a, System.Text.Json.Nodes.JsonNode? b, string path)
    {
        if (a is System.Text.Json.Nodes.JsonObject oa && b is System.Text.Json.Nodes.JsonObject ob)
        {
            foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                foreach (var d in Differences(oa[key], ob[key], path.Length == 0 ? key : $"{path}.{key}"))
                    yield return d;
        }
        else if (!System.Text.Json.Nodes.JsonNode.DeepEquals(a, b))
        {
            yield return path;
        }
    }

    /// <summary>Checks every training and preprocessing option (<see cref="TrainingSpec.Validate"/>,
    /// <see cref="PreprocessingSpec.Validate"/>), and that a CUDA device is available here, before any data is read.</summary>
    public static void Validate(ExperimentSpec spec)
    {
        spec.Training.Validate(CompileOptions.CudaAvailable);
        spec.Preprocessing.Validate();
        if (spec.Training.CheckpointEveryBatches is int n && spec.Data.StartsWith("text:", StringComparison.Ordinal)
            && string.Equals(spec.Preprocessing.Sampling, "consecutive", StringComparison.OrdinalIgnoreCase))
            throw new SeqDslException(ErrorKind.Spec, "training.checkpointEveryBatches (--checkpoint-batches): consecutive sampling carries the recurrent state from batch to batch, so its state is saved at epoch ends only.")
            { Received = $"--checkpoint-batches {n} with --sampling consecutive", Expected = "random or chunks sampling, or no --checkpoint-batches" };
    }

    /// <summary>Parses the model text, reporting errors with the text's column.</summary>
    public static ModelSpec ParseModel(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new SeqDslException(ErrorKind.Spec, "No model given.") { Expected = "a model text such as \"Embed(32).Lstm(64).Dense(1, Sigmoid)\"" };
        return ModelSyntax.Parse(text);
    }

    /// <summary>Generates text from a prefix with a trained language model (<see cref="LanguageModelTask.Generate"/>).</summary>
    public static string Generate(Network net, TextPreprocessing text, string prefix, int length, DecodeOptions options) =>
        LanguageModelTask.Generate(net, text, prefix, length, options);

    /// <summary>Turns the data source into rows with its task (<see cref="SeqTask.Prepare"/>). With <paramref name="fitted"/>
    /// (a saved model's task) the saved preparation is applied instead of fitting a new one.</summary>
    public static PreparedData Prepare(ExperimentSpec spec, ModelSpec model, TaskInfo? fitted, TextPreprocessing? fittedText)
    {
        var source = DataSource.Parse(spec.Data);
        var task = fitted is null ? SeqTask.For(source, spec.Preprocessing) : SeqTask.For(fitted, source, spec.Preprocessing);
        return task.Prepare(spec, model, fitted, fittedText);
    }

    internal static T ParseEnum<T>(string value, string what) where T : struct, Enum =>
        Enum.TryParse<T>(value, true, out var r) && Enum.IsDefined(r) ? r
        : throw new SeqDslException(ErrorKind.Spec, $"Invalid {what} '{value}'.")
        { Received = value, Expected = "one of " + string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant())) };
}
