using System.Globalization;
using System.Text;

namespace SeqDsl.Spec;

/// <summary>
/// The text form of a model: the fluent C# expression without <c>Model.</c>, e.g.
/// <c>Embed(32, vocab: 8000).Gru(32, resetAfter: false).Bidirectional(Sum).Dense(1, Sigmoid)</c>.
/// Arguments are positional in declaration order or named (<c>name: value</c>); enum values may be
/// qualified (<c>Activation.Sigmoid</c>) and are case-insensitive. <see cref="ModelSpec.ToString"/>
/// prints this form and <see cref="Parse"/> reads it back to an equal value.
/// </summary>
public static class ModelSyntax
{
    /// <summary>Shortest round-trip text of a number, invariant culture (0.4, 1E-05, 2).</summary>
    public static string FormatNumber(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A double-quoted string literal with \" and \\ escapes.</summary>
    public static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    /// <summary>The names of every call the syntax knows.</summary>
    public static IReadOnlyList<string> Calls => LayerArguments.Calls.Select(s => s.Name).ToList();

    /// <summary>Reads model text; errors carry line, column and a caret excerpt.</summary>
    /// <exception cref="SeqDslException">The text is malformed or describes an invalid model.</exception>
    public static ModelSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = new Parser(text);
        return p.ParseModel();
    }

    // ---- calls and arguments: the one table in LayerArguments ---------------------------------

    private static IReadOnlyList<CallSpec> Signatures => LayerArguments.Calls;

    // ---- lexer and parser ----------------------------------------------------------------

    private enum K { Ident, Number, String, LParen, RParen, Dot, Comma, Colon, End }

    private readonly record struct Token(K Kind, string Text, int Line, int Column);

    private sealed class Parser
    {
        private readonly string _text;
        private readonly List<Token> _tokens = [];
        private int _pos;

        public Parser(string text)
        {
            _text = text;
            Lex();
        }

        private SeqDslException Error(Token at, string reason, string? received = null, string? expected = null) =>
            new SeqDslException(ErrorKind.Syntax, reason) { Received = received, Expected = expected }
                .At(_text, at.Line, at.Column);

        private void Lex()
        {
            int line = 1, col = 1, i = 0;
            void Advance(int n)
            {
                for (var k = 0; k < n; k++, i++)
                    if (_text[i] == '\n') { line++; col = 1; } else col++;
            }
            while (i < _text.Length)
            {
                var c = _text[i];
                if (char.IsWhiteSpace(c)) { Advance(1); continue; }
                var start = (line, col);
                K? single = c switch
                {
                    '(' => K.LParen, ')' => K.RParen, '.' => K.Dot, ',' => K.Comma, ':' => K.Colon, _ => null,
                };
                if (single is K sk && !(c == '.' && i + 1 < _text.Length && char.IsDigit(_text[i + 1]) && PrevAllowsNumber()))
                {
                    _tokens.Add(new Token(sk, c.ToString(), line, col));
                    Advance(1);
                }
                else if (char.IsLetter(c) || c == '_')
                {
                    var j = i;
                    while (j < _text.Length && (char.IsLetterOrDigit(_text[j]) || _text[j] == '_')) j++;
                    _tokens.Add(new Token(K.Ident, _text[i..j], start.line, start.col));
                    Advance(j - i);
                }
                else if (char.IsDigit(c) || c == '-' || c == '+' || c == '.')
                {
                    var j = i + 1;
                    while (j < _text.Length && (char.IsDigit(_text[j]) || _text[j] == '.' || _text[j] == 'e' || _text[j] == 'E'
                           || ((_text[j] == '-' || _text[j] == '+') && (_text[j - 1] == 'e' || _text[j - 1] == 'E')))) j++;
                    _tokens.Add(new Token(K.Number, _text[i..j], start.line, start.col));
                    Advance(j - i);
                }
                else if (c == '"')
                {
                    var sb = new StringBuilder();
                    var j = i + 1;
                    for (; j < _text.Length && _text[j] != '"'; j++)
                    {
                        if (_text[j] == '\\' && j + 1 < _text.Length) j++;
                        sb.Append(_text[j]);
                    }
                    if (j >= _text.Length)
                        throw Error(new Token(K.String, "", line, col), "Unterminated string.", "end of text", "a closing \"");
                    _tokens.Add(new Token(K.String, sb.ToString(), start.line, start.col));
                    Advance(j + 1 - i);
                }
                else
                {
                    throw Error(new Token(K.End, "", line, col), $"Unexpected character '{c}'.", $"'{c}'",
                        "a layer call such as Lstm(64), '.', or an argument");
                }
            }
            _tokens.Add(new Token(K.End, "", line, col));
        }

