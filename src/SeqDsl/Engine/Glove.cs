using System.Globalization;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>Pretrained word vectors in the GloVe text format: one <c>word v1 v2 … vD</c> per line.</summary>
public static class Glove
{
    /// <summary>Copies the vectors of vocabulary words found in the file into an embedding table
    /// (V×D); other rows keep their initialisation, the padding row stays zero. Returns a report.</summary>
    public static string LoadInto(Tensor table, string path, IReadOnlyDictionary<string, int> vocabulary, int? padding)
    {
        SeqDsl.Spec.InputFiles.Require(path, "Pretrained vectors file");
        var dim = table.shape[1];
        var vocab = table.shape[0];
        var found = new HashSet<int>();
        var row = new float[dim];
        using var _ = no_grad();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != dim + 1)
                throw new SeqDslException(ErrorKind.Data,
                    $"{path}, line {lineNo}: expected a word and {dim} numbers (the Embed dim), found {parts.Length - 1} numbers.");
            if (!vocabulary.TryGetValue(parts[0], out var index) || index >= vocab || index == padding) continue;
            for (var k = 0; k < dim; k++)
                if (!float.TryParse(parts[k + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out row[k]))
                    throw new SeqDslException(ErrorKind.Data, $"{path}, line {lineNo}, column {k + 2}: '{parts[k + 1]}' is not a number.");
            using var v = tensor(row, dtype: table.dtype, device: table.device);
            table[index].copy_(v);
            found.Add(index);
        }
        var words = vocabulary.Count(kv => kv.Value < vocab && kv.Value != padding);
        return $"pretrained vectors from {Path.GetFileName(path)}: {found.Count:N0} of {words:N0} vocabulary words found ({(words == 0 ? 0 : 100.0 * found.Count / words):F1} %)";
    }
}
