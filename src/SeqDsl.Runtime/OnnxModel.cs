using Microsoft.Data.Analysis;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SeqDsl.Data;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Workflows;

namespace SeqDsl.Runtime;

/// <summary>How an exported model is run.</summary>
public sealed record OnnxModelOptions
{
    /// <summary>Threads of one inference (ONNX Runtime's intra-op pool); null: ONNX Runtime's default (the cores).</summary>
    public int? Threads { get; init; }
    /// <summary>Rows per forward pass when predicting many inputs.</summary>
    public int BatchSize { get; init; } = 256;
}

/// <summary>
/// A model exported by SeqDsl (<c>seqdsl export</c>), used with ONNX Runtime only: texts are tokenized, encoded and
/// padded, series rows windowed and scaled, outputs read as predictions, and tokens sampled exactly as SeqDsl does
/// it with libtorch — the code for that is SeqDsl.Core's, shared, not copied. Thread-safe: concurrent calls share
/// one session.
/// </summary>
public sealed class OnnxModel : IPredictor
{
    private readonly InferenceSession _session;
    private readonly OnnxModelOptions _options;

    /// <summary>The model's text, task description, text preparation and graph interface, read from the file's metadata.</summary>
    public ExportMetadata Metadata { get; }
    /// <inheritdoc />
    public string Model => Metadata.Model;
    /// <inheritdoc />
    public TaskInfo Info => Metadata.Task;
    /// <summary>The text preparation (text classifiers and language models).</summary>
    public TextPreprocessing? Text => Metadata.Text;
    /// <summary>The graph's inputs and outputs.</summary>
    public GraphInterface Interface => Metadata.Interface;

    private OnnxModel(InferenceSession session, ExportMetadata metadata, OnnxModelOptions options)
    {
        _session = session;
        Metadata = metadata;
        _options = options;
    }

    /// <summary>Loads an exported <c>.onnx</c> file.</summary>
    /// <exception cref="SeqDslException">The file is missing, not ONNX, or not exported by SeqDsl.</exception>
    public static OnnxModel Load(string path, OnnxModelOptions? options = null)
    {
        if (Directory.Exists(path))
            throw new SeqDslException(ErrorKind.Data, $"{path} is a directory, not an .onnx file.") { Expected = "an .onnx file written by seqdsl export" };
        if (!File.Exists(path))
            throw new SeqDslException(ErrorKind.Data, $"{path} does not exist.") { Expected = "an .onnx file written by seqdsl export" };
        return FromBytes(File.ReadAllBytes(path), path, options);
    }

    /// <summary>Loads an exported model from its bytes (<paramref name="name"/> names it in errors).</summary>
    public static OnnxModel FromBytes(byte[] model, string name = "the model", OnnxModelOptions? options = null) =>
        Create(name, model, options);

