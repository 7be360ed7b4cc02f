using System.Collections.Immutable;
using System.Text.RegularExpressions;
using SeqDsl.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>
/// A compiled model: TorchSharp modules built from a <see cref="ModelSpec"/>, owning every tensor
/// it creates (dispose it). Recurrent layers run on libtorch's fused kernels; parameter names
/// follow libtorch (<c>layers.1.rnn.weight_ih_l0</c>, gate order i,f,g,o for LSTM and r,z,n for GRU).
/// </summary>
public sealed class Network : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<LayerModule> _layers;
    private readonly HashSet<string> _heldAtZero = [];

    /// <summary>The spec this network was compiled from.</summary>
    public ModelSpec Spec { get; }
    /// <summary>The options it was compiled with.</summary>
    public CompileOptions Options { get; }
    /// <summary>The spec's summary under the compile convention; <see cref="ParameterCount"/> equals its total.</summary>
    public ModelSummary Summary { get; }

    /// <summary>The kernel taken by each layer whose kernel Auto decides by measuring on this CPU (<see cref="KernelProbe"/>:
    /// measured now, kept from an earlier run, or libtorch's where no choice could be made), by layer index: what a resumed
    /// run passes back in <see cref="CompileOptions.KernelChoices"/>.</summary>
    public IReadOnlyDictionary<int, Kernel> MeasuredKernels { get; private init; } = new Dictionary<int, Kernel>();
    /// <summary>The device the weights live on.</summary>
    public Device Device { get; }

    private Network(ModelSpec spec, CompileOptions options, ModelSummary summary, Device device) : base("Network")
    {
        Spec = spec;
        Options = options;
        Summary = summary;
        Device = device;
        _layers = new ModuleList<LayerModule>();
    }

    /// <summary>Builds the network for a spec.</summary>
    /// <exception cref="SeqDslException">The spec needs a size the options do not give, or a kernel that does not exist yet.</exception>
    public static Network Compile(ModelSpec spec, CompileOptions? options = null)
    {
        options ??= new CompileOptions();
        Backend.Initialize();
        var summary = spec.Summary(options.Input, options.Convention);
        var device = options.TorchDevice();
        if (device.type == DeviceType.CPU) CheckMemory(spec, summary, 1, "its weights");
        long InputWidth(int i) => i == 0 ? options.Input.Features ?? 0 : summary.Rows[i - 1].Output.Features;
        // Auto's measured choice for wide GRU and SimpleRnn layers, made before the seed is set (the probe compiles
        // seeded networks of its own); the summary shows the kernel taken
        var decided = new Dictionary<int, (KernelPlan Plan, string Why)>();
        for (var i = 0; i < spec.Layers.Length; i++)
        {
            if (spec.Layers[i] is not RecurrentLayer r || !KernelProbe.Applies(r, device.type == DeviceType.CPU)) continue;
            var label = $"layer {i} ({r.Kind})";
            if (options.KernelChoices is { } earlier && earlier.TryGetValue(i, out var k))
                decided[i] = k == Kernel.Simd
                    ? (new KernelPlan(Kernel.Simd, "as the run it continues took"), "")
                    : (Shapes.PlanLibtorch(r), " (Auto: libtorch's kernel, as the run it continues took)");
            else if (KernelProbe.Choose(r, InputWidth(i), options.MeasureKernels, options.Diagnostics, label) is { } probe)
                decided[i] = probe.Kernel == Kernel.Simd
                    ? (new KernelPlan(Kernel.Simd, "measured faster on this CPU"), $" — {probe.Describe()}")
                    : (Shapes.PlanLibtorch(r), $" (Auto: libtorch's kernel, {probe.Describe()})");
            else
                decided[i] = (Shapes.PlanLibtorch(r), " (Auto: libtorch's kernel, not measured)");
        }
        if (decided.Count > 0)
            summary = summary with
            {
                Rows = summary.Rows.Select(row => decided.TryGetValue(row.Index, out var d) ? row with { Kernel = d.Plan } : row).ToImmutableArray(),
            };
        var net = new Network(spec, options, summary, device)
        {
            MeasuredKernels = decided.ToDictionary(d => d.Key, d => d.Value.Plan.Kernel),
        };
        // oneDNN's training path is checked (once per process, and per LSTM shape) before the seed is set: the check
        // compiles seeded networks of its own, and this network's weights must not depend on whether it ran
        if (device.type == DeviceType.CPU && Backend.OneDnnSwitchAvailable)
            for (var i = 0; i < spec.Layers.Length; i++)
                if (spec.Layers[i] is RecurrentLayer { Cell: LstmCell } r && Shapes.PlanKernel(r) is { Kernel: Kernel.Fused, Path: FusedPath.OneDnn })
                    Backend.OneDnnTrainingRightFor(InputWidth(i), r.Units, r.Layers, r.Bidirectional is not null);
        torch.manual_seed(options.Seed);
        for (var i = 0; i < spec.Layers.Length; i++)
        {
            var layer = spec.Layers[i];
            var width = InputWidth(i);
            LayerModule module = layer switch
            {
                EmbedLayer e => CompileEmbed(e, i, summary, options),
                RecurrentLayer r => net.CompileRecurrent(r, i, width, spec, options, device, decided.TryGetValue(i, out var d) ? d : null),
                DenseLayer d => new DenseModule(d, width),
                DropoutLayer d => new DropoutModule(d.Rate),
                SpatialDropoutLayer s => new SpatialDropoutModule(s.Rate),
                AttentionLayer a => new AttentionModule(width, a.Units ?? width),
                _ => throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, "No compiler for this layer.", layer.GetType().Name, "a SeqDsl layer"),
            };
            net._layers.Add(module);
        }
        net.register_module("layers", net._layers);
        if (options.Convention == Convention.Keras) net.KerasInitialisation();
        net.to(device);
        return net;
    }

    private static LayerModule CompileEmbed(EmbedLayer e, int index, ModelSummary summary, CompileOptions options)
    {
        var vocab = summary.Rows[index].Params / e.Dim;
        var embedding = nn.Embedding(vocab, e.Dim, padding_idx: e.Padding);
        if (e.Pretrained is string path)
        {
            var vocabulary = options.Vocabulary ?? throw SeqDslException.ForLayer(index, e, ErrorKind.Spec,
                "Pretrained vectors are matched to the vocabulary, but none was given.",
                "no vocabulary", "CompileOptions.Vocabulary (word → index)");
            var report = Glove.LoadInto(embedding.weight!, path, vocabulary, e.Padding);
            options.Diagnostics?.Invoke($"layer {index} (Embed): {report}");
        }
        if (!e.Trainable) embedding.weight!.requires_grad_(false);
        return new EmbedModule(embedding, e.Padding);
    }

    private LayerModule CompileRecurrent(RecurrentLayer r, int index, long width, ModelSpec spec, CompileOptions options, Device device,
        (KernelPlan Plan, string Why)? decided)
    {
        var plan = decided?.Plan ?? Shapes.PlanKernel(r);
        var bi = r.Bidirectional is not null;
        var cpu = device.type == DeviceType.CPU;
        string? simdFallback = null;
        if (plan.Kernel == Kernel.Simd && r.Kernel == Kernel.Auto && (!cpu || Simd.SimdMath.Detected == Simd.SimdWidth.Scalar))
        {
            simdFallback = cpu ? "this CPU has no AVX2 with FMA for SeqDsl's SIMD kernel" : $"SeqDsl's SIMD kernel runs on the CPU, not {device.type}";
            plan = Shapes.PlanLibtorch(r);
        }
        if (plan.Kernel == Kernel.Simd && r.Kernel == Kernel.Simd && cpu && Simd.SimdMath.Detected == Simd.SimdWidth.Scalar)
            options.Diagnostics?.Invoke($"layer {index} ({r.Kind}): WARNING kernel Simd was requested, but this CPU has no AVX2 with FMA; it runs on plain C# loops, slowly");
        if (plan.Kernel == Kernel.Fused && r.Cell is LstmCell && cpu && !Backend.OneDnnSwitchAvailable)
        {
            // without the switch libtorch may run oneDNN's LSTM, wrong under no_grad on some CPUs
            if (r.Kernel == Kernel.Auto)
                plan = new KernelPlan(Kernel.Loop, "libtorch's oneDNN switch is unavailable, so its fused LSTM may take a path known to be wrong on some CPUs");
            else
                options.Diagnostics?.Invoke($"layer {index} ({r.Kind}): WARNING kernel Fused was requested, but libtorch's oneDNN switch is unavailable " +
                    $"({Backend.SwitchProblem}); its LSTM may be wrong under no_grad on this CPU — run `seqdsl check`");
        }
        // oneDNN is a CPU path, used only where its training results were checked right at this layer's widths
        if (plan.Path == FusedPath.OneDnn && (!cpu || !Backend.OneDnnTrainingRightFor(width, r.Units, r.Layers, bi)))
            plan = plan with { Path = FusedPath.Native };
        var fallback = r.Kernel == Kernel.Auto && plan.Kernel == Kernel.Loop && simdFallback is null;
        var taken = plan is { Kernel: Kernel.Fused, Path: FusedPath.OneDnn } ? "fused (oneDNN in training)" : plan.ToString(); // decided, not planned
        options.Diagnostics?.Invoke($"layer {index} ({r.Kind}): kernel {taken}" + (fallback ? " (fallback from Auto)" : "")
            + (simdFallback is not null ? $" (Auto: {simdFallback})" : "")
            + (decided?.Why ?? "")
            + (plan.Kernel == Kernel.Fused && cpu ? $" — {plan.PathReason}" : "")
            + (plan.Kernel == Kernel.Fused && cpu && r.Cell is LstmCell && plan.Path == FusedPath.Native && Backend.OneDnnTrainingProblem is string why
                ? $"; not oneDNN: {why}" : ""));
        var bias = r.Cell.EffectiveBias(options.Convention);
        var hasBias = bias != Bias.None;
        if (plan.Kernel == Kernel.Simd && !cpu)
        {
            // a model trained with kernel: Simd loads on a GPU too: the weights are libtorch's layout either way
            options.Diagnostics?.Invoke($"layer {index} ({r.Kind}): WARNING kernel Simd is SeqDsl's CPU kernel; on {device.type} the layer runs on libtorch's kernels");
            plan = Shapes.PlanLibtorch(r with { Kernel = Kernel.Auto });
        }
        nn.Module rnn = plan.Kernel is Kernel.Loop or Kernel.Simd
            ? new LoopRnn(r.Cell, width, r.Units, r.Layers, bi, r.Dropout, bias,
                r.Cell is UserCell user ? UserCells.Kernel(user, index, r) : null, simd: plan.Kernel == Kernel.Simd)
            : r.Cell switch
        {
            LstmCell => nn.LSTM(width, r.Units, r.Layers, hasBias, batchFirst: true, dropout: r.Dropout, bidirectional: bi),
            GruCell => nn.GRU(width, r.Units, r.Layers, hasBias, batchFirst: true, dropout: r.Dropout, bidirectional: bi),
            RnnCell c => nn.RNN(width, r.Units, r.Layers,
                c.Activation == Activation.Relu ? nn.NonLinearities.ReLU : nn.NonLinearities.Tanh,
                hasBias, batchFirst: true, dropout: r.Dropout, bidirectional: bi),
            _ => throw SeqDslException.ForLayer(index, r, ErrorKind.Spec, "No fused kernel for this cell.", r.Cell.Name, "Lstm, Gru or SimpleRnn"),
        };
        // Keras keeps one bias vector (GRU reset-after keeps two): the fused kernel's second one is held at zero, untrained
        var singleBias = bias == Bias.Keras && r.Cell is not GruCell { ResetAfter: true };
        using (no_grad())
        {
            foreach (var (name, p) in rnn.named_parameters())
            {
                if (!name.StartsWith("bias_", StringComparison.Ordinal)) continue;
                if (bias == Bias.Keras) p.zero_(); // Keras initialises biases to zero
                if (singleBias && name.StartsWith("bias_hh", StringComparison.Ordinal))
                {
                    p.requires_grad_(false);
                    _heldAtZero.Add($"layers.{index}.rnn.{name}");
                }
                if (r.Cell is LstmCell lstm && (lstm.ForgetBias is not null || bias == Bias.Keras))
                {
                    var forget = p.narrow(0, r.Units, r.Units); // gate order i, f, g, o
                    using var value = (name.StartsWith("bias_ih", StringComparison.Ordinal) ? lstm.ForgetBias ?? 1.0 : 0.0).ToScalar();
                    forget.fill_(value);
                }
            }
        }
        return new RecurrentModule(r, index, Shapes.ReturnsSequences(spec, index), rnn, plan.Path, options.Diagnostics);
    }

    /// <summary>
    /// Keras's default initialisers, so that a model declared under the Keras convention starts where
    /// the Keras book's did: embeddings U(−0.05, 0.05), kernels Glorot-uniform, recurrent kernels
    /// orthogonal over the whole recurrent kernel of all gates (Keras's (H, G·H) matrix), biases zero (LSTM forget gate 1,
    /// set when compiling the cell).
    /// Pretrained embedding rows and the padding row are left as loaded.
    /// </summary>
    private void KerasInitialisation()
    {
        using var _ = no_grad();
        for (var i = 0; i < _layers.Count; i++)
        {
            switch (_layers[i])
            {
                case EmbedModule e when Spec.Layers[i] is EmbedLayer { Pretrained: null } spec:
                    nn.init.uniform_(e.Embedding.weight!, -0.05, 0.05);
                    if (spec.Padding is int pad) e.Embedding.weight![pad].zero_();
                    break;
                case DenseModule or AttentionModule:
                    foreach (var (name, p) in _layers[i].named_parameters())
                        if (name.EndsWith("bias", StringComparison.Ordinal)) p.zero_();
                        else nn.init.xavier_uniform_(p);
                    break;
                case RecurrentModule r:
                    foreach (var (name, p) in r.Rnn.named_parameters())
                    {
                        if (name.StartsWith("weight_ih", StringComparison.Ordinal)) nn.init.xavier_uniform_(p);
                        else if (name.StartsWith("weight_hh", StringComparison.Ordinal)) new Init.Orthogonal().Apply(p, name);
                    }
                    break;
            }
        }
    }

    /// <summary>Parameters as the spec counts them: every parameter except biases held at zero
    /// by the Keras layout. Equals <see cref="ModelSummary.Total"/>.</summary>
    public long ParameterCount =>
        named_parameters().Where(p => !_heldAtZero.Contains(p.name)).Sum(p => p.parameter.numel());

    /// <summary>The model text and its parameter count, e.g. "Lstm(20).Dense(1) (1,781 parameters)".</summary>
    public override string ToString() =>
        $"{Spec} ({ParameterCount.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} parameters)";

    /// <summary>The parameters training updates.</summary>
    public IEnumerable<Parameter> TrainableParameters => parameters().Where(p => p.requires_grad);

    /// <summary>The trainable embedding tables (their gradients are sparse rows under Keras's optimizer rules).</summary>
    public IEnumerable<Parameter> EmbeddingTables =>
        _layers.OfType<EmbedModule>().Select(e => e.Embedding.weight!).Where(w => w.requires_grad);

    /// <summary>Names of the parameters held at zero (Keras single-bias layout on a fused kernel).</summary>
    public IReadOnlySet<string> HeldAtZero => _heldAtZero;

    /// <summary>Runs the network on a batch whose sequences all fill the time axis.</summary>
    public override Tensor forward(Tensor input) => Forward(input, new ForwardContext());

    /// <summary>Runs the network; <paramref name="lengths"/> gives each sequence's true length (post-padded batches).</summary>
    public Tensor Forward(Tensor input, Tensor? lengths) => Forward(input, new ForwardContext { Lengths = lengths });

    /// <summary>Runs the network with initial states, lengths, and outputs beyond the prediction.</summary>
    public Tensor Forward(Tensor input, ForwardContext ctx)
    {
        CheckInput(input, ctx.Lengths);
        return RunLayers(input, _layers.Count, ctx);
    }

    /// <summary>The first <paramref name="count"/> layers; an Embed (and a SpatialDropout after it) followed by a
    /// recurrent layer on the SIMD kernel runs as that layer's input, looked up by its kernel, when it can
    /// (<see cref="EmbedModule.TryForwardInto"/>); else an Embed followed by a SpatialDropout as one lookup
    /// (<see cref="EmbedModule.TryForwardDropped"/>).</summary>
    private Tensor RunLayers(Tensor x, int count, ForwardContext ctx)
    {
        for (var i = 0; i < count; i++)
        {
            if (_layers[i] is EmbedModule e)
            {
                var s = i + 1 < count ? _layers[i + 1] as SpatialDropoutModule : null;
                var next = s is null ? i + 1 : i + 2;
                if (next < count && _layers[next] is RecurrentModule r && e.TryForwardInto(x, s, r, ctx, out var z))
                {
                    x = z;
                    i = next;
                    continue;
                }
                if (s is not null && e.TryForwardDropped(x, s, out var y))
                {
                    x = y;
                    i++;
                    continue;
                }
            }
            x = _layers[i].Forward(x, ctx);
        }
        return x;
    }

    /// <summary>The final Dense layer's pre-activation output, when the model ends in Dense.</summary>
    internal Tensor? ForwardLogits(Tensor input, ForwardContext ctx)
    {
        if (_layers.Count == 0 || _layers[^1] is not DenseModule last) return null;
        CheckInput(input, ctx.Lengths);
        return last.Logits(RunLayers(input, _layers.Count - 1, ctx));
    }

    /// <summary>Refuses, before it is allocated, what <paramref name="copies"/> float32 copies of the model's parameters need
    /// when that exceeds the memory available here: at compile the weights (one copy), before training the gradients and
    /// two optimizer moments (three more). Activations come on top and are not estimated.</summary>
    internal static void CheckMemory(ModelSpec spec, ModelSummary summary, int copies, string what)
    {
        var need = (double)summary.Total * sizeof(float) * copies;
        var available = AvailableMemory();
        if (need > available)
            throw new SeqDslException(ErrorKind.Spec,
                $"{spec} has {ModelSummary.Count(summary.Total)} parameters: {what} alone need about "
                + $"{need / (1L << 30):N1} GiB, more than the {available / (1L << 30):N1} GiB available here.")
            {
                Received = $"{ModelSummary.Count(summary.Total)} parameters",
                Expected = $"at most about {ModelSummary.Count((long)(available / (sizeof(float) * copies)))} parameters on this machine",
            };
    }

    /// <summary>A rough upper estimate of the float32 activations one training step keeps for the backward pass, for
    /// batches of <paramref name="rows"/> sequences of <paramref name="steps"/> steps: per recurrent layer its gate
    /// pre-activations and states at every step (gates + 2 per unit, both directions, every stacked layer), per other
    /// layer its output; doubled for their gradients.</summary>
    public double ActivationBytes(int rows, long steps)
    {
        double values = 0;
        for (var i = 0; i < Spec.Layers.Length; i++)
        {
            var outSteps = Summary.Rows[i].Output.Sequence ? steps : 1;
            values += Spec.Layers[i] switch
            {
                RecurrentLayer r => (double)steps * r.Directions * r.Layers * r.Units
                    * ((r.Cell switch { LstmCell => 4, GruCell => 3, _ => 1 }) + 2),
                _ => (double)outSteps * Summary.Rows[i].Output.Features,
            };
        }
        return values * rows * sizeof(float) * 2;
    }

    /// <summary>Refuses to train when the gradients, optimizer state and one step's activations
    /// (<see cref="ActivationBytes"/>) exceed the memory available here, with the estimate in the message.</summary>
    internal void CheckTrainingMemory(int rows, long steps)
    {
        if (Device.type != DeviceType.CPU) return;
        var state = (double)Summary.Total * sizeof(float) * 3;
        var activations = ActivationBytes(rows, steps);
        var available = AvailableMemory();
        if (state + activations > available)
            throw new SeqDslException(ErrorKind.Spec,
                $"Training {Spec} on batches of {rows} × {steps} steps needs about {(state + activations) / (1L << 30):N1} GiB "
                + $"(gradients and optimizer state {state / (1L << 30):N1}, activations {activations / (1L << 30):N1}), more than the "
                + $"{available / (1L << 30):N1} GiB available here.")
            { Received = $"batch {rows}, {steps} steps", Expected = "a smaller batch size, shorter sequences or a smaller model" };
    }

    /// <summary>Memory the process can still use: the smaller of Linux's MemAvailable and what the GC may commit (which
    /// follows a container's memory limit).</summary>
    internal static double AvailableMemory()
    {
        double gc = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        try
        {
            if (File.Exists("/proc/meminfo"))
                foreach (var line in File.ReadLines("/proc/meminfo"))
                    if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                        && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], out var kb))
                        return Math.Min(kb * 1024.0, gc);
        }
        catch (IOException)
        {
        }
        return gc;
    }

    /// <summary>The width of the one-hot vectors token ids become before this network reads them, or null when it reads
    /// ids itself (it starts with Embed; <see cref="ModelSpec.ReadsTokenIds"/>).</summary>
    public int? OneHotWidth => Spec.ReadsTokenIds ? null : Options.Input.Features;

    /// <summary>Token ids as this network reads them: the ids, or their one-hot vectors (<see cref="OneHotWidth"/>).</summary>
    public Tensor TokenInput(Tensor ids) => OneHotWidth is int v ? Tensors.OneHot(ids, v) : ids;

    /// <summary>The activation of the final Dense layer (Linear when the model does not end in Dense).</summary>
    public Activation OutputActivation => _layers.Count > 0 && _layers[^1] is DenseModule d ? d.Activation : Activation.Linear;

    private void CheckInput(Tensor x, Tensor? lengths)
    {
        var first = Spec.Layers[0];
        string Got() => $"{x.dtype} tensor [{string.Join(", ", x.shape)}]";
        if (first is EmbedLayer)
        {
            if (x.dim() != 2 || x.dtype != ScalarType.Int64)
                throw SeqDslException.ForLayer(0, first, ErrorKind.Shape, "Embed reads token ids.", Got(), "Int64 tensor [batch, time]");
        }
        else
        {
            var f = Options.Input.Features ?? 0;
            if (x.dim() != 3 || x.shape[2] != f || !x.is_floating_point())
                throw SeqDslException.ForLayer(0, first, ErrorKind.Shape, "The model reads feature vectors per time step.",
                    Got(), $"floating tensor [batch, time, {f}]");
        }
        if (lengths is not null)
        {
            if (lengths.dim() != 1 || lengths.shape[0] != x.shape[0] || lengths.dtype != ScalarType.Int64 || lengths.device_type != DeviceType.CPU)
                throw new SeqDslException(ErrorKind.Shape, "Lengths must be one Int64 CPU value per sequence.")
                { Received = $"{lengths.dtype} {lengths.device_type} tensor [{string.Join(", ", lengths.shape)}]", Expected = $"Int64 CPU tensor [{x.shape[0]}]" };
            var min = lengths.min().item<long>();
            var max = lengths.max().item<long>();
            if (min < 1 || max > x.shape[1])
                throw new SeqDslException(ErrorKind.Shape, "Every length must lie between 1 and the padded time axis.")
                { Received = $"lengths from {min} to {max}", Expected = $"1 ≤ length ≤ {x.shape[1]}" };
        }
    }

    /// <summary>Applies an initialiser to every parameter whose name matches a pattern (<c>*</c> wildcards,
    /// e.g. <c>layers.1.rnn.weight_hh_*</c>); returns how many parameters it touched.</summary>
    public int Initialize(string pattern, Init init)
    {
        var rx = new Regex("^" + Regex.Escape(pattern).Replace("\\*", ".*") + "$");
        var n = 0;
        foreach (var (name, p) in named_parameters())
        {
            if (!rx.IsMatch(name) || _heldAtZero.Contains(name)) continue;
            init.Apply(p, name);
            n++;
        }
        if (n == 0)
            throw new SeqDslException(ErrorKind.Spec, $"No parameter matches '{pattern}'.")
            { Received = pattern, Expected = "one of " + string.Join(", ", named_parameters().Select(p => p.name)) };
        return n;
    }

    /// <summary>Copies the values of every parameter of <paramref name="source"/> whose name this network also has
    /// (e.g. a fused layer into its loop-kernel twin); returns how many were copied.</summary>
    public int CopyParametersFrom(Network source)
    {
        var values = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var _ = no_grad();
        var n = 0;
        foreach (var (name, p) in named_parameters())
            if (values.TryGetValue(name, out var v)) { p.copy_(v); n++; }
        return n;
    }

    /// <summary>Sets a parameter's values explicitly (row-major), e.g. seed 000's counting RNN at U = −2, W = 0.</summary>
    public void Assign(string name, params float[] values)
    {
        var p = named_parameters().FirstOrDefault(q => q.name == name).parameter
            ?? throw new SeqDslException(ErrorKind.Spec, $"No parameter named '{name}'.")
            { Received = name, Expected = "one of " + string.Join(", ", named_parameters().Select(q => q.name)) };
        if (p.numel() != values.Length)
            throw new SeqDslException(ErrorKind.Shape, $"Parameter '{name}' has {p.numel()} values.")
            { Received = $"{values.Length} values", Expected = $"{p.numel()} values (shape [{string.Join(", ", p.shape)}])" };
        using var _ = no_grad();
        using var src = tensor(values, p.shape, dtype: p.dtype, device: p.device);
        p.copy_(src);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _layers.Dispose();
        base.Dispose(disposing);
    }
}
