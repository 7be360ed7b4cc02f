using System.Text.Json;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>How a vocabulary reserves indices and treats unknown tokens.</summary>
/// <param name="Reserved">Tokens placed first, at 0, 1, … (e.g. &lt;pad&gt;, &lt;unk&gt;); with
/// <paramref name="ReserveZero"/> index 0 is kept for padding without a token.</param>
/// <param name="ReserveZero">Keep index 0 for padding (Keras).</param>
/// <param name="UnknownToken">Reserved token unknown words map to; null drops unknown words (Keras without oov_token).</param>
/// <param name="NumWords">Keep indices below this (Keras num_words: the num_words − 1 most frequent); null keeps all.</param>
/// <param name="MinFreq">Drop tokens seen fewer times.</param>
public sealed record VocabularyOptions(
    IReadOnlyList<string> Reserved, bool ReserveZero = false, string? UnknownToken = null, int? NumWords = null, int MinFreq = 1)
{
    /// <summary>Keras Tokenizer: 0 = padding, 1 = most frequent word; words outside num_words dropped;
    /// with an oov token it takes index 1 and unknown words map to it.</summary>
    public static VocabularyOptions Keras(int? numWords = null, string? oovToken = null) =>
        new(oovToken is null ? [] : [oovToken], ReserveZero: true, UnknownToken: oovToken, NumWords: numWords);

    /// <summary>Seed 002 (torchtext): &lt;pad&gt; = 0, &lt;unk&gt; = 1, unknown words → 1.</summary>
    public static VocabularyOptions Seed002(int? numWords = null, int minFreq = 1) =>
        new(["<pad>", "<unk>"], UnknownToken: "<unk>", NumWords: numWords, MinFreq: minFreq);

    /// <summary>Sorted distinct characters, no reserved entries (d2l's character models).</summary>
    public static VocabularyOptions CharactersSorted => new([]);
}

/// <summary>
/// Token ↔ index. Built from counts sorted by decreasing frequency, ties in order of first
/// appearance (what Python's stable sort of a Counter gives Keras and torchtext), or sorted
/// by ordinal value for character vocabularies. Saved as JSON with the model.
/// </summary>
public sealed class Vocabulary
{
    private readonly Dictionary<string, int> _index;

    /// <summary>Tokens by index (index 0 is "" when reserved for padding without a token).</summary>
    public IReadOnlyList<string> Tokens { get; }
    /// <summary>The options it was built with.</summary>
    public VocabularyOptions Options { get; }
    /// <summary>Index of unknown tokens, or null when they are dropped.</summary>
    public int? UnknownIndex { get; }

    private Vocabulary(IReadOnlyList<string> tokens, VocabularyOptions options)
    {
        Tokens = tokens;
        Options = options;
        _index = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (var i = 0; i < tokens.Count; i++)
            if (!(i == 0 && options.ReserveZero)) _index.TryAdd(tokens[i], i);
        UnknownIndex = options.UnknownToken is string u ? _index[u] : null;
    }

    /// <summary>Number of indices a model's embedding needs (including reserved ones).</summary>
    public int Size => Tokens.Count;

    /// <summary>Word → index (for pretrained vectors).</summary>
    public IReadOnlyDictionary<string, int> Index => _index;

    /// <summary>Builds a frequency-sorted vocabulary from tokenized texts.</summary>
    public static Vocabulary Build(IEnumerable<IReadOnlyList<string>> texts, VocabularyOptions options)
    {
        var counts = new Dictionary<string, (int count, int first)>(StringComparer.Ordinal);
        var order = 0;
        foreach (var tokens in texts)
            foreach (var t in tokens)
                counts[t] = counts.TryGetValue(t, out var c) ? (c.count + 1, c.first) : (1, order++);
        var tokensByFreq = counts.Where(kv => kv.Value.count >= options.MinFreq && !options.Reserved.Contains(kv.Key))
            .OrderByDescending(kv => kv.Value.count).ThenBy(kv => kv.Value.first).Select(kv => kv.Key);
        var all = new List<string>();
        if (options.ReserveZero) all.Add("");
        all.AddRange(options.Reserved);
        all.AddRange(tokensByFreq);
        if (options.NumWords is int n && all.Count > n) all.RemoveRange(n, all.Count - n);
        return new Vocabulary(all, options);
    }

    /// <summary>Sorted distinct characters of a text (d2l/seed 002 character models).</summary>
    public static Vocabulary Characters(string text) =>
        new(text.EnumerateRunes().Select(r => r.ToString()).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList(),
            VocabularyOptions.CharactersSorted);

    /// <summary>Index of a token: its own, the unknown index, or null (dropped).</summary>
    public int? this[string token] => _index.TryGetValue(token, out var i) ? i : UnknownIndex;

    /// <summary>Token ids of a token list; unknown tokens map to the unknown index or are dropped.</summary>
    public int[] Encode(IReadOnlyList<string> tokens)
    {
        var ids = new List<int>(tokens.Count);
        foreach (var t in tokens)
            if (this[t] is int i) ids.Add(i);
        return ids.ToArray();
    }

    /// <summary>Characters of a text as ids; a character outside the vocabulary is an error naming it.</summary>
    public int[] EncodeStrict(IReadOnlyList<string> tokens)
    {
        var ids = new int[tokens.Count];
        for (var k = 0; k < tokens.Count; k++)
            ids[k] = this[tokens[k]] ?? throw new SeqDslException(ErrorKind.Data,
                $"Token '{tokens[k]}' at position {k} is not in the vocabulary of {Size} tokens.");
        return ids;
    }

    /// <summary>Tokens of ids.</summary>
    public IEnumerable<string> Decode(IEnumerable<int> ids) => ids.Select(i => Tokens[i]);

    private sealed record Stored(int Format, VocabularyOptions Options, IReadOnlyList<string> Tokens);

    /// <summary>JSON form (saved with a model).</summary>
    public string ToJson() => JsonSerializer.Serialize(new Stored(1, Options, Tokens));

    /// <summary>Reads the JSON form.</summary>
    public static Vocabulary FromJson(string json)
    {
        try
        {
            var s = JsonSerializer.Deserialize<Stored>(json) ?? throw new JsonException("empty");
            if (s.Tokens is null || s.Tokens.Any(t => t is null)) throw new JsonException("it lists no tokens, or a null token");
            if (s.Options is null) throw new JsonException("it has no options");
            return new Vocabulary(s.Tokens, s.Options);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or NotSupportedException or ArgumentException)
        {
            throw new SeqDslException(ErrorKind.Data, $"Invalid vocabulary JSON: {e.Message}", e);
        }
    }
}
