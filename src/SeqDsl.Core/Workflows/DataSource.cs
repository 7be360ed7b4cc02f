using SeqDsl.Spec;

namespace SeqDsl.Workflows;

/// <summary>What a data source holds, which decides loss, metrics and preparation.</summary>
public enum TaskKind
{
    /// <summary>Text → class (sentiment): BCE or cross-entropy, accuracy.</summary>
    Classification,
    /// <summary>Numbers → number (counting, forecasting): MSE, MAE, R².</summary>
    Regression,
    /// <summary>Text → next character: cross-entropy per step, perplexity, generation.</summary>
    LanguageModel,
}

/// <summary>A parsed <c>kind:path</c> data source.</summary>
/// <param name="Kind">imdb, csv, text, series or synthetic.</param>
/// <param name="Path">File, folder or synthetic generator name.</param>
/// <param name="Member">Zip member (text:PATH!member).</param>
public sealed record DataSource(string Kind, string Path, string? Member = null)
{
    /// <summary>The kinds of source.</summary>
    public static readonly string[] Kinds = ["imdb", "csv", "text", "series", "synthetic"];
    /// <summary>The generators behind synthetic:NAME.</summary>
    public static readonly string[] Synthetic = ["counting", "negation", "seasonal"];

    /// <summary>Parses imdb:PATH, csv:PATH, text:PATH[!member], series:PATH, synthetic:NAME.</summary>
    public static DataSource Parse(string text)
    {
        var colon = text.IndexOf(':');
        if (colon <= 0 || !Kinds.Contains(text[..colon]))
            throw new SeqDslException(ErrorKind.Data, $"Unknown data source '{text}'.")
            { Received = text, Expected = "imdb:PATH, csv:PATH, text:PATH[!member], series:PATH or synthetic:" + string.Join("|", Synthetic) };
        var kind = text[..colon];
        var rest = text[(colon + 1)..];
        if (rest.Length == 0)
            throw new SeqDslException(ErrorKind.Data, $"The data source '{text}' names no path.") { Expected = $"{kind}:PATH" };
        if (kind == "synthetic" && !Synthetic.Contains(rest))
            throw new SeqDslException(ErrorKind.Data, $"Unknown synthetic data '{rest}'.")
            { Received = rest, Expected = "one of " + string.Join(", ", Synthetic) };
        string? member = null;
        if (kind == "text" && rest.Contains('!'))
        {
            member = rest[(rest.IndexOf('!') + 1)..];
            rest = rest[..rest.IndexOf('!')];
        }
        return new DataSource(kind, rest, member);
    }

    /// <summary>The task this source implies (a CSV with feature or target columns, or seed 002's features, is a series).</summary>
    public TaskKind Task(PreprocessingSpec p) => Kind switch
    {
        "imdb" => TaskKind.Classification,
        // a CSV is texts and labels unless a series option names its columns or features
        "csv" when p.FeatureColumns is null && p.TargetColumn is null && p.FeatureSet != "seed002" => TaskKind.Classification,
        "text" => TaskKind.LanguageModel,
        "synthetic" when Path == "negation" => TaskKind.Classification,
        _ => TaskKind.Regression,
    };

    /// <inheritdoc />
    public override string ToString() => $"{Kind}:{Path}" + (Member is null ? "" : $"!{Member}");
}
