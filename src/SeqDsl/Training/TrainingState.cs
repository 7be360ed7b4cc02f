using System.Text.Json;
using SeqDsl.Engine;
using SeqDsl.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Training;

/// <summary>
/// Resumable training state (<see cref="FitOptions.StateDirectory"/>): weights, optimizer state, epoch, history, the
/// batch source's random state, the global random state, the callbacks' states and the best epoch's weights.
/// <para>
/// Each save is one unit: every file is written and flushed to disk in a temporary folder inside the state directory,
/// which is then renamed to <c>epoch-NNNNNN</c> — a rename is atomic, so a generation folder that exists under its
/// final name is complete. Older generations and leftovers of an interrupted save are deleted afterwards, and a
/// restore reads the newest complete generation: a process killed at any instant resumes from the last epoch whose
/// save finished.
/// </para>
/// </summary>
internal static class TrainingState
{
    private const string Prefix = "epoch-";
    private const string TempPrefix = ".saving-";

    /// <param name="Epoch">Epochs finished.</param>
    /// <param name="LearningRate">The optimizer's rate (schedules change it).</param>
    /// <param name="Callbacks">The callbacks' states, keyed by the callback's value.</param>
    /// <param name="StopReason">Why training stopped, if it did.</param>
    /// <param name="Batch">Batches of the next epoch already trained (a state saved inside an epoch), else 0.</param>
    /// <param name="Metrics">That epoch's running metric sums so far, with <paramref name="Batch"/>.</param>
    private sealed record StateFile(int Epoch, double LearningRate, Dictionary<string, CallbackState>? Callbacks, string? StopReason,
        int Batch = 0, double[]? Metrics = null);

    // NaN (no best value yet) must survive the round trip
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Test hook: the file operation (0-based, counted across saves on this thread) at which a save fails as if
    /// the process had been killed there; null: never. Per thread, so tests running beside each other do not meet.</summary>
    internal static int? FailAtOperation
    {
        get => _failAt;
        set
        {
            _failAt = value;
            _operations = 0;
        }
    }

    [ThreadStatic] private static int? _failAt;
    [ThreadStatic] private static int _operations;

    /// <summary>Test hook: file operations counted since <see cref="FailAtOperation"/> was last set.</summary>
    internal static int Operations => _operations;

    private static void Step(string what)
    {
        if (_failAt is int k && _operations++ == k)
            throw new IOException($"simulated kill before: {what}");
    }

    /// <summary>A generation's name: <c>epoch-NNNNNN</c> after an epoch, <c>epoch-NNNNNN-bNNNNNNNNN</c> inside the next one.</summary>
    private static string Name(int epochs, int batch) => batch == 0 ? $"{Prefix}{epochs:D6}" : $"{Prefix}{epochs:D6}-b{batch:D9}";

    private static (int epochs, int batch)? Order(string folder)
    {
        var parts = Path.GetFileName(folder)[Prefix.Length..].Split("-b");
        return int.TryParse(parts[0], out var e) && (parts.Length == 1 || (parts.Length == 2 && int.TryParse(parts[1], out _)))
            ? (e, parts.Length == 2 ? int.Parse(parts[1]) : 0) : null;
    }

    /// <summary>The newest complete generation folder, or null.</summary>
    private static string? Newest(string dir) =>
        !Directory.Exists(dir) ? null
        : Directory.GetDirectories(dir, Prefix + "*").Where(d => Order(d) is not null).OrderByDescending(d => Order(d)!.Value).FirstOrDefault();

    public static bool Exists(string dir) => Newest(dir) is not null;