        private bool PrevAllowsNumber() =>
            _tokens.Count > 0 && _tokens[^1].Kind is K.LParen or K.Comma or K.Colon;

        private Token Peek => _tokens[_pos];

        private Token Expect(K kind, string what)
        {
            var t = Peek;
            if (t.Kind != kind)
                throw Error(t, $"Unexpected {Describe(t)}.", Describe(t), what);
            _pos++;
            return t;
        }

        private static string Describe(Token t) => t.Kind switch
        {
            K.End => "end of text",
            K.String => $"string \"{t.Text}\"",
            _ => $"'{t.Text}'",
        };

        public ModelSpec ParseModel()
        {
            if (Peek.Kind == K.End)
                throw Error(Peek, "The model text is empty.", "nothing", "a layer call such as Embed(32) or Lstm(64)");
            if (Peek is { Kind: K.Ident, Text: "Model" } && _tokens[_pos + 1].Kind == K.Dot) _pos += 2;
            var model = ModelSpec.Empty;
            while (true)
            {
                model = ParseCall(model);
                if (Peek.Kind == K.End) return model;
                Expect(K.Dot, "'.' before the next layer call, or the end of the model");
            }
        }

        private ModelSpec ParseCall(ModelSpec model)
        {
            var name = Expect(K.Ident, "a layer call such as Lstm(64)");
            var sig = Signatures.FirstOrDefault(s => s.Name == name.Text)
                ?? Signatures.FirstOrDefault(s => string.Equals(s.Name, name.Text, StringComparison.OrdinalIgnoreCase));
            if (sig is null && UserCellCatalog.Find(name.Text) is { } user)
                sig = LayerArguments.ForUserCell(user);
            if (sig is null)
            {
                var near = Signatures.MinBy(s => Distance(s.Name.ToLowerInvariant(), name.Text.ToLowerInvariant()))!.Name;
                throw Error(name, $"Unknown layer '{name.Text}' (did you mean {near}?).", name.Text,
                    "one of " + string.Join(", ", Signatures.Select(s => s.Name).Concat(UserCellCatalog.Names)));
            }
            Expect(K.LParen, $"'(' after {sig.Name}");
            var values = new Dictionary<string, object?>();
            var positional = 0;
            var sawNamed = false;
            if (Peek.Kind != K.RParen)
            {
                while (true)
                {
                    var start = Peek;
                    ArgumentSpec param;
                    if (Peek.Kind == K.Ident && _tokens[_pos + 1].Kind == K.Colon)
                    {
                        _pos += 2;
                        sawNamed = true;
                        param = sig.Arguments.FirstOrDefault(p => p.Name == start.Text)
                            ?? sig.Arguments.FirstOrDefault(p => string.Equals(p.Name, start.Text, StringComparison.OrdinalIgnoreCase))
                            ?? throw Error(start, $"{sig.Name} has no argument '{start.Text}'.", start.Text,
                                "one of " + string.Join(", ", sig.Arguments.Select(p => p.Name)));
                    }
                    else
                    {
                        if (sawNamed)
                            throw Error(start, "A positional argument cannot follow a named one.", Describe(start), "name: value");
                        if (positional >= sig.Arguments.Count)
                            throw Error(start, $"{sig.Name} takes at most {sig.Arguments.Count} argument(s).", Describe(start),
                                $"{sig.Name}({string.Join(", ", sig.Arguments.Select(p => p.Name))})");
                        param = sig.Arguments[positional++];
                    }
                    if (values.ContainsKey(param.Name))
                        throw Error(start, $"Argument '{param.Name}' given twice.", param.Name, "each argument once");
                    values[param.Name] = ParseValue(sig, param);
                    if (Peek.Kind == K.Comma) { _pos++; continue; }
                    break;
                }
            }
            Expect(K.RParen, $"',' or ')' in {sig.Name}(…)");
            foreach (var p in sig.Arguments.Where(p => p.Required && !values.ContainsKey(p.Name)))
                throw Error(name, $"{sig.Name} needs its '{p.Name}' argument.", $"{sig.Name}(…) without {p.Name}",
                    $"{sig.Name}({string.Join(", ", sig.Arguments.Where(q => q.Required).Select(q => q.Name))})");
            try
            {
                return sig.Apply(model, new ArgumentValues(values));
            }
            catch (SeqDslException e)
            {
                throw e.At(_text, name.Line, name.Column);
            }
        }

