using System.Text.Json;
using SeqDsl.Engine;
using SeqDsl.Spec;

namespace SeqDsl.Training;

/// <summary>
/// A saved model is a directory: <c>model.txt</c> (the fluent text), <c>model.json</c>,
/// <c>network.json</c> (compile options: input, convention), <c>weights.dat</c> (TorchSharp
/// format, libtorch parameter names), and any files the data preparation adds (tokenizer,
/// vocabulary, scaler). It is written to a temporary sibling and renamed into place, so a
/// crash never leaves a half-written model under the final name.
/// </summary>
public static class ModelStore
{
    private sealed record NetworkFile(int Format, string Convention, int? Vocab, int? Features, int? SeqLen, long Seed);

    /// <summary>Saves the network (and extra named text files) to <paramref name="directory"/>, replacing it atomically.</summary>
    public static void Save(Network network, string directory, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        var full = Path.GetFullPath(directory);
        var parent = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            File.WriteAllText(Path.Combine(tmp, "model.txt"), network.Spec + "\n");
            File.WriteAllText(Path.Combine(tmp, "model.json"), ModelJson.ToJson(network.Spec));
            var o = network.Options;
            var nf = new NetworkFile(1, o.Convention.ToString(), o.Input.Vocab, o.Input.Features, o.Input.SeqLen, o.Seed);
            File.WriteAllText(Path.Combine(tmp, "network.json"), JsonSerializer.Serialize(nf, ModelJson.Options));
            using (var fs = File.Create(Path.Combine(tmp, "weights.dat")))
                network.save(fs);
            foreach (var (name, text) in extraFiles ?? new Dictionary<string, string>())
            {
                if (name.Contains('/') || name.Contains('\\') || name is "model.txt" or "model.json" or "network.json" or "weights.dat")
                    throw new ArgumentException($"invalid extra file name '{name}'", nameof(extraFiles));
                File.WriteAllText(Path.Combine(tmp, name), text);
            }
            if (Directory.Exists(full))
            {
                var old = Path.Combine(parent, $".{Path.GetFileName(full)}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
                Directory.Move(tmp, full);
                Directory.Delete(old, true);
            }
            else
            {
                Directory.Move(tmp, full);
            }
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        }
    }

    /// <summary>Reads a model directory and returns the compiled network with its weights.</summary>
    /// <exception cref="SeqDslException">A file is missing, truncated, or does not belong to this model.</exception>
    public static Network Load(string directory, string device = "cpu")
    {
        string Need(string name)
        {
            var p = Path.Combine(directory, name);
            if (!File.Exists(p))
                throw new SeqDslException(ErrorKind.Data, $"{directory} is not a SeqDsl model directory: {name} is missing.");
            return p;
        }
        var spec = ModelJson.FromJson(File.ReadAllText(Need("model.json")));
        NetworkFile nf;
        try
        {
            nf = JsonSerializer.Deserialize<NetworkFile>(File.ReadAllText(Need("network.json")), ModelJson.Options)
                 ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"{Path.Combine(directory, "network.json")} is not valid: {e.Message}", e);
        }
        var options = new CompileOptions
        {
            Input = new InputSpec(nf.Vocab, nf.Features, nf.SeqLen),
            Convention = Enum.Parse<Convention>(nf.Convention),
            Seed = nf.Seed,
            Device = device,
        };
        var net = Network.Compile(spec, options);
        var weights = Need("weights.dat");
        try
        {
            using var fs = File.OpenRead(weights);
            using (var reader = new BinaryReader(fs, System.Text.Encoding.UTF8, leaveOpen: true))
                net.load(reader, strict: true);
            if (fs.Position != fs.Length)
                throw new InvalidDataException($"{fs.Length - fs.Position} bytes follow the last tensor");
        }
        catch (Exception e) when (e is not SeqDslException)
        {
            net.Dispose();
            throw new SeqDslException(ErrorKind.Data,
                $"{weights} does not hold the weights of {spec} (truncated, or saved from another model): {e.Message}", e);
        }
        return net;
    }

    /// <summary>Reads an extra file saved with the model, or null when absent.</summary>
    public static string? ReadExtra(string directory, string name)
    {
        var p = Path.Combine(directory, name);
        return File.Exists(p) ? File.ReadAllText(p) : null;
    }
}
