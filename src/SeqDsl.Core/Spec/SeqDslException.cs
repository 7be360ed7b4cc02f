namespace SeqDsl.Spec;

/// <summary>What went wrong, coarsely; the CLI maps kinds to exit codes.</summary>
public enum ErrorKind
{
    /// <summary>The model text or JSON could not be read (line/column or JSON path given).</summary>
    Syntax,
    /// <summary>A layer's arguments or its place in the model are invalid.</summary>
    Spec,
    /// <summary>A layer received a shape it cannot take.</summary>
    Shape,
    /// <summary>Input data is malformed (file, row and column given).</summary>
    Data,
    /// <summary>Training or inference failed at run time.</summary>
    Runtime,
}

/// <summary>
/// The one error type of SeqDsl. Every message names where the problem is (a layer by index
/// and kind, a line and column of model text, a JSON path, a file row) and, for shape and
/// argument problems, what was received and what was expected.
/// </summary>
public sealed class SeqDslException : Exception
{
    /// <summary>Coarse category.</summary>
    public ErrorKind Kind { get; }
    /// <summary>Index of the offending layer in the model, when a layer is at fault.</summary>
    public int? LayerIndex { get; init; }
    /// <summary>Kind of the offending layer (Embed, Lstm, …).</summary>
    public string? LayerKind { get; init; }
    /// <summary>What the layer or parser received.</summary>
    public string? Received { get; init; }
    /// <summary>What it expected instead.</summary>
    public string? Expected { get; init; }
    /// <summary>1-based line in model text, when the error comes from text.</summary>
    public int? Line { get; init; }
    /// <summary>1-based column in model text, when the error comes from text.</summary>
    public int? Column { get; init; }
    /// <summary>The message without location prefix or excerpt.</summary>
    public string Reason { get; }

    /// <summary>Creates an error with a plain reason.</summary>
    public SeqDslException(ErrorKind kind, string reason, Exception? inner = null)
        : base(reason, inner)
    {
        Kind = kind;
        Reason = reason;
    }

    private string? _message;

    /// <inheritdoc />
    public override string Message => _message ?? Compose();

    /// <summary>Returns a copy located in text: the message gains "line L, column C" and a caret excerpt.</summary>
    public SeqDslException At(string text, int line, int column)
    {
        var e = new SeqDslException(Kind, Reason, this)
        {
            LayerIndex = LayerIndex, LayerKind = LayerKind, Received = Received, Expected = Expected,
            Line = line, Column = column,
        };
        e._message = e.Compose() + Environment.NewLine + Excerpt(text, line, column);
        return e;
    }

    private string Compose()
    {
        var where = new List<string>();
        if (Line is int l && Column is int c) where.Add($"line {l}, column {c}");
        if (LayerIndex is int i) where.Add($"layer {i} ({LayerKind})");
        var s = where.Count > 0 ? string.Join(", ", where) + ": " + Reason : Reason;
        if (Received is not null) s += $" Received: {Received}.";
        if (Expected is not null) s += $" Expected: {Expected}.";
        return s;
    }

    /// <summary>The offending line with a caret under the column.</summary>
    public static string Excerpt(string text, int line, int column)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var src = line - 1 < lines.Length ? lines[line - 1] : "";
        return "  " + src + Environment.NewLine + "  " + new string(' ', Math.Max(0, column - 1)) + "^";
    }

    internal static SeqDslException ForLayer(int index, Layer layer, ErrorKind kind, string reason,
        string? received = null, string? expected = null) =>
        new(kind, reason) { LayerIndex = index, LayerKind = layer.Kind, Received = received, Expected = expected };
}
