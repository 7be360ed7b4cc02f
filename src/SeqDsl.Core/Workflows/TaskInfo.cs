using System.Text.Json;
using SeqDsl.Data;
using SeqDsl.Spec;
using SeqDsl.Training;

namespace SeqDsl.Workflows;

/// <summary>What a trained model needs to be used again: the task, its loss and metrics, and the
/// fitted series preparation. Saved as <c>task.json</c> beside the weights (text preparation goes
/// to <c>preprocessing.json</c>).</summary>
public sealed record TaskInfo
{
    /// <summary>File name inside a model directory.</summary>
    public const string FileName = "task.json";

    /// <summary>The task.</summary>
    public TaskKind Kind { get; init; }
    /// <summary>The data source trained on.</summary>
    public string Data { get; init; } = "";
    /// <summary>The loss.</summary>
    public LossKind Loss { get; init; }
    /// <summary>The metrics reported.</summary>
    public IReadOnlyList<Metric> Metrics { get; init; } = [];
    /// <summary>Language models without Embed read one-hot vectors of this width.</summary>
    public int? OneHot { get; init; }
    /// <summary>Series: feature columns, before lagging or deriving.</summary>
    public IReadOnlyList<string>? FeatureColumns { get; init; }
    /// <summary>Series: the target column.</summary>
    public string? TargetColumn { get; init; }
    /// <summary>Series: raw or seed002.</summary>
    public string? FeatureSet { get; init; }
    /// <summary>Series: rows per window.</summary>
    public int? Window { get; init; }
    /// <summary>Series: the scaler fitted on the training period.</summary>
    public StandardScaler? Scaler { get; init; }
    /// <summary>Series: the target's scaler, fitted on the training period. The network learns and outputs the scaled
    /// target; predictions and reported metrics are scaled back into the target's units. Null: the network learns the
    /// target as it is (preprocessing.scaleTarget false, or a model saved before target scaling).</summary>
    public StandardScaler? TargetScaler { get; init; }
    /// <summary>Classification: the name of each class (index k is class k) when the training labels were names
    /// (a CSV label column of words, IMDB's neg/pos); null when they were class indices.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>JSON form.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ExperimentSpec.JsonOptions);

    /// <summary>Reads the JSON form.</summary>
    public static TaskInfo FromJson(string json, string where)
    {
        try
        {
            return JsonSerializer.Deserialize<TaskInfo>(json, ExperimentSpec.JsonOptions) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"{where}: invalid {FileName}: {e.Message}", e);
        }
    }
}
