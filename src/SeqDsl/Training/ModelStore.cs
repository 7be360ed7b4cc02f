using System.Text.Json;
using SeqDsl.Engine;
using SeqDsl.Spec;

namespace SeqDsl.Training;

/// <summary>
/// A saved model is a directory: <c>model.txt</c> (the fluent text), <c>model.json</c>,
/// <c>network.json</c> (compile options: input, convention), <c>weights.dat</c> (TorchSharp
/// format, libtorch parameter names), any files the data preparation adds (tokenizer,
/// vocabulary, scaler), and <c>manifest.json</c> with the SHA-256 of every one of them, checked when the model is
/// read: a changed, truncated or foreign file is an error naming it, never a silently different model.
/// It is written (and flushed to disk) in a temporary sibling and then put in place: on Linux by exchanging the two
/// directories in one atomic rename, so that at every instant DIR holds either the complete old or the complete new
/// model; leftovers of an interrupted save are removed by the next one.
/// </summary>
public static class ModelStore
{
    private sealed record NetworkFile(int Format, string Convention, int? Vocab, int? Features, int? SeqLen, long Seed);

    private sealed record Manifest(int Format, Dictionary<string, string> Files);

    /// <summary>The file that lists every other file of a model directory with its SHA-256.</summary>
    public const string ManifestFile = "manifest.json";

    private static readonly string[] Required = ["model.json", "network.json", "weights.dat"];

    /// <summary>The files a model directory may hold beside those its manifest lists and that a save writes again: the
    /// learning curves an experiment draws after saving its model.</summary>
    private static readonly string[] Redrawn = ["learning-curves.png"];

    /// <summary>Files an operating system's file browser leaves in any folder it shows.</summary>
    private static readonly string[] SystemFiles = [".DS_Store", "Thumbs.db", "desktop.ini"];

