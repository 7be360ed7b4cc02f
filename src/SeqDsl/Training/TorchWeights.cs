using System.Buffers.Binary;
using System.Collections;
using System.Collections.Specialized;
using System.Globalization;
using System.Text.RegularExpressions;
using SeqDsl.Engine;
using SeqDsl.Spec;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>What <see cref="TorchWeights.Load"/> read into a network.</summary>
/// <param name="Path">The file read.</param>
/// <param name="Format">pt (a PyTorch state dict) or safetensors.</param>
/// <param name="Tensors">Tensors read (every parameter of the network, and PyTorch's second biases of a Keras layout).</param>
/// <param name="Values">Values in them.</param>
/// <param name="FoldedBiases">PyTorch's second biases (<c>bias_hh</c>) that were not zero and were added into the one
/// bias a Keras-layout layer keeps (exact: the cell adds both biases to the same gate pre-activations).</param>
public sealed record WeightsLoadResult(string Path, string Format, int Tensors, long Values, IReadOnlyList<string> FoldedBiases)
{
    /// <summary>One line for logs.</summary>
    public override string ToString() =>
        $"loaded {Tensors} tensors ({Values.ToString("N0", CultureInfo.InvariantCulture)} values) from {Path} ({Format})"
        + (FoldedBiases.Count > 0 ? $"; added PyTorch's second bias into the Keras layout's one: {string.Join(", ", FoldedBiases)}" : "");
}

/// <summary>
/// A network's weights as a PyTorch state dict (<c>.pt</c>, written by TorchSharp.PyBridge's pickler) or a safetensors
/// file, and back. The state dict has SeqDsl's parameter names, which are libtorch's (<c>layers.0.embedding.weight</c>,
/// <c>layers.1.rnn.weight_ih_l0</c>, <c>layers.2.linear.weight</c>; gate blocks in libtorch's order i,f,g,o and r,z,n), so
/// it is the state dict of the <c>nn.Module</c> that <c>Export.TorchExport</c> writes. A recurrent layer with one bias per
/// gate set (the Keras layout) gets PyTorch's second bias, <c>bias_hh</c>, as zeros; loading adds a nonzero one into the
/// kept bias. Files are written atomically and checked on read-back; loading checks every name, shape and element type
/// first and names the tensor at fault.
/// </summary>
public static class TorchWeights
{
    /// <summary>One tensor of a network's PyTorch state dict: its parameter (null: a zero second bias the network does
    /// not keep), and the bias it adds into when loaded (a Keras layout's second bias), if any.</summary>
    internal sealed record StateTensor(string Name, long[] Shape, ScalarType DType, Parameter? Parameter, string? FoldsInto);

    private static readonly Regex FirstBias = new(@"^layers\.(\d+)\.rnn\.bias_ih(_l\d+(?:_reverse)?)$", RegexOptions.CultureInvariant);

    /// <summary>The network's state dict in order: every parameter under its own name, and after the first bias of a
    /// Keras-layout recurrent layer that PyTorch can express, the zero second bias the PyTorch module has.</summary>
    internal static IReadOnlyList<StateTensor> Layout(Network net)
    {
        var parameters = net.named_parameters().ToList();
        var names = parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var result = new List<StateTensor>();
        foreach (var (name, p) in parameters)
        {
            var held = net.HeldAtZero.Contains(name) ? name.Replace(".bias_hh", ".bias_ih", StringComparison.Ordinal) : null;
            result.Add(new StateTensor(name, p.shape, p.dtype, p, held));
            if (FirstBias.Match(name) is { Success: true } m
                && net.Spec.Layers[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] is RecurrentLayer r
                && RnnParameters.TorchModule(r.Cell) is not null)
            {
                var second = name.Replace(".bias_ih", ".bias_hh", StringComparison.Ordinal);
                if (!names.Contains(second)) result.Add(new StateTensor(second, p.shape, p.dtype, null, name));
            }
        }
        return result;
    }

    /// <summary>The state dict's tensors (CPU copies, zeros for the second biases a Keras layout does not keep), made in the
    /// caller's dispose scope.</summary>
    private static List<(string Name, Tensor Value)> StateTensors(Network net)
    {
        using var _ = no_grad();
        return Layout(net).Select(t => (t.Name, t.Parameter is { } p ? p.detach().cpu().contiguous().clone() : zeros(t.Shape, t.DType))).ToList();
    }

