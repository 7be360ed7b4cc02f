using System.Globalization;
using System.Text;
using Microsoft.Data.Analysis;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>Column types the CSV loader produces.</summary>
public enum ColumnType
{
    /// <summary>Inferred: Double when every value is a number, DateTime when every value is a date, else String.</summary>
    Auto,
    /// <summary>64-bit float (default for numbers: index prices and volumes in the billions need it).</summary>
    Double,
    /// <summary>32-bit float.</summary>
    Single,
    /// <summary>64-bit integer.</summary>
    Int64,
    /// <summary>Text.</summary>
    String,
    /// <summary>Date or date-time.</summary>
    Date,
}

/// <summary>How to read a CSV file with a header row.</summary>
public sealed record CsvOptions
{
    /// <summary>Field separator.</summary>
    public char Separator { get; init; } = ',';
    /// <summary>Columns to keep, in this order; null keeps all.</summary>
    public IReadOnlyList<string>? Columns { get; init; }
    /// <summary>Column types by name; unnamed columns are <see cref="ColumnType.Auto"/>.</summary>
    public IReadOnlyDictionary<string, ColumnType>? Types { get; init; }
    /// <summary>Exact date format (e.g. yyyy-MM-dd); null accepts ISO 8601 dates and date-times.</summary>
    public string? DateFormat { get; init; }
    /// <summary>Skip malformed rows (and count them) instead of failing on the first.</summary>
    public bool SkipBadRows { get; init; }
    /// <summary>Columns whose cells must not be empty (labels, targets): an empty cell is an error naming the line, or
    /// with <see cref="SkipBadRows"/> a skipped row. An entry <c>a|b</c> requires the first of a and b the file has;
    /// names the file does not have are ignored.</summary>
    public IReadOnlyList<string>? Required { get; init; }
    /// <summary>Columns whose cells must not be empty except in the file's last row (a series' day still to forecast,
    /// whose target is not known yet): an empty cell in another row is an error naming the line, or with
    /// <see cref="SkipBadRows"/> a skipped row. Entries as in <see cref="Required"/>.</summary>
    public IReadOnlyList<string>? EmptyInLastRow { get; init; }
    /// <summary>A column whose values must rise from row to row (a series' dates): a value not after the one before is
    /// an error naming both lines, with <see cref="SkipBadRows"/> too (rows are never reordered or dropped for it).
    /// Ignored when the file has no such column.</summary>
    public string? Increasing { get; init; }
}

/// <summary>A loaded CSV: the frame and what was skipped.</summary>
public sealed record CsvResult(DataFrame Frame, int SkippedRows, IReadOnlyList<string> Problems);