    /// <summary>
    /// Refuses a <paramref name="directory"/> that saving a model must not replace, because the save replaces the
    /// directory: an empty path, the file system's root, the working folder or one above it, a file, or a folder that is
    /// not a SeqDsl model directory (one whose manifest lists a model, or an older save's model.json, network.json and
    /// weights.dat without a manifest) and holds anything but the file browser's own files. A new or empty folder passes,
    /// and so does a model directory: a save keeps the other files in it (an export, the user's notes). With
    /// <paramref name="probeWrite"/>, also creates the parent and a probe folder in it (removed at once), so a place that
    /// cannot be written is named before any work. <paramref name="option"/> names the path in the message
    /// (e.g. <c>--out</c>).
    /// </summary>
    /// <exception cref="SeqDslException">The directory cannot be replaced (kind Spec).</exception>
    public static void CheckReplaceable(string directory, string option = "the model directory", bool probeWrite = false)
    {
        if (string.IsNullOrWhiteSpace(directory))
            throw new SeqDslException(ErrorKind.Spec, $"{option} is empty: give the path of a model directory (it is created, or replaced).");
        var full = Path.GetFullPath(Path.TrimEndingDirectorySeparator(directory));
        var parent = Path.GetDirectoryName(full);
        if (parent is null)
            throw new SeqDslException(ErrorKind.Spec, $"{option} {directory} is the file system's root; give a model directory below it (it is created, or replaced).");
        var here = Path.TrimEndingDirectorySeparator(Environment.CurrentDirectory);
        if (here == full || here.StartsWith(full + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new SeqDslException(ErrorKind.Spec, $"{option} {directory} is the working folder or holds it; give a model directory inside it, e.g. {Path.Combine(directory, "model")}.");
        if (File.Exists(full))
            throw new SeqDslException(ErrorKind.Spec, $"{option} {directory} is a file; give the path of a model directory (it is created, or replaced).");
        if (Directory.Exists(full))
        {
            var entries = Directory.EnumerateFileSystemEntries(full).Select(e => Path.GetFileName(e)).Where(e => !SystemFiles.Contains(e))
                .Order(StringComparer.Ordinal).ToList();
            if (entries.Count > 0 && !IsModelDirectory(full))
                throw new SeqDslException(ErrorKind.Spec,
                    $"{option} {directory} is not empty and is not a SeqDsl model directory (it holds {FewNames(entries)}); saving would replace it, so give a new or empty folder, or a model directory.");
        }
        if (!probeWrite) return;
        var probe = Path.Combine(parent, $".{Path.GetFileName(full)}.probe-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(parent);
            Directory.CreateDirectory(probe);
            Directory.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new SeqDslException(ErrorKind.Spec,
                $"{option} {directory}: cannot create a folder in {parent} ({(e is UnauthorizedAccessException ? "permission denied" : "the file system refused it")}).", e);
        }
    }

    /// <summary>The first five of <paramref name="names"/>, comma-separated, "…" after them when there are more: what a
    /// message says a folder holds.</summary>
    internal static string FewNames(IReadOnlyList<string> names) => string.Join(", ", names.Take(5)) + (names.Count > 5 ? ", …" : "");

    /// <summary>Whether <paramref name="directory"/> holds a SeqDsl model: a manifest that lists one, or (saved before the
    /// manifest existed) the model's files without a manifest.</summary>
    private static bool IsModelDirectory(string directory)
    {
        if (!File.Exists(Path.Combine(directory, ManifestFile))) return Required.All(f => File.Exists(Path.Combine(directory, f)));
        try { return Required.All(ReadManifest(directory).Files.ContainsKey); }
        catch (SeqDslException) { return false; }
    }

    /// <summary>Saves the network (and extra named text files) to <paramref name="directory"/>, replacing the model in it
    /// atomically; other files in a model directory are kept. A folder that is not a model directory and holds other
    /// files is refused, never replaced (<see cref="CheckReplaceable"/>).</summary>
    public static void Save(Network network, string directory, IReadOnlyDictionary<string, string>? extraFiles = null)
    {
        CheckReplaceable(directory);
        SaveDirectory(directory, keepOthers: true, Write =>
        {
            void Text(string file, string text) => Write(file, fs => fs.Write(System.Text.Encoding.UTF8.GetBytes(text)));
            // pretrained embedding vectors are part of the weights: the saved model does not name their file, so it
            // reloads where the file is gone (and without the vocabulary the vectors were matched to)
            var spec = ModelSpec.Of(network.Spec.Layers.Select(l => l is EmbedLayer { Pretrained: not null } e ? e with { Pretrained = null } : l));
            Text("model.txt", spec + "\n");
            Text("model.json", ModelJson.ToJson(spec));
            var o = network.Options;
            Text("network.json", JsonSerializer.Serialize(new NetworkFile(1, o.Convention.ToString(), o.Input.Vocab, o.Input.Features, o.Input.SeqLen, o.Seed), ModelJson.Options));
            Write("weights.dat", fs =>
            {
                using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
                network.save(w);
                w.Flush();
            });
            foreach (var (file, text) in extraFiles ?? new Dictionary<string, string>())
                Text(file, text);
        });
    }

    /// <summary>Writes a directory of files and its <see cref="ManifestFile"/> (the SHA-256 of every file, read back from
    /// the disk), replacing <paramref name="directory"/> atomically: written and flushed in a temporary sibling, then put
    /// in place (on Linux by exchanging the two directories in one rename). <paramref name="files"/> is given the
    /// function that writes one file by name. With <paramref name="keepOthers"/>, whatever the old directory holds
    /// besides the files its manifest lists (and <see cref="Redrawn"/>) is copied into the new one first.</summary>
    internal static void SaveDirectory(string directory, bool keepOthers, Action<Action<string, Action<Stream>>> files)
    {
        var full = Path.GetFullPath(Path.TrimEndingDirectorySeparator(directory));
        var parent = Path.GetDirectoryName(full) ?? ".";
        var name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        CleanUp(parent, name, full);
        var tmp = Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            var hashes = new Dictionary<string, string>();
            void Write(string file, Action<Stream> write)
            {
                if (file.Contains('/') || file.Contains('\\') || file is "." or ".." or ManifestFile || hashes.ContainsKey(file))
                    throw new ArgumentException($"invalid file name '{file}' in a model directory", nameof(files));
                Durable.WriteFile(Path.Combine(tmp, file), write);
                hashes[file] = Durable.Sha256(Path.Combine(tmp, file)); // what reached the disk, read back
            }
            files(Write);
            if (keepOthers && Directory.Exists(full)) KeepOthers(full, tmp, hashes.Keys);
            Durable.WriteFile(Path.Combine(tmp, ManifestFile),
                fs => JsonSerializer.Serialize(fs, new Manifest(1, hashes), new JsonSerializerOptions { WriteIndented = true }));
            Durable.SyncDirectory(tmp);
            LastSaveExchanged = false;
            if (!Directory.Exists(full)) Directory.Move(tmp, full);
            else if (Exchange(tmp, full)) LastSaveExchanged = true;
            else
            {
                // no atomic exchange here (not Linux): two renames; an interruption between them leaves the old model
                // in .NAME.old-*, which the next save or CleanUp puts back
                var old = Path.Combine(parent, $".{name}.old-{Guid.NewGuid():N}");
                Directory.Move(full, old);
                try
                {
                    Directory.Move(tmp, full);
                }
                catch
                {
                    Directory.Move(old, full); // the old model back under its name, then the failure
                    throw;
                }
                Durable.TryDelete(old);
            }
            Durable.SyncDirectory(parent);
        }
        finally
        {
            Durable.TryDelete(tmp); // after an exchange: the old model
        }
    }

    /// <summary>Copies what the old model directory <paramref name="from"/> holds besides its model (the files its
    /// manifest lists, the manifest, <see cref="Redrawn"/>, and anything the new save writes) into the new one, folders
    /// with their contents, each file flushed: an export or notes kept in a model directory outlive a retraining.</summary>
    private static void KeepOthers(string from, string to, IEnumerable<string> written)
    {
        var model = SavedFiles(from).Concat(Redrawn).Concat(written).ToHashSet(StringComparer.Ordinal);
        void Copy(string source, string target)
        {
            if (Directory.Exists(source))
            {
                Directory.CreateDirectory(target);
                foreach (var e in Directory.EnumerateFileSystemEntries(source)) Copy(e, Path.Combine(target, Path.GetFileName(e)));
                Durable.SyncDirectory(target);
            }
            else Durable.WriteFile(target, fs => { using var src = File.OpenRead(source); src.CopyTo(fs); });
        }
        foreach (var e in Directory.EnumerateFileSystemEntries(from))
            if (!model.Contains(Path.GetFileName(e))) Copy(e, Path.Combine(to, Path.GetFileName(e)));
    }

    /// <summary>Test hook: whether the last <see cref="Save"/> replaced an existing model by the atomic exchange.</summary>
    internal static bool LastSaveExchanged { get; private set; }

    /// <summary>Removes what an interrupted save left beside <paramref name="full"/>; when the model itself is missing
    /// but an old copy survived between two renames, puts the newest old copy back.</summary>
    private static void CleanUp(string parent, string name, string full)
    {
        foreach (var d in Directory.GetDirectories(parent, $".{name}.tmp-*")) Durable.TryDelete(d);
        var olds = Directory.GetDirectories(parent, $".{name}.old-*").OrderByDescending(Directory.GetLastWriteTimeUtc).ToArray();
        if (!Directory.Exists(full) && olds.Length > 0)
        {
            Directory.Move(olds[0], full);
            olds = olds[1..];
        }
        foreach (var d in olds) Durable.TryDelete(d);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    private static extern int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

    /// <summary>Swaps two directories in one atomic rename (Linux renameat2 with RENAME_EXCHANGE); false where the
    /// system or file system cannot (ENOSYS, EINVAL, EOPNOTSUPP); any other failure is an error.</summary>
    private static bool Exchange(string a, string b)
    {
        if (!OperatingSystem.IsLinux()) return false;
        const int AtFdCwd = -100;
        const uint RenameExchange = 2;
        try
        {
            if (RenameAt2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0) return true;
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno is 38 or 22 or 95) return false; // ENOSYS, EINVAL, EOPNOTSUPP: no exchange on this system
            throw new IOException($"Cannot replace {b} (renameat2 failed with errno {errno}).");
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Checks every file the manifest lists against its SHA-256, and that the required files and
    /// <paramref name="also"/> are listed.</summary>
    /// <exception cref="SeqDslException">No manifest, a file missing, changed, or not listed.</exception>
    public static void Verify(string directory, params string[] also)
    {
        var m = ReadManifest(directory);
        foreach (var need in Required.Concat(also))
            if (!m.Files.ContainsKey(need))
                throw new SeqDslException(ErrorKind.Data, $"{directory}: {need} is not listed in {ManifestFile}.");
        foreach (var file in m.Files.Keys) VerifyFile(directory, m, file);
    }

    /// <summary>The files a model directory's manifest lists, and the manifest itself: what must never be overwritten by
    /// anything but a save.</summary>
    public static IReadOnlySet<string> SavedFiles(string directory) =>
        File.Exists(Path.Combine(directory, ManifestFile))
            ? ReadManifest(directory).Files.Keys.Append(ManifestFile).ToHashSet(StringComparer.Ordinal)
            : new HashSet<string> { ManifestFile };

    private static Manifest ReadManifest(string directory)
    {
        var manifestPath = Path.Combine(directory, ManifestFile);
        if (!File.Exists(manifestPath))
            throw new SeqDslException(ErrorKind.Data, Directory.Exists(directory)
                ? $"{directory} has no {ManifestFile}: it is not a SeqDsl model directory, or was saved by an older SeqDsl (train it again or re-save it)."
                : File.Exists(directory)
                    ? $"{directory} is a file, not a model directory; give the folder seqdsl train --out wrote."
                    : $"Model directory not found: {directory}");
        try
        {
            var m = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifestPath)) ?? throw new JsonException("empty");
            if (m.Format != 1) throw new JsonException($"format {m.Format} is not 1");
            if (m.Files is null) throw new JsonException("it lists no files");
            if (m.Files.Keys.Any(f => f != Path.GetFileName(f) || f is "." or ".."))
                throw new JsonException("it names a file outside the directory");
            return m;
        }
        catch (JsonException e)
        {
            throw new SeqDslException(ErrorKind.Data, $"{manifestPath} is not valid: {e.Message}", e);
        }
    }

    private static void VerifyFile(string directory, Manifest m, string file)
    {
        var p = Path.Combine(directory, file);
        if (!File.Exists(p))
            throw new SeqDslException(ErrorKind.Data, $"{directory} is incomplete: {file} is missing.");
        var actual = Durable.Sha256(p);
        if (!string.Equals(actual, m.Files[file], StringComparison.Ordinal)) // lower-case hex, exactly as written
            throw new SeqDslException(ErrorKind.Data, $"{p} was changed after the model was saved (its SHA-256 differs from {ManifestFile}); the model cannot be trusted.")
            { Received = actual, Expected = m.Files[file] };
    }

    /// <summary>Reads a model directory and returns the compiled network with its weights.</summary>
    /// <exception cref="SeqDslException">A file is missing, truncated, or does not belong to this model.</exception>
    public static Network Load(string directory, string device = "cpu")
    {
        Verify(directory);
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
            Convention = Enum.TryParse<Convention>(nf.Convention, out var convention) && Enum.IsDefined(convention) ? convention
                : throw new SeqDslException(ErrorKind.Data, $"{Path.Combine(directory, "network.json")}: unknown convention '{nf.Convention}'."),
            Seed = nf.Seed,
            Device = device,
            MeasureKernels = false, // a model loaded to be used: a kernel choice kept on this machine, else libtorch's
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

    /// <summary>Reads an extra file saved with the model, or null when the manifest does not list it; a listed file is
    /// checked against its SHA-256.</summary>
    public static string? ReadExtra(string directory, string name)
    {
        var m = ReadManifest(directory);
        if (!m.Files.ContainsKey(name)) return null;
        VerifyFile(directory, m, name);
        return File.ReadAllText(Path.Combine(directory, name));
    }
}
