using System.Text.Json;
using System.Text.Json.Serialization;
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
/// <param name="StartToken">A token put before every text's first token (Keras's <c>imdb.load_data</c> starts each review
/// with its start_char), a reserved entry of the vocabulary; null puts none.</param>
public sealed record TextPreprocessing(string Tokenizer, Vocabulary Vocabulary, int? Maxlen = null, Side Padding = Side.Pre, Side Truncating = Side.Pre,
    string? StartToken = null)
{
    /// <summary>File name inside a model directory.</summary>
    public const string FileName = "preprocessing.json";

    /// <summary>Builds the vocabulary from training texts.</summary>
    public static TextPreprocessing Fit(IEnumerable<string> texts, Tokenizer tokenizer, VocabularyOptions vocabulary,
        int? maxlen = null, Side padding = Side.Pre, Side truncating = Side.Pre) =>
        FitTokens(Tokenize(texts, tokenizer), tokenizer, vocabulary, maxlen, padding, truncating);

    /// <summary>Builds the vocabulary from texts already split by <paramref name="tokenizer"/> (tokenize once, fit and encode).</summary>
    public static TextPreprocessing FitTokens(IReadOnlyList<IReadOnlyList<string>> tokens, Tokenizer tokenizer, VocabularyOptions vocabulary,
        int? maxlen = null, Side padding = Side.Pre, Side truncating = Side.Pre, string? startToken = null) =>
        // the start token is reserved (the index after padding and the out-of-vocabulary token), so num_words never
        // cuts it and a word of that spelling cannot take it
        new(tokenizer.Name, Vocabulary.Build(tokens, startToken is null || vocabulary.Reserved.Contains(startToken)
            ? vocabulary : vocabulary with { Reserved = [.. vocabulary.Reserved, startToken] }), maxlen, padding, truncating, startToken);

    private static IReadOnlyList<string> WithStart(IReadOnlyList<string> tokens, string start) => [start, .. tokens];

    /// <summary>Tokens of each text (in parallel, order kept).</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Tokenize(IEnumerable<string> texts, Tokenizer tokenizer) =>
        texts.AsParallel().AsOrdered().Select(tokenizer.Tokenize).ToArray();

    /// <summary>Token ids of each text.</summary>
    public int[][] Ids(IEnumerable<string> texts) => Ids(Tokenize(texts, Data.Tokenizer.FromName(Tokenizer)));

    /// <summary>Token ids of texts already split by this preprocessing's tokenizer.</summary>
    public int[][] Ids(IReadOnlyList<IReadOnlyList<string>> tokens) =>
        tokens.AsParallel().AsOrdered().Select(t => Vocabulary.Encode(StartToken is string s ? WithStart(t, s) : t)).ToArray();

    /// <summary>Texts → (N, T) ids, with true lengths when padding per batch (post, no maxlen).</summary>
    public PaddedIds Encode(IEnumerable<string> texts) => Pad(Ids(texts));

    /// <summary>Tokenized texts → (N, T) ids, with true lengths when padding per batch.</summary>
    public PaddedIds Encode(IReadOnlyList<IReadOnlyList<string>> tokens) => Pad(Ids(tokens));

    private PaddedIds Pad(int[][] ids) =>
        Maxlen is int m ? Sequences.Pad(ids, m, Padding, Truncating) : Sequences.PadWithLengths(ids);

    // StartToken is written only when set (a file without one reads the same in versions before it) and absent from
    // files written before it existed: null
    private sealed record Stored(int Format, string Kind, string Tokenizer, JsonElement Vocabulary, int? Maxlen, Side Padding, Side Truncating,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? StartToken = null);

    /// <summary>JSON form.</summary>
    public string ToJson() => JsonSerializer.Serialize(new Stored(1, "text", Tokenizer,
        JsonDocument.Parse(Vocabulary.ToJson()).RootElement, Maxlen, Padding, Truncating, StartToken), new JsonSerializerOptions { WriteIndented = false });

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
            var vocabulary = Vocabulary.FromJson(s.Vocabulary.GetRawText());
            if (s.StartToken is string start && !vocabulary.Index.ContainsKey(start))
                throw new JsonException($"its start token '{start}' is not in its vocabulary");
            return new TextPreprocessing(s.Tokenizer, vocabulary, s.Maxlen, s.Padding, s.Truncating, s.StartToken);
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"Invalid {FileName}: {e.Message}", e);
        }
    }

    /// <summary>The files to save with a model.</summary>
    public IReadOnlyDictionary<string, string> Files() => new Dictionary<string, string> { [FileName] = ToJson() };
}