    /// <summary>The network's weights as a safetensors file (its state dict; the metadata names the model and its
    /// convention).</summary>
    public static byte[] SafetensorsBytes(Network net)
    {
        using var scope = NewDisposeScope();
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["seqdsl.model"] = net.Spec.ToString(),
            ["seqdsl.convention"] = net.Options.Convention.ToString().ToLowerInvariant(),
        };
        return Safetensors.Write(StateTensors(net), metadata);
    }

    /// <summary>The network's weights as a PyTorch state dict file (<c>torch.load</c> reads it; TorchSharp.PyBridge's
    /// pickler writes it).</summary>
    public static byte[] StateDictBytes(Network net)
    {
        using var scope = NewDisposeScope();
        var dict = new OrderedDictionary(StringComparer.Ordinal);
        foreach (var (name, value) in StateTensors(net)) dict.Add(name, value);
        using var ms = new MemoryStream();
        PyTorchPickler.PickleStateDict(ms, dict, leaveOpen: true);
        return ms.ToArray();
    }

    /// <summary>Writes the network's weights as safetensors to <paramref name="path"/> (replaced atomically, read back).</summary>
    public static void SaveSafetensors(Network net, string path) => WriteChecked(path, SafetensorsBytes(net));

    /// <summary>Writes the network's weights as a PyTorch state dict to <paramref name="path"/> (replaced atomically, read back).</summary>
    public static void SaveStateDict(Network net, string path) => WriteChecked(path, StateDictBytes(net));

    private static void WriteChecked(string path, byte[] bytes)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new SeqDslException(ErrorKind.Spec, $"{path} is a directory; give the file to write.");
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        Durable.ReplaceFile(full, bytes);
        CheckReadBack(full, bytes);
    }

    /// <summary>Fails unless the file on disk has the SHA-256 of <paramref name="bytes"/>.</summary>
    internal static void CheckReadBack(string path, byte[] bytes)
    {
        if (Durable.Sha256(path) != Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)))
            throw new SeqDslException(ErrorKind.Runtime, $"{path} does not read back as written (the file system changed it); write it again.");
    }

    /// <summary>
    /// Loads a PyTorch state dict (<c>.pt</c>/<c>.pth</c>, the zip format <c>torch.save</c> writes) or a safetensors file
    /// into the network, recognised by its content. Every tensor of the network's state dict must be there with its shape
    /// and element type (float32), and nothing else; a Keras-layout layer's second bias is added into its first. Nothing
    /// is changed unless the whole file matches.
    /// </summary>
    /// <exception cref="SeqDslException">The file is missing or unreadable, or a tensor is missing, unexpected, or of
    /// another shape or type; the message names the file and the tensor.</exception>
    public static WeightsLoadResult Load(Network net, string path)
    {
        if (Directory.Exists(path)) throw new SeqDslException(ErrorKind.Data, $"{path} is a directory; give a .pt or .safetensors file.");
        SeqDsl.Spec.InputFiles.Require(path, "Weights file");
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SeqDslException(ErrorKind.Data, $"Cannot read {path}: {e.Message}", e);
        }
        using var scope = NewDisposeScope();
        var (format, tensors) = ReadTensors(bytes, path);
        var given = new Dictionary<string, FileTensor>(StringComparer.Ordinal);
        foreach (var t in tensors) given[t.Name] = t;
        var layout = Layout(net);
        var expected = layout.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        static string List(IEnumerable<string> names, int count) =>
            string.Join(", ", names.Take(count)) + (names.Count() > count ? $", … ({names.Count()} in all)" : "");
        var missing = layout.Where(t => !given.ContainsKey(t.Name)).Select(t => t.Name).ToList();
        if (missing.Count > 0)
            throw new SeqDslException(ErrorKind.Data,
                $"{path}: tensor '{missing[0]}' is missing{(missing.Count > 1 ? $" (and {missing.Count - 1} more: {List(missing.Skip(1), 4)})" : "")}; {net.Spec} needs it.")
            { Received = $"{given.Count} tensors: {List(given.Keys, 6)}", Expected = $"{layout.Count} tensors: {List(layout.Select(t => t.Name), 6)}" };
        var unexpected = tensors.Where(t => !expected.Contains(t.Name)).Select(t => t.Name).ToList();
        if (unexpected.Count > 0)
            throw new SeqDslException(ErrorKind.Data,
                $"{path}: tensor '{unexpected[0]}' is not a parameter of {net.Spec}{(unexpected.Count > 1 ? $" (nor {List(unexpected.Skip(1), 4)})" : "")}.")
            { Received = unexpected[0], Expected = $"the model's {layout.Count} tensors: {List(layout.Select(t => t.Name), 6)}" };
        foreach (var t in layout)
        {
            var g = given[t.Name];
            if (!g.Shape.SequenceEqual(t.Shape))
                throw new SeqDslException(ErrorKind.Data, $"{path}: tensor '{t.Name}' has shape [{string.Join(", ", g.Shape)}], the model's is [{string.Join(", ", t.Shape)}].")
                { Received = $"[{string.Join(", ", g.Shape)}]", Expected = $"[{string.Join(", ", t.Shape)}]" };
            if (g.Value is null || g.Value.dtype != t.DType)
                throw new SeqDslException(ErrorKind.Data,
                    $"{path}: tensor '{t.Name}' holds {TypeName(g)} values, the model's are {TypeName(t.DType)}; convert them in PyTorch (state_dict = {{k: v.float() for k, v in state_dict.items()}}) and save again.")
                { Received = TypeName(g), Expected = TypeName(t.DType) };
        }
        var folded = new List<string>();
        using (no_grad())
        {
            foreach (var t in layout)
                if (t is { Parameter: { } p, FoldsInto: null }) p.copy_(given[t.Name].Value!);
            var parameters = layout.Where(t => t.Parameter is not null).ToDictionary(t => t.Name, t => t.Parameter!, StringComparer.Ordinal);
            foreach (var t in layout)
            {
                if (t.FoldsInto is null) continue;
                var second = given[t.Name].Value!;
                if (second.count_nonzero().item<long>() == 0) continue; // a zero second bias changes nothing: bit-identical round trips
                parameters[t.FoldsInto].PlusInPlace(second.to(parameters[t.FoldsInto].device));
                folded.Add(t.Name);
            }
        }
        return new WeightsLoadResult(path, format, layout.Count, layout.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)), folded);
    }

    /// <summary>The tensors of a .pt or safetensors file, made in the caller's dispose scope.</summary>
    private static (string Format, List<FileTensor> Tensors) ReadTensors(byte[] bytes, string path)
    {
        if (bytes.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(bytes) == 0x04034b50) // "PK\3\4": torch.save's zip
            return ("pt", ReadStateDict(bytes, path));
        if (Safetensors.Looks(bytes))
            return ("safetensors", Safetensors.Read(bytes, path).Tensors);
        if (bytes.Length >= 2 && bytes[0] == 0x80 && bytes[1] <= 5) // a bare pickle: torch.save's format before PyTorch 1.6
            throw new SeqDslException(ErrorKind.Data, $"{path} was written by torch.save's legacy format (_use_new_zipfile_serialization=False); save it again with torch.save(model.state_dict(), path).");
        throw new SeqDslException(ErrorKind.Data, $"{path} is neither a PyTorch state dict (torch.save's zip format) nor a safetensors file.");
    }

    private static List<FileTensor> ReadStateDict(byte[] bytes, string path)
    {
        Hashtable table;
        try
        {
            using var ms = new MemoryStream(bytes, writable: false);
            table = PyTorchUnpickler.UnpickleStateDict(ms, leaveOpen: true);
        }
        catch (Exception e) when (e is not SeqDslException)
        {
            var why = e is InvalidCastException ? "it does not hold a state dict of tensors (a checkpoint dict? save model.state_dict() alone)" : e.Message;
            throw new SeqDslException(ErrorKind.Data, $"{path} could not be read as a PyTorch state dict: {why}", e);
        }
        var result = new List<FileTensor>();
        foreach (DictionaryEntry entry in table)
        {
            var name = entry.Key as string ?? throw new SeqDslException(ErrorKind.Data, $"{path}: the state dict has a key that is not a string ({entry.Key}).");
            if (entry.Value is not Tensor t)
                throw new SeqDslException(ErrorKind.Data, $"{path}: '{name}' is not a tensor ({entry.Value?.GetType().Name ?? "None"}); save model.state_dict() alone.");
            result.Add(new FileTensor(name, TypeName(t.dtype), t.shape, t));
        }
        return result.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
    }

    private static string TypeName(FileTensor t) => t.Value is { } v ? TypeName(v.dtype) : t.DType;

    /// <summary>PyTorch's name of an element type (float32, float64, …).</summary>
    private static string TypeName(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.Float64 => "float64",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Int64 => "int64",
        ScalarType.Int32 => "int32",
        ScalarType.Int16 => "int16",
        ScalarType.Int8 => "int8",
        ScalarType.Byte => "uint8",
        ScalarType.Bool => "bool",
        _ => t.ToString(),
    };
}
