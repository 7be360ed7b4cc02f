using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>
/// A tokenizer is a value with a name; the name is saved with a model and
/// <see cref="Tokenizer.FromName"/> gives the same tokenizer back, so inference splits text
/// exactly as training did.
/// </summary>
public abstract partial record Tokenizer
{
    /// <summary>Stable name (saved with the model).</summary>
    public abstract string Name { get; }

    /// <summary>Splits one text into tokens.</summary>
    public abstract IReadOnlyList<string> Tokenize(string text);

    /// <summary>Keras <c>text_to_word_sequence</c> (seed 003): lower-case, drop the punctuation in
    /// <c>!"#$%&amp;()*+,-./:;&lt;=&gt;?@[\]^_`{|}~</c>, tabs and newlines, split on spaces.</summary>
    public static readonly Tokenizer Keras = new KerasTokenizer();
    /// <summary>Seed 002's regex tokenizer: strip <c>&lt;…&gt;</c> tags, collect emoticons, lower-case,
    /// collapse non-word runs to a space, append the emoticons (without '-'), split on whitespace.</summary>
    public static readonly Tokenizer Seed002 = new Seed002Tokenizer();
    /// <summary>Every character (code point) is a token.</summary>
    public static readonly Tokenizer Characters = new CharacterTokenizer();
    /// <summary>Split on runs of white space, nothing else.</summary>
    public static readonly Tokenizer Whitespace = new WhitespaceTokenizer();

    /// <summary>All tokenizers by name.</summary>
    public static IReadOnlyList<Tokenizer> All { get; } = [Keras, Seed002, Characters, Whitespace];

    /// <summary>The tokenizer with this name.</summary>
    public static Tokenizer FromName(string name) =>
        All.FirstOrDefault(t => t.Name == name)
        ?? throw new SeqDslException(ErrorKind.Data, $"Unknown tokenizer '{name}'.")
        { Received = name, Expected = "one of " + string.Join(", ", All.Select(t => t.Name)) };

    private sealed record KerasTokenizer : Tokenizer
    {
        private const string Filters = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";
        public override string Name => "keras";
        public override IReadOnlyList<string> Tokenize(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var c in text.ToLowerInvariant()) sb.Append(Filters.Contains(c) ? ' ' : c);
            return sb.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    private sealed partial record Seed002Tokenizer : Tokenizer
    {
        public override string Name => "seed002";

        [GeneratedRegex("<[^>]*>")]
        private static partial Regex Tags();

        [GeneratedRegex("(?::|;|=)(?:-)?(?:\\)|\\(|D|P)")]
        private static partial Regex Emoticons();

        public override IReadOnlyList<string> Tokenize(string text)
        {
            text = Tags().Replace(text, "");
            var lower = PythonLower(text);
            var emoticons = string.Join(" ", Emoticons().Matches(lower).Select(m => m.Value)).Replace("-", "");
            // re.sub('[\W]+', ' ', lower) with Python's notion of a word character
            var sb = new StringBuilder(lower.Length + emoticons.Length);
            var inGap = false;
            foreach (var r in lower.EnumerateRunes())
            {
                if (IsPythonWord(r)) { sb.Append(r.ToString()); inGap = false; }
                else if (!inGap) { sb.Append(' '); inGap = true; }
            }
            sb.Append(emoticons);
            return sb.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        }

        /// <summary>Python's str.isalnum() or '_': letters (L*), and numbers (Nd, Nl, No).</summary>
        private static bool IsPythonWord(Rune r) => r.Value == '_' || Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            _ => false,
        };

        private static string PythonLower(string s)
        {
            var sb = new StringBuilder(s.Length);
            foreach (var r in s.EnumerateRunes())
            {
                if (r.Value == 0x130) { sb.Append("i\u0307"); continue; } // Python: 'İ'.lower() == 'i̇'
                sb.Append(Rune.ToLowerInvariant(r).ToString());
            }
            return sb.ToString();
        }
    }

    private sealed record CharacterTokenizer : Tokenizer
    {
        public override string Name => "chars";
        public override IReadOnlyList<string> Tokenize(string text) => text.EnumerateRunes().Select(r => r.ToString()).ToList();
    }

    private sealed record WhitespaceTokenizer : Tokenizer
    {
        public override string Name => "whitespace";
        public override IReadOnlyList<string> Tokenize(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }
}