    private static OnnxModel Create(string name, byte[] model, OnnxModelOptions? options)
    {
        options ??= new OnnxModelOptions();
        // ONNX Runtime's own warnings (e.g. on a foreign file's old opset) are not for the user: errors still surface
        using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        if (options.Threads is int t) so.IntraOpNumThreads = t;
        InferenceSession session;
        try
        {
            session = new InferenceSession(model, so);
        }
        catch (OnnxRuntimeException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"{name} is not a model ONNX Runtime can load: {FirstLine(e.Message)}", e);
        }
        try
        {
            var properties = session.ModelMetadata.CustomMetadataMap;
            var metadata = ExportMetadata.FromProperties(properties, name);
            if (!properties.TryGetValue(ExportMetadata.Sha256Key, out var digest) || !ExportMetadata.Verify(model, digest))
                throw new SeqDslException(ErrorKind.Data, $"{name} was changed after it was exported: its SHA-256 differs from the one it carries. Export it again (seqdsl export).");
            return new OnnxModel(session, metadata, options);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>Runs the graph on a batch: ids (rows × columns, Int64) or features (rows × columns × width, float),
    /// each row's true length, and the carried states (null: zeros, or none). Returns the output and the next states.</summary>
    public (float[] output, long[] shape, Dictionary<string, float[]> states) Run(Array input, long[] shape, long[] lengths,
        IReadOnlyDictionary<string, float[]>? states = null)
    {
        var g = Interface;
        var inputs = new List<NamedOnnxValue>
        {
            input switch
            {
                long[] ids when g.InputKind == GraphInput.Ids => NamedOnnxValue.CreateFromTensor(g.Input, new DenseTensor<long>(ids, shape.Select(d => (int)d).ToArray())),
                float[] f when g.InputKind == GraphInput.Features => NamedOnnxValue.CreateFromTensor(g.Input, new DenseTensor<float>(f, shape.Select(d => (int)d).ToArray())),
                _ => throw new SeqDslException(ErrorKind.Shape, $"The model reads {(g.InputKind == GraphInput.Ids ? "Int64 token ids" : "float features")}.")
                    { Received = input.GetType().Name, Expected = g.InputKind == GraphInput.Ids ? "long[]" : "float[]" },
            },
            NamedOnnxValue.CreateFromTensor(g.Lengths, new DenseTensor<long>(lengths, [lengths.Length])),
        };
        var rows = (int)shape[0];
        foreach (var s in g.States)
        {
            var values = states is not null && states.TryGetValue(s.Input, out var v) ? v : new float[s.Rows * rows * s.Units];
            inputs.Add(NamedOnnxValue.CreateFromTensor(s.Input, new DenseTensor<float>(values, [s.Rows, rows, s.Units])));
        }
        using var results = _session.Run(inputs);
        float[]? output = null;
        long[] outShape = [];
        var next = new Dictionary<string, float[]>();
        foreach (var r in results)
        {
            var t = r.AsTensor<float>();
            if (r.Name == g.Output)
            {
                output = t.ToArray();
                outShape = t.Dimensions.ToArray().Select(d => (long)d).ToArray();
            }
            else if (g.States.FirstOrDefault(s => s.Output == r.Name) is GraphState s)
            {
                next[s.Input] = t.ToArray();
            }
        }
        return (output ?? throw new InvalidOperationException("the graph gave no output"), outShape, next);
    }

    /// <summary>The outputs for many rows, in batches of <see cref="OnnxModelOptions.BatchSize"/>: (rows × width) values.</summary>
    private float[] RunRows(ArrayData data, long[]? lengths, out int width)
    {
        var n = (int)data.Count;
        var rowSize = data.InputShape.Skip(1).Aggregate(1L, (a, b) => a * b);
        var result = new List<float>();
        width = 0;
        for (var start = 0; start < n; start += _options.BatchSize)
        {
            var count = Math.Min(_options.BatchSize, n - start);
            long[] shape = [count, .. data.InputShape.Skip(1)];
            Array part = data.Inputs switch
            {
                long[] ids => ids.AsSpan((int)(start * rowSize), (int)(count * rowSize)).ToArray(),
                float[] f => f.AsSpan((int)(start * rowSize), (int)(count * rowSize)).ToArray(),
                _ => throw new InvalidOperationException("inputs are long[] or float[]"),
            };
            var lens = lengths?.AsSpan(start, count).ToArray() ?? Enumerable.Repeat(data.InputShape[1], count).ToArray();
            var (output, outShape, _) = Run(part, shape, lens);
            width = (int)(output.Length / count);
            result.AddRange(output);
        }
        return result.ToArray();
    }

    private SeqDslException WrongTask(string what, string expected) =>
        new(ErrorKind.Spec, $"This model was trained for {Info.Kind} ({Info.Data}); {what}.") { Received = Model, Expected = expected };

    /// <inheritdoc />
    public IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts)
    {
        if (Info.Kind != TaskKind.Classification || Text is null) throw WrongTask("texts are classified by a text classifier", "a model trained on imdb:, csv: or synthetic:negation data");
        if (texts.Count == 0) return [];
        var padded = Text.Encode(texts);
        var output = RunRows(ArrayData.FromIds(padded, new float[padded.Rows], [padded.Rows]), padded.Lengths, out var width);
        return Predictions.FromOutputs(texts, output, width, Info, Interface.OutputActivation);
    }