    /// <summary>Saves the state after <paramref name="epoch"/> epochs (and <paramref name="batch"/> batches of the next, with
    /// its running <paramref name="metrics"/>); <paramref name="sourceState"/> is the batch source's random state to resume
    /// from (for a state inside an epoch: as it was when that epoch was drawn).</summary>
    public static void Save(string dir, Network net, optim.Optimizer opt, byte[] sourceState, History history, int epoch,
        Dictionary<string, CallbackState> callbacks, CallbackContext context, int batch = 0, double[]? metrics = null)
    {
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $"{TempPrefix}{epoch:D6}-{Guid.NewGuid():N}");
        Step("create " + tmp);
        Directory.CreateDirectory(tmp);
        void Write(string name, Action<Stream> write)
        {
            Step("write " + name);
            Durable.WriteFile(Path.Combine(tmp, name), write);
        }
        void Sync(string folder)
        {
            Step("sync " + folder);
            Durable.SyncDirectory(folder);
        }
        Write("weights.dat", fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            net.save(w);
            w.Flush();
        });
        Write("optimizer.dat", fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            ((OptimizerHelper)opt).save_state_dict(w);
        });
        // generator states are raw bytes (TorchSharp's tensor loader cannot read Byte tensors back)
        Write("shuffle-rng.dat", fs => fs.Write(sourceState));
        Write("global-rng.dat", fs =>
        {
            using var g = torch.random.get_rng_state();
            fs.Write(g.data<byte>().ToArray());
        });
        Write("history.csv", fs => fs.Write(System.Text.Encoding.UTF8.GetBytes(history.ToCsv())));
        Write("best-weights.dat", fs =>
        {
            using var w = new BinaryWriter(fs, System.Text.Encoding.UTF8, leaveOpen: true);
            WriteWeights(w, context.BestWeights);
        });
        Write("state.json", fs => JsonSerializer.Serialize(fs, new StateFile(epoch, Trainer.LearningRate(opt), callbacks, history.StopReason, batch, metrics), Json));
        Sync(tmp);
        var final = Path.Combine(dir, Name(epoch, batch));
        if (Directory.Exists(final))
        {
            // a generation of the same epoch (a library run that restarted below its saved epoch): renamed aside in one
            // step, so a kill never leaves a half-deleted folder that would win as the newest
            Step("set aside an older " + final);
            Durable.RemoveAtomically(final);
        }
        Step("publish " + final);
        Directory.Move(tmp, final); // the commit point
        Sync(dir);
        // clean-up after the commit: older generations, and leftovers of interrupted saves and removals
        foreach (var old in Directory.GetDirectories(dir).Where(d => d != final && Path.GetFileName(d) is var n
                     && (n.StartsWith(Prefix, StringComparison.Ordinal) || n.StartsWith(TempPrefix, StringComparison.Ordinal) || n.Contains(".deleting-"))))
        {
            Step("remove " + old);
            try
            {
                Durable.RemoveAtomically(old);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // left for the next save's clean-up; the new generation is already published
            }
        }
    }

    /// <summary>Restores the newest generation; returns the epochs finished, the batches of the next epoch already trained
    /// and that epoch's running metric sums (null after a whole epoch).</summary>
    public static (int Epochs, int Batch, double[]? Metrics) Restore(string dir, Network net, optim.Optimizer opt, IBatchSource source, History history,
        Dictionary<string, CallbackState> callbacks, CallbackContext context)
    {
        var gen = Newest(dir)!;
        try
        {
            var st = JsonSerializer.Deserialize<StateFile>(File.ReadAllText(Path.Combine(gen, "state.json")), Json)!;
            using (var fs = File.OpenRead(Path.Combine(gen, "weights.dat"))) net.load(fs, strict: true);
            using (var fs = File.OpenRead(Path.Combine(gen, "optimizer.dat")))
            using (var r = new BinaryReader(fs)) ((OptimizerHelper)opt).load_state_dict(r);
            Trainer.SetLearningRate(opt, st.LearningRate);
            source.RestoreState(File.ReadAllBytes(Path.Combine(gen, "shuffle-rng.dat")), st.Epoch);
            using (var g = tensor(File.ReadAllBytes(Path.Combine(gen, "global-rng.dat")), dtype: ScalarType.Byte)) torch.random.set_rng_state(g);
            foreach (var e in History.FromCsv(File.ReadAllText(Path.Combine(gen, "history.csv"))).Epochs) history.Add(e);
            // callbacks this run has and the saved state knows continue; new ones start fresh
            foreach (var (key, state) in st.Callbacks ?? [])
                if (callbacks.ContainsKey(key)) callbacks[key] = state;
            using (var fs = File.OpenRead(Path.Combine(gen, "best-weights.dat")))
            using (var r = new BinaryReader(fs)) context.BestWeights = ReadWeights(r, net);
            history.StopReason = st.StopReason;
            return (st.Epoch, st.Batch, st.Metrics);
        }
        catch (Exception e) when (e is not SeqDslException)
        {
            throw new SeqDslException(ErrorKind.Data, $"Cannot resume from {gen}: {e.Message}", e);
        }
    }

    /// <summary>Name, shape and float32 values of each tensor; a count of 0 when there are none.</summary>
    private static void WriteWeights(BinaryWriter w, Dictionary<string, Tensor>? weights)
    {
        w.Write(weights?.Count ?? 0);
        foreach (var (name, t) in weights ?? [])
        {
            w.Write(name);
            w.Write(t.shape.Length);
            foreach (var d in t.shape) w.Write(d);
            using var scope = NewDisposeScope();
            var c = t.detach().cpu().contiguous().to_type(ScalarType.Float32);
            w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.data<float>().ToArray().AsSpan()));
        }
    }

    private static Dictionary<string, Tensor>? ReadWeights(BinaryReader r, Network net)
    {
        var count = r.ReadInt32();
        if (count == 0) return null;
        var like = net.state_dict();
        var result = new Dictionary<string, Tensor>();
        for (var i = 0; i < count; i++)
        {
            var name = r.ReadString();
            var shape = new long[r.ReadInt32()];
            for (var k = 0; k < shape.Length; k++) shape[k] = r.ReadInt64();
            var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
            var bytes = r.ReadBytes(values.Length * sizeof(float));
            if (bytes.Length != values.Length * sizeof(float)) throw new EndOfStreamException("best-weights.dat is truncated");
            Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
            if (!like.TryGetValue(name, out var target))
                throw new InvalidDataException($"best-weights.dat names '{name}', which the network does not have");
            using var scope = NewDisposeScope();
            result[name] = tensor(values, shape).to(target.dtype).to(target.device).MoveToOuterDisposeScope().DetachFromDisposeScope();
        }
        if (result.Count != like.Count)
            throw new InvalidDataException($"best-weights.dat holds {result.Count} tensors; the network has {like.Count}");
        return result;
    }
}