        private object? ParseValue(CallSpec sig, ArgumentSpec p)
        {
            var t = Peek;
            _pos++;
            string Expected() => p.Type switch
            {
                ArgumentType.Int => "an integer",
                ArgumentType.Double => "a number",
                ArgumentType.Bool => "true or false",
                ArgumentType.String => "a \"string\"",
                ArgumentType.Activation => "one of " + string.Join(", ", Enum.GetNames<Activation>()),
                ArgumentType.Merge => "one of " + string.Join(", ", Enum.GetNames<Merge>()),
                ArgumentType.Bias => "one of " + string.Join(", ", Enum.GetNames<Bias>()),
                ArgumentType.Kernel => "one of " + string.Join(", ", Enum.GetNames<Kernel>()),
                _ => p.Type.ToString(),
            } + (p.Nullable ? " or null" : "");
            SeqDslException Bad() => Error(t, $"Bad value for {sig.Name} argument '{p.Name}'.", Describe(t), Expected());

            if (t.Kind == K.Ident && t.Text == "null")
                return p.Nullable ? null : throw Bad();
            switch (p.Type)
            {
                case ArgumentType.Int:
                    return t.Kind == K.Number && int.TryParse(t.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                        ? n : throw Bad();
                case ArgumentType.Double:
                    return t.Kind == K.Number && double.TryParse(t.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                        && double.IsFinite(d) ? d : throw Bad();
                case ArgumentType.Bool:
                    return t.Kind == K.Ident && t.Text is "true" or "false" ? t.Text == "true" : throw Bad();
                case ArgumentType.String:
                    return t.Kind == K.String ? t.Text : throw Bad();
                default:
                    if (t.Kind != K.Ident) throw Bad();
                    var text = t.Text;
                    var typeName = p.Type.ToString();
                    if (text == typeName && Peek.Kind == K.Dot && _tokens[_pos + 1].Kind == K.Ident)
                    {
                        _pos++;
                        t = Peek;
                        text = t.Text;
                        _pos++;
                    }
                    object? value = p.Type switch
                    {
                        ArgumentType.Activation => Enum.TryParse<Activation>(text, true, out var a) && Enum.IsDefined(a) ? a : null,
                        ArgumentType.Merge => Enum.TryParse<Merge>(text, true, out var m) && Enum.IsDefined(m) ? m : null,
                        ArgumentType.Bias => Enum.TryParse<Bias>(text, true, out var b) && Enum.IsDefined(b) ? b : null,
                        ArgumentType.Kernel => Enum.TryParse<Kernel>(text, true, out var k) && Enum.IsDefined(k) ? k : null,
                        _ => null,
                    };
                    return value ?? throw Bad();
            }
        }

    }

    /// <summary>Edit distance, for "did you mean" suggestions (calls here, members of experiment files).</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