    /// <inheritdoc />
    public IReadOnlyList<Prediction> PredictCounts(IReadOnlyList<string> bits)
    {
        if (Info.Kind != TaskKind.Regression || Info.Data != "synthetic:counting") throw WrongTask("binary strings are the input of a synthetic:counting model", "a model trained on synthetic:counting");
        return bits.Select(b =>
        {
            var d = Synthetic.OneSequence(b.Trim());
            var output = RunRows(d, null, out var width);
            return Predictions.FromOutputs([b], output, width, Info, Interface.OutputActivation)[0];
        }).ToList();
    }

    /// <summary>Forecasts every window of a series CSV (columns as in the training CSV).</summary>
    public IReadOnlyList<Prediction> PredictSeries(string csvPath)
    {
        if (Info.Scaler is null) throw WrongTask("a CSV of rows is the input of a series model", "a model trained on series: or csv: rows");
        var (windows, labels) = SeriesPreparation.ForPrediction(Info, csvPath);
        return Predictions.FromOutputs(labels, RunRows(windows, null, out var width), width, Info, Interface.OutputActivation);
    }

    /// <inheritdoc />
    public IReadOnlyList<Prediction> PredictSeries(DataFrame rows)
    {
        if (Info.Scaler is null) throw WrongTask("series rows are the input of a series model", "a model trained on series: or csv: rows");
        var (windows, labels) = SeriesPreparation.ForPrediction(Info, rows);
        return Predictions.FromOutputs(labels, RunRows(windows, null, out var width), width, Info, Interface.OutputActivation);
    }

    /// <summary>The distribution of the next character after <paramref name="prefix"/> (language models): each token of
    /// the vocabulary and its probability.</summary>
    public IReadOnlyDictionary<string, double> NextProbabilities(string prefix)
    {
        var ids = PrefixIds(prefix);
        Dictionary<string, float[]>? states = null;
        float[] last = [];
        foreach (var id in ids)
        {
            var (output, _, next) = Run(new long[] { id }, [1, 1], [1], states);
            (last, states) = (output, next);
        }
        var probabilities = Interface.OutputActivation == Activation.Softmax
            ? last.Select(v => (double)v).ToArray()
            : Predictions.Softmax(last);
        return Text!.Vocabulary.Tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => probabilities[p.i]);
    }

    private int[] PrefixIds(string prefix)
    {
        if (Info.Kind != TaskKind.LanguageModel || Text is null) throw WrongTask("generation needs a language model", "a model trained on text: data");
        if (Interface.States.Count == 0)
            throw new SeqDslException(ErrorKind.Spec, "This export has no state inputs, so it cannot generate step by step.")
            { Received = "exported without states", Expected = "seqdsl export (language models carry their states by default)" };
        var ids = Text.Vocabulary.EncodeStrict(Tokenizer.FromName(Text.Tokenizer).Tokenize(prefix));
        if (ids.Length == 0) throw new SeqDslException(ErrorKind.Data, "Generation needs a prefix of at least one token.");
        return ids;
    }

    /// <inheritdoc />
    public string Generate(string prefix, int length, DecodeOptions options)
    {
        var ids = PrefixIds(prefix);
        Dictionary<string, float[]>? states = null;
        var generated = Sampler.Generate(token =>
        {
            var (output, _, next) = Run(new long[] { token }, [1, 1], [1], states);
            states = next;
            return output;
        }, ids, length, options, Interface.OutputActivation == Activation.Softmax);
        return string.Concat(Text!.Vocabulary.Decode(generated));
    }

    /// <inheritdoc />
    public void Dispose() => _session.Dispose();
}