/// <summary>
/// CSV with a header row into a <see cref="DataFrame"/>: RFC 4180 quoting (separators, quotes
/// and newlines inside quoted fields), typed columns, date parsing. A bad row is an error that
/// names the file, the line and the column — or, with <see cref="CsvOptions.SkipBadRows"/>, is
/// counted and skipped.
/// </summary>
public static class Csv
{
    private static readonly string[] IsoDates = ["yyyy-MM-dd", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ssK", "yyyy/MM/dd"];

    /// <summary>Reads a CSV file.</summary>
    public static CsvResult Load(string path, CsvOptions? options = null)
    {
        InputFiles.Require(path, "CSV file");
        using var reader = new StreamReader(path, new UTF8Encoding(false, true), detectEncodingFromByteOrderMarks: true);
        try
        {
            return Read(reader, path, options ?? new CsvOptions());
        }
        catch (DecoderFallbackException e)
        {
            throw new SeqDslException(ErrorKind.Data,
                $"{path}: not valid UTF-8 (bytes {string.Join(" ", (e.BytesUnknown ?? []).Select(b => b.ToString("X2")))}). Save the file as UTF-8.", e);
        }
    }

    /// <summary>Reads CSV text (for tests and in-memory data); <paramref name="name"/> is used in messages.</summary>
    public static CsvResult Parse(string text, CsvOptions? options = null, string name = "<text>") =>
        Read(new StringReader(text), name, options ?? new CsvOptions());

    private static CsvResult Read(TextReader reader, string name, CsvOptions o)
    {
        var records = Records(reader, o.Separator, name).GetEnumerator();
        if (!records.MoveNext()) throw new SeqDslException(ErrorKind.Data, $"{name}: the file is empty; expected a header row.");
        var header = records.Current.fields ?? throw new SeqDslException(ErrorKind.Data, records.Current.problem + ".");
        if (header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1) is { } dup)
            throw new SeqDslException(ErrorKind.Data, $"{name}, line 1: the header names column '{dup.Key}' twice.")
            { Received = string.Join(",", header), Expected = "distinct column names" };
        var keep = o.Columns?.Select(c =>
        {
            var i = Array.IndexOf(header, c);
            return i >= 0 ? i : throw new SeqDslException(ErrorKind.Data, $"{name}: no column '{c}'.")
            { Received = c, Expected = "one of " + string.Join(", ", header) };
        }).ToArray() ?? Enumerable.Range(0, header.Length).ToArray();

        var rows = new List<(int line, string[] fields)>();
        var problems = new List<string>();
        var skipped = 0;
        while (records.MoveNext())
        {
            var (line, fields, broken) = records.Current;
            if (fields is null)
            {
                if (!o.SkipBadRows) throw new SeqDslException(ErrorKind.Data, broken + ".");
                problems.Add(broken!);
                skipped++;
                continue;
            }
            if (fields.Length == 1 && fields[0].Length == 0) continue; // blank line
            if (fields.Length != header.Length)
            {
                var msg = $"{name}, line {line}: {fields.Length} fields, but the header has {header.Length} columns";
                if (!o.SkipBadRows) throw new SeqDslException(ErrorKind.Data, msg + ".");
                problems.Add(msg);
                skipped++;
                continue;
            }
            rows.Add((line, fields));
        }

        if (rows.Count == 0)
            throw new SeqDslException(ErrorKind.Data, $"{name}: the file has a header but no data rows.")
            { Received = "0 rows", Expected = "at least one row after the header" };
        var types = keep.Select(c => Resolve(header[c], o.Types, rows, c, o.DateFormat)).ToArray();
        HashSet<string> Named(IReadOnlyList<string>? list) =>
            (list ?? []).Select(r => r.Split('|').FirstOrDefault(header.Contains)).OfType<string>().ToHashSet();
        var requiredNames = Named(o.Required);
        var required = keep.Select(c => requiredNames.Contains(header[c])).ToArray();
        // required except in the last row
        var lastRowNames = Named(o.EmptyInLastRow);
        var lastRowOnly = keep.Select(c => lastRowNames.Contains(header[c])).ToArray();
        var good = new List<object?[]>(rows.Count);
        var rising = o.Increasing is string inc ? Array.FindIndex(keep, c => header[c] == inc) : -1;
        (int Line, IComparable Value)? previous = null;
        for (var n = 0; n < rows.Count; n++)
        {
            var (line, fields) = rows[n];
            var values = new object?[keep.Length];
            string? problem = null;
            for (var k = 0; k < keep.Length && problem is null; k++)
            {
                var raw = fields[keep[k]];
                if (required[k] && string.IsNullOrWhiteSpace(raw))
                    problem = $"{name}, line {line}, column '{header[keep[k]]}': the cell is empty";
                else if (lastRowOnly[k] && n < rows.Count - 1 && string.IsNullOrWhiteSpace(raw))
                    problem = $"{name}, line {line}, column '{header[keep[k]]}': the cell is empty (only the last row, the day still to forecast, may leave it empty)";
                else if (!TryConvert(raw, types[k], o.DateFormat, out values[k]))
                    problem = $"{name}, line {line}, column '{header[keep[k]]}': '{raw}' is not {Describe(types[k])}";
            }
            if (problem is null && rising >= 0 && values[rising] is IComparable value)
            {
                // never skipped: after one row out of order every later row would be
                if (previous is { } p && value.CompareTo(p.Value) <= 0)
                    throw new SeqDslException(ErrorKind.Data,
                        $"{name}, line {line}, column '{header[keep[rising]]}': {fields[keep[rising]]} is not after line {p.Line}'s {Format(p.Value)}; the rows must be in order, each later than the one before (sort the file by {header[keep[rising]]} and remove repeated rows).");
                previous = (line, value);
            }
            if (problem is null) { good.Add(values); continue; }
            if (!o.SkipBadRows) throw new SeqDslException(ErrorKind.Data, problem + ".");
            problems.Add(problem);
            skipped++;
        }

        var columns = new List<DataFrameColumn>();
        for (var k = 0; k < keep.Length; k++)
        {
            var col = header[keep[k]];
            var i = k;
            columns.Add(types[k] switch
            {
                ColumnType.Double => new DoubleDataFrameColumn(col, good.Select(r => (double?)r[i])),
                ColumnType.Single => new SingleDataFrameColumn(col, good.Select(r => (float?)r[i])),
                ColumnType.Int64 => new Int64DataFrameColumn(col, good.Select(r => (long?)r[i])),
                ColumnType.Date => new PrimitiveDataFrameColumn<DateTime>(col, good.Select(r => (DateTime?)r[i])),
                _ => new StringDataFrameColumn(col, good.Select(r => (string?)r[i])),
            });
        }
        return new CsvResult(new DataFrame(columns), skipped, problems);
    }

