using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Microsoft.Data.Analysis;
using SeqDsl.Spec;

namespace SeqDsl.Data;

/// <summary>
/// The IMDB Large Movie Review layout (<c>aclImdb/{train,test}/{pos,neg}/&lt;id&gt;_&lt;rating&gt;.txt</c>), read
/// from the extracted folder or straight from the .tar.gz, into a frame with columns
/// <c>split</c> (train/test), <c>label</c> (1 pos, 0 neg), <c>rating</c>, <c>id</c>, <c>text</c>.
/// </summary>
public static class Imdb
{
    private sealed record Review(string Split, int Label, int Rating, int Id, string Text, string Path);

    /// <summary>Loads the labelled reviews; <paramref name="splits"/> limits to train and/or test.</summary>
    public static DataFrame Load(string path, params string[] splits)
    {
        var wanted = splits.Length == 0 ? ["train", "test"] : splits;
        var reviews = new List<Review>(50_000);
        if (File.Exists(path) && (path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase)))
        {
            using var fs = File.OpenRead(path);
            using var gz = new GZipStream(fs, CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            var buffer = new MemoryStream();
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                if (Parse(entry.Name, wanted) is not { } key) continue;
                buffer.SetLength(0);
                entry.DataStream.CopyTo(buffer);
                reviews.Add(key with { Text = TextCorpus.Decode(buffer.ToArray(), $"{path}!{entry.Name}") });
            }
        }
        else if (Directory.Exists(path))
        {
            var root = Directory.Exists(Path.Combine(path, "aclImdb")) ? Path.Combine(path, "aclImdb") : path;
            foreach (var split in wanted)
                foreach (var label in new[] { "pos", "neg" })
                {
                    var dir = Path.Combine(root, split, label);
                    if (!Directory.Exists(dir))
                        throw new SeqDslException(ErrorKind.Data, $"{path} does not have the IMDB layout: {dir} is missing.")
                        { Expected = "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt" };
                    foreach (var file in Directory.EnumerateFiles(dir, "*.txt"))
                        if (Parse($"{split}/{label}/{Path.GetFileName(file)}", wanted) is { } key)
                            reviews.Add(key with { Text = TextCorpus.Decode(File.ReadAllBytes(file), file) });
                }
        }
        else
        {
            throw new SeqDslException(ErrorKind.Data, $"IMDB data not found at {path}.")
            { Expected = "the aclImdb folder or aclImdb_v1*.tar.gz" };
        }
        if (reviews.Count == 0)
            throw new SeqDslException(ErrorKind.Data, $"{path} holds no reviews under {{train,test}}/{{pos,neg}}/.");
        // a fixed order, whatever the archive or file system order: split, label (pos first), id
        reviews.Sort((a, b) =>
        {
            var c = string.CompareOrdinal(b.Split, a.Split); // train before test
            if (c != 0) return c;
            c = b.Label.CompareTo(a.Label);
            return c != 0 ? c : a.Id.CompareTo(b.Id);
        });
        return new DataFrame(
            new StringDataFrameColumn("split", reviews.Select(r => r.Split)),
            new Int32DataFrameColumn("label", reviews.Select(r => r.Label)),
            new Int32DataFrameColumn("rating", reviews.Select(r => r.Rating)),
            new Int32DataFrameColumn("id", reviews.Select(r => r.Id)),
            new StringDataFrameColumn("text", reviews.Select(r => r.Text)));
    }

    /// <summary>Reads split/label/id/rating from a path ending in split/label/id_rating.txt.</summary>
    private static Review? Parse(string name, string[] wanted)
    {
        var parts = name.Replace('\\', '/').Split('/');
        if (parts.Length < 3) return null;
        var (split, label, file) = (parts[^3], parts[^2], parts[^1]);
        if (!wanted.Contains(split) || label is not ("pos" or "neg") || !file.EndsWith(".txt", StringComparison.Ordinal)) return null;
        var stem = file[..^4].Split('_');
        if (stem.Length != 2 || !int.TryParse(stem[0], out var id) || !int.TryParse(stem[1], out var rating)) return null;
        return new Review(split, label == "pos" ? 1 : 0, rating, id, "", name);
    }
}
