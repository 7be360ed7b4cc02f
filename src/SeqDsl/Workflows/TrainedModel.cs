using System.Globalization;
using SeqDsl.Data;
using SeqDsl.Engine;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Training;
using static TorchSharp.torch;

namespace SeqDsl.Workflows;

/// <summary>One prediction of a classifier or regressor.</summary>
/// <param name="Input">What was given (text, or a row's date for series).</param>
/// <param name="Value">Probability of class 1, the predicted value, or the predicted class index.</param>
/// <param name="Label">The class (0/1 or index) for classifiers; null for regression.</param>
public sealed record Prediction(string Input, double Value, int? Label);

/// <summary>A saved model directory with everything needed to use it: network, task, preparation.</summary>
public sealed class TrainedModel : IDisposable
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
        var spec = ModelStore.ReadExtra(directory, "experiment.json") is string e
            ? System.Text.Json.JsonSerializer.Deserialize<ExperimentSpec>(e, ExperimentSpec.JsonOptions) : null;
        return new TrainedModel { Network = ModelStore.Load(directory, device), Info = info, Text = text, Experiment = spec };
    }

    /// <summary>Loss and metrics on a data source prepared with the saved preparation (its test part, or all of it).</summary>
    public Dictionary<string, double> Evaluate(ExperimentSpec data)
    {
        if (Info.Kind == TaskKind.LanguageModel)
        {
            var prepared = Workflows.Experiment.Prepare(data, Network.Spec, Info, Text);
            var corpus = prepared.Corpus!;
            var steps = Math.Min(data.Preprocessing.Steps, corpus.Length - 1);
            // every character predicted once: non-overlapping windows of `steps` (stride-1 chunks of a large
            // corpus would not fit in memory)
            var n = (corpus.Length - 1) / steps;
            var xs = new long[n * (long)steps];
            var ys = new long[n * (long)steps];
            for (var i = 0; i < n * steps; i++)
            {
                xs[i] = corpus[i];
                ys[i] = corpus[i + 1];
            }
            var windows = new SequenceData(tensor(xs, [n, steps]), tensor(ys, [n, steps]));
            var x = Info.OneHot is int v ? LanguageModelData.OneHot(windows.Inputs, v) : windows.Inputs;
            return Trainer.Evaluate(Network, windows with { Inputs = x }, new Loss(LossKind.CrossEntropy), [Metric.Perplexity]);
        }
        var d = Workflows.Experiment.Prepare(data, Network.Spec, Info, Text);
        var set = d.Test ?? d.Train!;
        return Trainer.Evaluate(Network, set, new Loss(Info.Loss), Info.Metrics);
    }

    /// <summary>Classifies texts (probability of class 1 and the label, or the most likely class).</summary>
    public IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts)
    {
        if (Info.Kind != TaskKind.Classification || Text is null)
            throw new SeqDslException(ErrorKind.Spec, $"This model was trained for {Info.Kind}, not text classification.")
            { Received = "texts", Expected = Info.Kind == TaskKind.LanguageModel ? "seqdsl generate" : "a CSV of series rows (--file)" };
        var (x, l) = Text.Encode(texts);
        using var _x = x;
        using var _l = l;
        using var y = Trainer.Predict(Network, x, l);
        var rows = y.reshape(texts.Count, -1);
        var output = new List<Prediction>();
        for (var i = 0; i < texts.Count; i++)
        {
            using var r = rows[i];
            if (r.shape[0] == 1)
            {
                var v = r.item<float>();
                var p = Info.Loss == LossKind.BinaryCrossEntropyWithLogits ? 1 / (1 + Math.Exp(-v)) : v;
                output.Add(new Prediction(texts[i], p, p >= 0.5 ? 1 : 0));
            }
            else
            {
                using var probs = Network.OutputActivation == Activation.Softmax ? r.alias() : r.softmax(0);
                var k = (int)probs.argmax().item<long>();
                output.Add(new Prediction(texts[i], probs[k].item<float>(), k));
            }
        }
        return output;
    }

    /// <summary>Counts the ones of binary strings (a model trained on synthetic:counting).</summary>
    public IReadOnlyList<Prediction> PredictCounts(IReadOnlyList<string> bits)
    {
        if (Info.Data != "synthetic:counting")
            throw new SeqDslException(ErrorKind.Spec, "Binary strings are the input of a synthetic:counting model.") { Received = Info.Data };
        return bits.Select(b =>
        {
            var d = Synthetic.OneSequence(b.Trim());
            using var y = Trainer.Predict(Network, d.Inputs);
            return new Prediction(b, y.item<float>(), null);
        }).ToList();
    }

    /// <summary>Forecasts every window of a series CSV (the value at each window's last row).</summary>
    public IReadOnlyList<Prediction> PredictSeries(string csvPath)
    {
        if (Info.Kind != TaskKind.Regression || Info.Scaler is null)
            throw new SeqDslException(ErrorKind.Spec, "A CSV of rows is the input of a series model.") { Received = Info.Data };
        var spec = new ExperimentSpec { Model = Network.Spec.ToString(), Data = "series:" + csvPath };
        var (frame, _, target, _) = Workflows.Experiment.SeriesFrame(DataSource.Parse(spec.Data), spec, Info);
        var window = Info.Window ?? 5;
        var data = Windows.Sliding(Info.Scaler.Transform(frame), SeriesFeatures.Values(frame, target).Select(v => v ?? double.NaN).ToArray(), window);
        using var y = Trainer.Predict(Network, data.Inputs);
        var values = y.reshape(-1).data<float>().ToArray();
        var dates = frame.Columns.Any(c => c.Name == "Date") ? frame.Columns["Date"] : null;
        string Label(int i) => dates?[i + window - 1] is DateTime d ? d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : $"row {i + window}";
        return values.Select((v, i) => new Prediction(Label(i), v, null)).ToList();
    }

    /// <summary>Generates text after a prefix (language models).</summary>
    public string Generate(string prefix, int length, DecodeOptions options)
    {
        if (Info.Kind != TaskKind.LanguageModel || Text is null)
            throw new SeqDslException(ErrorKind.Spec, $"This model was trained for {Info.Kind}; generation needs a language model (data text:PATH).");
        return Workflows.Experiment.Generate(Network, Text, prefix, length, options);
    }

    /// <inheritdoc />
    public void Dispose() => Network.Dispose();
}
