using Microsoft.Data.Analysis;
using SeqDsl.Generation;

namespace SeqDsl.Workflows;

/// <summary>A trained model in use, whatever runs it: libtorch (<c>TrainedModel</c>) or ONNX Runtime
/// (<c>SeqDsl.Runtime.OnnxModel</c>). The service (<c>seqdsl serve</c>) and the command line talk to this, so either
/// engine serves the same requests with the same preparation and the same reading of outputs.</summary>
public interface IPredictor : IDisposable
{
    /// <summary>The model's text.</summary>
    string Model { get; }
    /// <summary>The task it was trained for, with its fitted series preparation.</summary>
    TaskInfo Info { get; }
    /// <summary>Classifies texts (text classification models).</summary>
    IReadOnlyList<Prediction> PredictTexts(IReadOnlyList<string> texts);
    /// <summary>Counts the ones of binary strings (synthetic:counting models).</summary>
    IReadOnlyList<Prediction> PredictCounts(IReadOnlyList<string> bits);
    /// <summary>Forecasts every window of raw series rows (columns as in the training CSV).</summary>
    IReadOnlyList<Prediction> PredictSeries(DataFrame rows);
    /// <summary>Generates text after a prefix (language models).</summary>
    string Generate(string prefix, int length, DecodeOptions options);
}