    private static string Format(IComparable v) => v is DateTime d
        ? d.ToString(d.TimeOfDay == TimeSpan.Zero ? "yyyy-MM-dd" : "yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
        : Convert.ToString(v, CultureInfo.InvariantCulture) ?? "";

    private static string Describe(ColumnType t) => t switch
    {
        ColumnType.Double or ColumnType.Single => "a number",
        ColumnType.Int64 => "an integer",
        ColumnType.Date => "a date",
        _ => "text",
    };

    private static ColumnType Resolve(string column, IReadOnlyDictionary<string, ColumnType>? types, List<(int, string[])> rows, int c, string? dateFormat)
    {
        if (types is not null && types.TryGetValue(column, out var t) && t != ColumnType.Auto) return t;
        var values = rows.Select(r => r.Item2[c]).Where(v => v.Length > 0).ToList();
        if (values.Count == 0) return ColumnType.String;
        if (values.All(v => TryConvert(v, ColumnType.Double, dateFormat, out _))) return ColumnType.Double;
        if (values.All(v => TryConvert(v, ColumnType.Date, dateFormat, out _))) return ColumnType.Date;
        return ColumnType.String;
    }

    private static bool TryConvert(string raw, ColumnType t, string? dateFormat, out object? value)
    {
        value = null;
        if (raw.Length == 0 && t != ColumnType.String) return true; // missing value
        switch (t)
        {
            case ColumnType.Double:
                if (double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) { value = d; return true; }
                return false;
            case ColumnType.Single:
                if (float.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var f)) { value = f; return true; }
                return false;
            case ColumnType.Int64:
                if (long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)) { value = l; return true; }
                return false;
            case ColumnType.Date:
                var ok = dateFormat is null
                    ? DateTime.TryParseExact(raw, IsoDates, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var dt)
                    : DateTime.TryParseExact(raw, dateFormat, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out dt);
                if (ok) value = dt;
                return ok;
            default:
                value = raw;
                return true;
        }
    }

    /// <summary>RFC 4180 records with the line each starts on (1-based); a record whose quoting is broken (text after a
    /// closing quote) comes as null fields and the problem, the rest of its line read past.</summary>
    private static IEnumerable<(int line, string[]? fields, string? problem)> Records(TextReader r, char sep, string name)
    {
        var line = 1;
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        var closed = false;                  // the field's closing quote was read: only a separator or a line end may follow
        var opened = 1;                      // the line the quoted field opens on
        var start = 1;
        var any = false;
        int c;
        while ((c = r.Read()) != -1)
        {
            any = true;
            var ch = (char)c;
            if (quoted)
            {
                if (ch == '"')
                {
                    if (r.Peek() == '"') { r.Read(); field.Append('"'); }
                    else { quoted = false; closed = true; }
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            if (closed)
            {
                if (ch == sep || ch == '\r' || ch == '\n') closed = false;
                else if (ch != ' ' && ch != '\t')                                // (blanks after the quote are kept, as before)
                {
                    var problem = opened == line
                        ? $"{name}, line {line}: text after the closing quote of a quoted field (a quote inside a quoted field is written as two quotes)"
                        : $"{name}, line {line}: text after the closing quote of a field that opens on line {opened}; is a quote on line {opened} not closed?";
                    while ((c = r.Read()) != -1 && c != '\n') { }                // the rest of the line is the bad record's
                    yield return (start, null, problem);
                    fields.Clear();
                    field.Clear();
                    closed = false;
                    line++;
                    start = line;
                    any = false;
                    continue;
                }
            }
            if (ch == '"' && field.Length == 0) { quoted = true; opened = line; continue; }
            if (ch == sep) { fields.Add(field.ToString()); field.Clear(); continue; }
            if (ch == '\r' && r.Peek() == '\n') continue;
            if (ch == '\n')
            {
                fields.Add(field.ToString());
                field.Clear();
                yield return (start, fields.ToArray(), null);
                fields.Clear();
                line++;
                start = line;
                any = false;
                continue;
            }
            field.Append(ch);
        }
        if (quoted) throw new SeqDslException(ErrorKind.Data, $"{name}, line {start}: a quoted field is not closed before the end of the file.");
        if (any || fields.Count > 0)
        {
            fields.Add(field.ToString());
            yield return (start, fields.ToArray(), null); // last row without a trailing newline
        }
    }
}
