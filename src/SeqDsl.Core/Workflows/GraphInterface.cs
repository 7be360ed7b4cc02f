using System.Text.Json;
using System.Text.Json.Serialization;
using SeqDsl.Data;
using SeqDsl.Spec;

namespace SeqDsl.Workflows;

/// <summary>What an exported graph (ONNX) reads: token ids, or feature vectors per step.</summary>
public enum GraphInput
{
    /// <summary>Int64 token ids (batch, time); the graph embeds them or makes them one-hot.</summary>
    Ids,
    /// <summary>Float32 features (batch, time, features).</summary>
    Features,
}

/// <summary>The carried state of one recurrent layer in an exported graph: fed as <paramref name="Input"/>, returned
/// as <paramref name="Output"/>, shape (<paramref name="Rows"/> = stacked layers × directions, batch, <paramref name="Units"/>).</summary>
public sealed record GraphState(string Input, string Output, int Rows, int Units);

/// <summary>The inputs and outputs of an exported graph, and how to read its output: what the runtime needs besides
/// the weights. Stored in the ONNX file's metadata (<see cref="ExportMetadata"/>).</summary>
public sealed record GraphInterface
{
    /// <summary>Name of the input tensor.</summary>
    public string Input { get; init; } = "input";
    /// <summary>What the input holds.</summary>
    public GraphInput InputKind { get; init; }
    /// <summary>Features per step (<see cref="GraphInput.Features"/>); the vocabulary size for ids.</summary>
    public long InputWidth { get; init; }
    /// <summary>Name of the Int64 (batch) lengths input: each sequence's true length; padding after it is ignored.</summary>
    public string Lengths { get; init; } = "lengths";
    /// <summary>Name of the output tensor.</summary>
    public string Output { get; init; } = "output";
    /// <summary>Whether the output has a time axis (batch, time, width) or not (batch, width).</summary>
    public bool OutputSequence { get; init; }
    /// <summary>Output values per row (per step for sequences).</summary>
    public long OutputWidth { get; init; }
    /// <summary>The activation of the last layer (probabilities after Softmax, scores after Linear).</summary>
    public Activation OutputActivation { get; init; }
    /// <summary>Carried states of the recurrent layers, input first (empty unless exported with states).</summary>
    public IReadOnlyList<GraphState> States { get; init; } = [];
}

/// <summary>The metadata an exported model carries so that it can be used without SeqDsl's training side: the model
/// text, the task description, the text preparation (tokenizer, vocabulary, padding) and the graph interface, each a
/// JSON string under a <c>seqdsl.</c> key.</summary>
public sealed record ExportMetadata(string Model, TaskInfo Task, TextPreprocessing? Text, GraphInterface Interface)
{
    /// <summary>The version of this layout of keys.</summary>
    public const int Format = 1;

    private static readonly JsonSerializerOptions Options = new(ExperimentSpec.JsonOptions) { WriteIndented = false, Converters = { new JsonStringEnumConverter() } };

    /// <summary>The metadata key of the file's own SHA-256 (computed with this key's value set to <see cref="Placeholder"/>).</summary>
    public const string Sha256Key = "seqdsl.sha256";

    /// <summary>What the SHA-256 key holds while the file is hashed: 64 ASCII characters, as long as the digest in hex.</summary>
    public const string Placeholder = "SeqDsl-SHA-256-of-this-file-with-this-value-in-place-of-the-hash";

    /// <summary>Writes the SHA-256 of a serialized model into it, in place of <see cref="Placeholder"/> (same length, so
    /// the protobuf framing is unchanged). Returns the digest.</summary>
    public static string Seal(byte[] model)
    {
        var at = IndexOf(model, System.Text.Encoding.ASCII.GetBytes(Placeholder));
        if (at < 0) throw new ArgumentException("The model holds no SHA-256 placeholder.", nameof(model));
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(model));
        System.Text.Encoding.ASCII.GetBytes(digest).CopyTo(model, at);
        return digest;
    }

    /// <summary>Checks a sealed model against the digest it carries (<paramref name="recorded"/>, from its metadata).</summary>
    public static bool Verify(byte[] model, string recorded)
    {
        if (recorded.Length != Placeholder.Length) return false;
        var at = IndexOf(model, System.Text.Encoding.ASCII.GetBytes(recorded));
        if (at < 0) return false;
        var copy = (byte[])model.Clone();
        System.Text.Encoding.ASCII.GetBytes(Placeholder).CopyTo(copy, at);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(copy)) == recorded;
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    /// <summary>The key → value pairs to store.</summary>
    public IReadOnlyDictionary<string, string> ToProperties()
    {
        var d = new Dictionary<string, string>
        {
            ["seqdsl.format"] = Format.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [Sha256Key] = Placeholder,
            ["seqdsl.model"] = Model,
            ["seqdsl.task"] = Task.ToJson(),
            ["seqdsl.interface"] = JsonSerializer.Serialize(Interface, Options),
        };
        if (Text is not null) d["seqdsl.text"] = Text.ToJson();
        return d;
    }

    /// <summary>Reads the pairs back; <paramref name="where"/> names the file in errors.</summary>
    public static ExportMetadata FromProperties(IReadOnlyDictionary<string, string> properties, string where)
    {
        string Get(string key) => properties.TryGetValue(key, out var v) ? v
            : throw new SeqDslException(ErrorKind.Data, $"{where} has no '{key}' metadata: it was not exported by SeqDsl (seqdsl export).")
            { Received = string.Join(", ", properties.Keys.DefaultIfEmpty("no metadata")), Expected = "seqdsl.format, seqdsl.model, seqdsl.task, seqdsl.interface" };
        if (Get("seqdsl.format") != Format.ToString(System.Globalization.CultureInfo.InvariantCulture))
            throw new SeqDslException(ErrorKind.Data, $"{where} was exported in metadata format {properties["seqdsl.format"]}, which this version does not read.")
            { Received = properties["seqdsl.format"], Expected = Format.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        GraphInterface graph;
        try
        {
            graph = JsonSerializer.Deserialize<GraphInterface>(Get("seqdsl.interface"), Options) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"{where}: invalid seqdsl.interface metadata: {e.Message}", e);
        }
        return new ExportMetadata(Get("seqdsl.model"), TaskInfo.FromJson(Get("seqdsl.task"), where),
            properties.TryGetValue("seqdsl.text", out var text) ? TextPreprocessing.FromJson(text) : null, graph);
    }
}
