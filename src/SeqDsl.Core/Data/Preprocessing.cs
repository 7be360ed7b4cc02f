using System.Text.Json;
using Microsoft.Data.Analysis;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>
/// Text → ids exactly as in training: a tokenizer (by name), a vocabulary and a padding rule.
/// Fitted on training texts, saved with the model (<c>preprocessing.json</c>), applied at inference.
/// </summary>
/// <param name="Tokenizer">Name of the tokenizer (<see cref="Data.Tokenizer.FromName"/>).</param>
/// <param name="Vocabulary">The vocabulary.</param>
/// <param name="Maxlen">Fixed length (Keras style), or null for per-batch post-padding with lengths.</param>
/// <param name="Padding">Side padded when <paramref name="Maxlen"/> is set.</param>
/// <param name="Truncating">Side truncated when <paramref name="Maxlen"/> is set.</param>
public sealed record TextPreprocessing(string Tokenizer, Vocabulary Vocabulary, int? Maxlen = null, Side Padding = Side.Pre, Side Truncating = Side.Pre)
{
    /// <summary>File name inside a model directory.</summary>
    public const string FileName = "preprocessing.json";

    /// <summary>Builds the vocabulary from training texts.</summary>
    public static TextPreprocessing Fit(IEnumerable<string> texts, Tokenizer tokenizer, VocabularyOptions vocabulary,
        int? maxlen = null, Side padding = Side.Pre, Side truncating = Side.Pre) =>
        FitTokens(Tokenize(texts, tokenizer), tokenizer, vocabulary, maxlen, padding, truncating);

    /// <summary>Builds the vocabulary from texts already split by <paramref name="tokenizer"/> (tokenize once, fit and encode).</summary>
    public static TextPreprocessing FitTokens(IReadOnlyList<IReadOnlyList<string>> tokens, Tokenizer tokenizer, VocabularyOptions vocabulary,
        int? maxlen = null, Side padding = Side.Pre, Side truncating = Side.Pre) =>
        new(tokenizer.Name, Vocabulary.Build(tokens, vocabulary), maxlen, padding, truncating);

    /// <summary>Tokens of each text (in parallel, order kept).</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Tokenize(IEnumerable<string> texts, Tokenizer tokenizer) =>
        texts.AsParallel().AsOrdered().Select(tokenizer.Tokenize).ToArray();

    /// <summary>Token ids of each text.</summary>
    public int[][] Ids(IEnumerable<string> texts) => Ids(Tokenize(texts, Data.Tokenizer.FromName(Tokenizer)));

    /// <summary>Token ids of texts already split by this preprocessing's tokenizer.</summary>
    public int[][] Ids(IReadOnlyList<IReadOnlyList<string>> tokens) =>
        tokens.AsParallel().AsOrdered().Select(Vocabulary.Encode).ToArray();

    /// <summary>Texts → (N, T) ids, with true lengths when padding per batch (post, no maxlen).</summary>
    public PaddedIds Encode(IEnumerable<string> texts) => Pad(Ids(texts));

    /// <summary>Tokenized texts → (N, T) ids, with true lengths when padding per batch.</summary>
    public PaddedIds Encode(IReadOnlyList<IReadOnlyList<string>> tokens) => Pad(Ids(tokens));

    private PaddedIds Pad(int[][] ids) =>
        Maxlen is int m ? Sequences.Pad(ids, m, Padding, Truncating) : Sequences.PadWithLengths(ids);

    private sealed record Stored(int Format, string Kind, string Tokenizer, JsonElement Vocabulary, int? Maxlen, Side Padding, Side Truncating);

    /// <summary>JSON form.</summary>
    public string ToJson() => JsonSerializer.Serialize(new Stored(1, "text", Tokenizer,
        JsonDocument.Parse(Vocabulary.ToJson()).RootElement, Maxlen, Padding, Truncating), new JsonSerializerOptions { WriteIndented = false });

    /// <summary>Reads the JSON form.</summary>
    public static TextPreprocessing FromJson(string json)
    {
        try
        {
            var s = JsonSerializer.Deserialize<Stored>(json) ?? throw new JsonException("empty");
            if (s.Kind != "text") throw new JsonException($"kind '{s.Kind}' is not text preprocessing");
            if (s.Tokenizer is null) throw new JsonException("it names no tokenizer");
            if (s.Vocabulary.ValueKind is not JsonValueKind.Object and not JsonValueKind.Array)
                throw new JsonException("it holds no vocabulary");
            Data.Tokenizer.FromName(s.Tokenizer);
            return new TextPreprocessing(s.Tokenizer, Vocabulary.FromJson(s.Vocabulary.GetRawText()), s.Maxlen, s.Padding, s.Truncating);
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"Invalid {FileName}: {e.Message}", e);
        }
    }

    /// <summary>The files to save with a model.</summary>
    public IReadOnlyDictionary<string, string> Files() => new Dictionary<string, string> { [FileName] = ToJson() };
}
