using SeqDsl.Engine;
using SeqDsl.Spec;
using SeqDsl.Training;
using SeqDsl.Workflows;

namespace SeqDsl.Export;

/// <summary>What <see cref="TorchExport.Save(Network, string)"/> wrote: the folder, its three files, and the state dict's size.</summary>
/// <param name="Directory">The folder written (replaced whole).</param>
/// <param name="StateDict">model.pt: the state dict as <c>torch.save(model.state_dict())</c> writes it.</param>
/// <param name="Safetensors">model.safetensors: the same tensors.</param>
/// <param name="Module">model.py: the <c>nn.Module</c> whose <c>state_dict()</c> has exactly these keys and shapes.</param>
/// <param name="Tensors">Tensors in the state dict.</param>
/// <param name="Values">Values in them.</param>
public sealed record TorchExportResult(string Directory, string StateDict, string Safetensors, string Module, int Tensors, long Values);

/// <summary>
/// Exports a network for PyTorch: a folder with model.pt (its state dict, <see cref="TorchWeights"/>), model.safetensors
/// (the same tensors) and model.py, the <c>nn.Module</c> whose <c>state_dict()</c> has exactly those keys and shapes
/// (nn.Embedding, nn.LSTM / nn.GRU / nn.RNN batch_first, stacked and bidirectional, nn.Linear, attention pooling,
/// dropout) and whose forward is SeqDsl's, lengths included. Cells PyTorch's modules do not compute are refused with the
/// layer named.
/// </summary>
public static class TorchExport
{
    /// <summary>The state dict file of an export folder.</summary>
    public const string StateDictFile = "model.pt";
    /// <summary>The safetensors file of an export folder.</summary>
    public const string SafetensorsFile = "model.safetensors";
    /// <summary>The Python module file of an export folder.</summary>
    public const string ModuleFile = "model.py";

    /// <summary>The files an export folder holds; a folder holding anything else is not replaced.</summary>
    private static readonly string[] ExportFiles = [StateDictFile, SafetensorsFile, ModuleFile, ModelStore.ManifestFile];

    /// <summary>
    /// Writes <paramref name="directory"/> with model.pt, model.safetensors, model.py and manifest.json (their SHA-256),
    /// replacing it whole and atomically; every file is read back and compared. A folder that holds anything but an
    /// earlier export is refused, never replaced.
    /// </summary>
    /// <exception cref="SeqDslException">A layer has no PyTorch form (the message names it), or the folder holds other files.</exception>
    public static TorchExportResult Save(Network net, string directory)
    {
        CheckExportable(net.Spec);
        var full = Path.GetFullPath(Path.TrimEndingDirectorySeparator(directory));
        if (File.Exists(full)) throw new SeqDslException(ErrorKind.Spec, $"{directory} is a file; give a folder for {StateDictFile}, {SafetensorsFile} and {ModuleFile}.");
        if (Directory.Exists(full))
        {
            var others = Directory.EnumerateFileSystemEntries(full).Select(e => Path.GetFileName(e)).Where(f => !ExportFiles.Contains(f)).Order().ToList();
            if (others.Count > 0)
                throw new SeqDslException(ErrorKind.Spec,
                    $"{directory} holds files other than an export's ({ModelStore.FewNames(others)}); the export replaces its folder whole, so give a new or empty folder.")
                { Received = directory, Expected = "a new folder, an empty one, or one an earlier export wrote" };
        }
        var files = new (string Name, byte[] Bytes)[]
        {
            (StateDictFile, TorchWeights.StateDictBytes(net)),
            (SafetensorsFile, TorchWeights.SafetensorsBytes(net)),
            (ModuleFile, System.Text.Encoding.UTF8.GetBytes(PythonModule(net))),
        };
        ModelStore.SaveDirectory(full, keepOthers: false, write =>
        {
            foreach (var (name, bytes) in files) write(name, fs => fs.Write(bytes));
        });
        foreach (var (name, bytes) in files) TorchWeights.CheckReadBack(Path.Combine(full, name), bytes);
        var layout = TorchWeights.Layout(net);
        return new TorchExportResult(full, Path.Combine(full, StateDictFile), Path.Combine(full, SafetensorsFile), Path.Combine(full, ModuleFile),
            layout.Count, layout.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)));
    }

    /// <summary>Exports a saved model's network (<see cref="Save(Network, string)"/>).</summary>
    public static TorchExportResult Save(TrainedModel model, string directory) => Save(model.Network, directory);

    /// <summary>Refuses, naming the layer, a model with a layer PyTorch's modules cannot express: a cell nn.LSTM, nn.GRU
    /// or nn.RNN does not compute (peephole or layer-norm LSTM, reset-before GRU, a simple RNN other than tanh or relu,
    /// a user cell).</summary>
    public static void CheckExportable(ModelSpec spec)
    {
        for (var i = 0; i < spec.Layers.Length; i++)
            if (spec.Layers[i] is RecurrentLayer r && RnnParameters.TorchModule(r.Cell) is null)
                throw SeqDslException.ForLayer(i, r, ErrorKind.Spec,
                    $"This layer has no PyTorch form: {r.Cell.FusedUnavailableReason} (nn.LSTM, nn.GRU and nn.RNN are libtorch's kernels).",
                    r.ToString(), "Lstm (plain), Gru (reset-after) or SimpleRnn (tanh or relu)");
    }

    /// <summary>The Python file defining <c>SeqDslModel</c>, the <c>nn.Module</c> whose state dict is this network's and
    /// whose forward is SeqDsl's: <c>model(x, lengths=None)</c>, lengths packing rows padded at the end; a recurrent layer
    /// returns every step or its top layer's final state, directions merged as declared.</summary>
    /// <exception cref="SeqDslException">A layer has no PyTorch form; the message names it.</exception>
    public static string PythonModule(Network net)
    {
        CheckExportable(net.Spec);
        return TorchModuleText.Write(net, TorchWeights.Layout(net));
    }
}
