using System.Text.Json;
using System.Text.Json.Serialization;

namespace SeqDsl.Spec;

/// <summary>
/// The JSON form of a model, for tools and saved model directories:
/// <c>{"layers":[{"layer":"Embed","dim":32}, {"layer":"Recurrent","cell":{"cell":"Lstm"},"units":64}, …]}</c>.
/// Reading validates exactly as the builder does; errors give the JSON path.
/// </summary>
public static class ModelJson
{
    /// <summary>Serializer options: camelCase, enums as names, defaults omitted, unknown members rejected.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        AllowOutOfOrderMetadataProperties = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new JsonStringEnumConverter(allowIntegerValues: false) },
    };

    private sealed record Dto(Layer[] Layers);

    /// <summary>The model as indented JSON.</summary>
    public static string ToJson(ModelSpec model) =>
        JsonSerializer.Serialize(new Dto([.. model.Layers]), Options);

    /// <summary>Reads a model from JSON and validates it.</summary>
    /// <exception cref="SeqDslException">Malformed JSON (with path, line) or an invalid model (with layer path).</exception>
    public static ModelSpec FromJson(string json)
    {
        Dto? dto;
        try
        {
            dto = JsonSerializer.Deserialize<Dto>(json, Options);
        }
        catch (JsonException e)
        {
            var where = e.Path is null ? "" : $" at {e.Path}";
            var line = e.LineNumber is long l ? $" (line {l + 1})" : "";
            throw new SeqDslException(ErrorKind.Syntax, $"Invalid model JSON{where}{line}: {FirstSentence(e.Message)}", e);
        }
        catch (NotSupportedException e)
        {
            throw new SeqDslException(ErrorKind.Syntax, $"Invalid model JSON: {FirstSentence(e.Message)}", e);
        }
        if (dto?.Layers is null || dto.Layers.Any(l => l is null))
            throw new SeqDslException(ErrorKind.Syntax, "Invalid model JSON at $.layers: expected an array of layer objects.");
        try
        {
            return ModelSpec.Of(dto.Layers);
        }
        catch (SeqDslException e) when (e.LayerIndex is int i)
        {
            throw new SeqDslException(e.Kind, $"at $.layers[{i}]: {e.Reason}", e)
            {
                LayerIndex = e.LayerIndex, LayerKind = e.LayerKind, Received = e.Received, Expected = e.Expected,
            };
        }
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
