using Microsoft.Data.Analysis;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Training;

namespace SeqDsl.Workflows;

/// <summary>A saved model directory with everything needed to use it: network, task, preparation.</summary>
public sealed class TrainedModel : IPredictor
{
    /// <summary>The network with its weights.</summary>
    public required Network Network { get; init; }
    /// <summary>The task and series preparation.</summary>
    public required TaskInfo Info { get; init; }
    /// <summary>The text preparation, for text tasks and language models.</summary>
    public TextPreprocessing? Text { get; init; }
    /// <summary>The experiment it was trained with, when saved by an experiment.</summary>
    public ExperimentSpec? Experiment { get; init; }

    /// <summary>Loads a model directory written by <see cref="ExperimentResult.Save"/>.</summary>
    public static TrainedModel Load(string directory, string device = "cpu")
    {
        var info = ModelStore.ReadExtra(directory, TaskInfo.FileName) is string t
            ? TaskInfo.FromJson(t, directory)
            : throw new SeqDslException(ErrorKind.Data, $"{directory} has no {TaskInfo.FileName}: it was not saved by seqdsl train or Experiment.Save.");
        var text = ModelStore.ReadExtra(directory, TextPreprocessing.FileName) is string p ? TextPreprocessing.FromJson(p) : null;
        var spec = ModelStore.ReadExtra(directory, "experiment.json") is not null
            ? ExperimentSpec.Load(Path.Combine(directory, "experiment.json")) : null;
        return new TrainedModel { Network = ModelStore.Load(directory, device), Info = info, Text = text, Experiment = spec };
    }

    /// <inheritdoc />
    public string Model => Network.Spec.ToString();

    /// <summary>The model text and its task, e.g. "Embed(16).Lstm(32).Dense(1, Sigmoid) (TextClassification)".</summary>
    public override string ToString() => $"{Model} ({Info.Kind})";

    /// <summary>The task the model was trained for.</summary>
    public SeqTask Task => SeqTask.For(Info);

    /// <summary>Loss and metrics on a data source prepared with the saved preparation (its test part, or all of it).</summary>
    public Dictionary<string, double> Evaluate(ExperimentSpec data)
    {
        var task = SeqTask.For(Info, DataSource.Parse(data.Data), data.Preprocessing);
        return task.Evaluate(Network, task.Prepare(data, Network.Spec, Info, Text), data);
    }

    /// <summary>Classifies texts (probability of class 1 and the label, or the most likely class).</summary>
    public IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts) =>
        Task is TextClassificationTask && Text is not null ? TextClassificationTask.Predict(Network, Info, Text, texts)
        : throw new SeqDslException(ErrorKind.Spec, $"This model was trained for {Info.Kind}, not text classification.")
        { Received = "texts", Expected = Info.Kind == TaskKind.LanguageModel ? "seqdsl generate" : "a CSV of series rows (--file)" };

    /// <summary>Counts the ones of binary strings (a model trained on synthetic:counting).</summary>
    public IReadOnlyList<Prediction> PredictCounts(IReadOnlyList<string> bits) =>
        Task is CountingTask ? CountingTask.Predict(Network, bits)
        : throw new SeqDslException(ErrorKind.Spec, "Binary strings are the input of a synthetic:counting model.") { Received = Info.Data };

    /// <summary>Forecasts every window of a series CSV (the value at each window's last row).</summary>
    public IReadOnlyList<Prediction> PredictSeries(string csvPath) =>
        Task is SeriesTask && Info.Scaler is not null ? SeriesTask.Predict(Network, Info, csvPath)
        : throw new SeqDslException(ErrorKind.Spec, "A CSV of rows is the input of a series model.") { Received = Info.Data };

    /// <summary>Forecasts every window of raw series rows (columns as in the training CSV).</summary>
    public IReadOnlyList<Prediction> PredictSeries(DataFrame rows) =>
        Task is SeriesTask && Info.Scaler is not null ? SeriesTask.Predict(Network, Info, rows)
        : throw new SeqDslException(ErrorKind.Spec, "Series rows are the input of a series model.") { Received = Info.Data };

    /// <summary>Generates text after a prefix (language models).</summary>
    public string Generate(string prefix, int length, DecodeOptions options) =>
        Task is LanguageModelTask && Text is not null ? LanguageModelTask.Generate(Network, Text, prefix, length, options)
        : throw new SeqDslException(ErrorKind.Spec, $"This model was trained for {Info.Kind}; generation needs a language model (data text:PATH).");

    /// <summary>Writes the model's weights as one safetensors file, PyTorch's state dict names and layout
    /// (<see cref="TorchWeights.SaveSafetensors"/>; <c>Export.TorchExport</c> writes them with the nn.Module).</summary>
    public void SaveSafetensors(string path) => TorchWeights.SaveSafetensors(Network, path);

    /// <inheritdoc />
    public void Dispose() => Network.Dispose();
}
