using System.IO.Compression;
using System.Text;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>How to read a plain-text corpus.</summary>
public sealed record TextOptions
{
    /// <summary>Member to read when the path is a .zip (null: the only member, or an error listing them).</summary>
    public string? ZipMember { get; init; }
    /// <summary>Turn CRLF (and lone CR) into LF.</summary>
    public bool NormalizeNewlines { get; init; }
    /// <summary>Lower-case the text (invariant culture).</summary>
    public bool Lowercase { get; init; }
    /// <summary>Keep a leading byte-order mark as the character U+FEFF (Python's 'utf-8' codec does;
    /// seed 002's War and Peace count of 57 distinct characters includes it). Default: removed.</summary>
    public bool KeepBom { get; init; }
}

/// <summary>
/// Plain-text corpora from a file, a .gz file or a .zip member. Strict UTF-8: invalid bytes are
/// an error giving the byte offset; a byte-order mark is removed.
/// </summary>
public static class TextCorpus
{
    /// <summary>Reads and decodes a corpus.</summary>
    public static string Load(string path, TextOptions? options = null)
    {
        options ??= new TextOptions();
        InputFiles.Require(path, "Text file");
        byte[] bytes;
        var what = path;
        if (path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
        {
            using var zip = ZipFile.OpenRead(path);
            var files = zip.Entries.Where(e => !e.FullName.EndsWith('/')).ToList();
            var entry = options.ZipMember is string m
                ? files.FirstOrDefault(e => e.FullName == m) ?? throw new SeqDslException(ErrorKind.Data,
                    $"{path} has no member '{m}'.") { Received = m, Expected = "one of " + string.Join(", ", files.Select(e => e.FullName)) }
                : files.Count == 1 ? files[0] : throw new SeqDslException(ErrorKind.Data,
                    $"{path} has {files.Count} members; name one.") { Expected = "one of " + string.Join(", ", files.Select(e => e.FullName)) };
            using var s = entry.Open();
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            bytes = ms.ToArray();
            what = $"{path}!{entry.FullName}";
        }
        else if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            using var fs = File.OpenRead(path);
            using var gz = new GZipStream(fs, CompressionMode.Decompress);
            using var ms = new MemoryStream();
            gz.CopyTo(ms);
            bytes = ms.ToArray();
        }
        else
        {
            bytes = File.ReadAllBytes(path);
        }
        var text = Decode(bytes, what);
        if (options.KeepBom && bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) text = "\uFEFF" + text;
        if (options.NormalizeNewlines) text = text.Replace("\r\n", "\n").Replace('\r', '\n');
        if (options.Lowercase) text = text.ToLowerInvariant();
        return text;
    }

    /// <summary>Strict UTF-8 decoding without the BOM; invalid bytes are an error with their offset.</summary>
    public static string Decode(byte[] bytes, string name)
    {
        var offset = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes, offset, bytes.Length - offset);
        }
        catch (DecoderFallbackException e)
        {
            var at = e.Index >= 0 ? offset + e.Index : -1;
            var bad = e.BytesUnknown is { Length: > 0 } b ? string.Join(" ", b.Select(x => $"0x{x:X2}")) : "?";
            // the decoder reports the index within its current buffer; find the first bad byte exactly
            at = FirstInvalid(bytes, offset) ?? at;
            throw new SeqDslException(ErrorKind.Data, $"{name}: invalid UTF-8 at byte offset {at} ({bad}).", e);
        }
    }

    private static int? FirstInvalid(byte[] b, int start)
    {
        var i = start;
        while (i < b.Length)
        {
            var s = b.AsSpan(i);
            var status = System.Text.Rune.DecodeFromUtf8(s, out _, out var consumed);
            if (status != System.Buffers.OperationStatus.Done) return i;
            i += consumed;
        }
        return null;
    }
}
