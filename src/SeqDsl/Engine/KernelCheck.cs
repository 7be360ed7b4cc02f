using System.Diagnostics;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>One recurrent layer configuration of the agreement sweep.</summary>
/// <param name="Cell">lstm, gru, gru-reset-before, rnn-tanh or rnn-relu.</param>
/// <param name="Hidden">Units.</param>
/// <param name="Layers">Stacked layers in the one call (1 or 2).</param>
/// <param name="Bidirectional">Both directions, concatenated.</param>
/// <param name="Lengths">Post-padded rows with their true lengths.</param>
public sealed record KernelCase(string Cell, int Hidden, int Layers, bool Bidirectional, bool Lengths)
{
    /// <summary>The variant without the cell and size: "uni", "bi", "stacked bi + lengths", …</summary>
    public string Variant => (Layers > 1 ? "stacked " : "") + (Bidirectional ? "bi" : "uni") + (Lengths ? " + lengths" : "");

    /// <summary>The model text of the one-layer model that runs this case on <paramref name="kernel"/>.</summary>
    public string ModelText(Kernel kernel)
    {
        var cell = Cell switch
        {
            "lstm" => $"Lstm({Hidden}",
            "gru" => $"Gru({Hidden}",
            "gru-reset-before" => $"Gru({Hidden}, resetAfter: false",
            "rnn-tanh" => $"SimpleRnn({Hidden}",
            "rnn-relu" => $"SimpleRnn({Hidden}, activation: Relu",
            _ => throw new ArgumentException($"unknown cell '{Cell}'", nameof(Cell)),
        };
        var k = kernel == Kernel.Auto ? "" : $", kernel: {kernel}";
        return $"{cell}, returnSequences: true{k})" + (Layers > 1 ? $".Stack({Layers})" : "") + (Bidirectional ? ".Bidirectional()" : "");
    }
}

/// <summary>The result of one case on one path in one mode.</summary>
/// <param name="Case">The configuration.</param>
/// <param name="Path">native (libtorch's fused kernel), onednn (libtorch's oneDNN LSTM, forced), simd (SeqDsl's SIMD kernel) or loop.</param>
/// <param name="Mode">training (gradients on, training mode) or no_grad (evaluation mode, no gradients).</param>
/// <param name="MaxError">Largest |got − reference| / max(1, |reference|) over outputs and final states.</param>
/// <param name="InUse">Whether SeqDsl runs this path in this mode on this machine (a disagreement there is a failure).</param>
/// <param name="Input">Input width of the case.</param>
public sealed record KernelCheckRow(KernelCase Case, string Path, string Mode, double MaxError, bool InUse, long Input = 4)
{
    /// <summary>The tolerance of the sweep: float32 against the float64 reference.</summary>
    public const double Tolerance = 1e-5;
    /// <summary>Within <see cref="Tolerance"/>.</summary>
    public bool Agrees => MaxError <= Tolerance;
}

/// <summary>One speed probe: forward + backward of one layer on one path.</summary>
public sealed record KernelSpeedRow(string Path, string Cell, int Batch, int Time, int Input, int Hidden, double Milliseconds, bool InUse);

/// <summary>
/// Checks, on the machine at hand, that every path a recurrent layer can take computes its equations:
/// each case runs in training mode and under no_grad in evaluation mode, and its outputs and final states
/// are compared with a float64 reference written from the equations on plain arrays (libtorch is not
/// involved in the reference). Used by the test suite and by <c>seqdsl check</c>.
/// </summary>
public static class KernelCheck
{
    /// <summary>Every cell kind of the sweep.</summary>
    public static readonly IReadOnlyList<string> Cells = ["lstm", "gru", "gru-reset-before", "rnn-tanh", "rnn-relu"];

    /// <summary>Hidden sizes of the sweep: 1 to 64, 96, 128, 256 (2, 3, 4, 8, 12, 16, 48 are where oneDNN's LSTM
    /// inference was seen wrong on an AVX-512 CPU; never drop them).</summary>
    public static IReadOnlyList<int> Sizes { get; } = [.. Enumerable.Range(1, 64), 96, 128, 256];

    /// <summary>All cases for the given cells and sizes: uni/bi × one/two layers × with/without lengths.</summary>
    public static IEnumerable<KernelCase> Cases(IEnumerable<string> cells, IEnumerable<int> sizes) =>
        from cell in cells
        from h in sizes
        from layers in new[] { 1, 2 }
        from bi in new[] { false, true }
        from lengths in new[] { false, true }
        select new KernelCase(cell, h, layers, bi, lengths);

    /// <summary>
    /// Runs one case on its paths: libtorch's native fused kernel (the loop kernel for the reset-before GRU, which
    /// libtorch cannot fuse), SeqDsl's SIMD kernel, and for LSTM also libtorch's oneDNN path forced on
    /// (<paramref name="withOneDnn"/>) and the loop kernel (<paramref name="withLoop"/>), which SeqDsl falls back to
    /// when the oneDNN switch is missing. InUse marks what kernel Auto runs here on this CPU.
    /// </summary>
    public static IReadOnlyList<KernelCheckRow> Run(KernelCase c, bool withOneDnn = true, bool withLoop = true,
        int batch = 3, int time = 5, int input = 4, long seed = 1)
    {
        Backend.Initialize();
        var rows = new List<KernelCheckRow>();
        var fusedCell = c.Cell != "gru-reset-before";
        var lstm = c.Cell == "lstm";
        var switchOk = Backend.OneDnnSwitchAvailable;
        // what kernel Auto runs here: SeqDsl's SIMD kernel up to 64 units (on a CPU with AVX2 and FMA); beyond, LSTM
        // trains on oneDNN where it was checked right, else native; without the switch, LSTM runs on the loop kernel;
        // other fused cells native; the reset-before GRU on the loop kernel
        var simdInUse = Simd.SimdMath.Detected != Simd.SimdWidth.Scalar && c.Hidden <= Shapes.SimdAutoMaxUnits;
        var oneDnnTraining = lstm && switchOk && Backend.OneDnnTrainingRightFor(input, c.Hidden, c.Layers, c.Bidirectional);
        using var net = Network.Compile(ModelSyntax.Parse(c.ModelText(fusedCell ? Kernel.Fused : Kernel.Loop)),
            new CompileOptions { Input = new InputSpec(Features: input), Seed = seed });
        using var simd = Network.Compile(ModelSyntax.Parse(c.ModelText(Kernel.Simd)),
            new CompileOptions { Input = new InputSpec(Features: input), Seed = seed });
        simd.CopyParametersFrom(net);
        using var data = NewDisposeScope();
        var (x, lengths, reference) = Inputs(c, net, batch, time, input, seed);
        foreach (var mode in new[] { "training", "no_grad" })
        {
            var grad = mode == "training";
            var nativeInUse = !simdInUse && (!fusedCell || !lstm || (switchOk && !(grad && oneDnnTraining)));
            rows.Add(new KernelCheckRow(c, fusedCell ? "native" : "loop", mode,
                Backend.WithPath(fusedCell ? false : null, () => Compare(net, x, lengths, grad, reference)), nativeInUse, input));
            if (lstm && withOneDnn && switchOk)
                rows.Add(new KernelCheckRow(c, "onednn", mode, Backend.WithPath(true, () => Compare(net, x, lengths, grad, reference)),
                    InUse: !simdInUse && grad && oneDnnTraining, input));
            rows.Add(new KernelCheckRow(c, "simd", mode, Compare(simd, x, lengths, grad, reference), simdInUse, input));
        }
        if (lstm && withLoop)
        {
            using var loop = Network.Compile(ModelSyntax.Parse(c.ModelText(Kernel.Loop)),
                new CompileOptions { Input = new InputSpec(Features: input), Seed = seed });
            loop.CopyParametersFrom(net);
            foreach (var mode in new[] { "training", "no_grad" })
                rows.Add(new KernelCheckRow(c, "loop", mode, Compare(loop, x, lengths, mode == "training", reference),
                    InUse: !simdInUse && !switchOk, input));
        }
        return rows;
    }

    /// <summary>The worst disagreeing case of oneDNN's LSTM in training mode, or null when all agree: with
    /// <paramref name="shape"/> null a sweep over the sizes where its inference was seen wrong (input 4), else that one
    /// layer shape (batch 3, time 5, its real widths; with lengths). Final states with lengths come from libtorch's packed
    /// path, which never runs oneDNN; outputs from the padded path do.</summary>
    internal static KernelCheckRow? VerifyOneDnnTraining((long Input, int Hidden, int Layers, bool Bidirectional)? shape)
    {
        var cases = shape is { } s
            ? [(new KernelCase("lstm", s.Hidden, s.Layers, s.Bidirectional, true), s.Input)]
            : (from h in new[] { 1, 2, 3, 4, 8, 12, 16, 48, 64 }
               from bi in new[] { false, true }
               from lengths in new[] { false, true }
               select (new KernelCase("lstm", h, h == 8 ? 2 : 1, bi, lengths), 4L)).ToArray();
        KernelCheckRow? worst = null;
        foreach (var (c, input) in cases)
        {
            using var net = Network.Compile(ModelSyntax.Parse(c.ModelText(Kernel.Fused)),
                new CompileOptions { Input = new InputSpec(Features: (int)input), Seed = 1 });
            using var scope = NewDisposeScope();
            var (x, lengths, reference) = Inputs(c, net, 3, 5, (int)input, 1);
            var error = Backend.SimulateOneDnnWrong ? 0.25 : Backend.WithPath(true, () => Compare(net, x, lengths, true, reference));
            var row = new KernelCheckRow(c, "onednn", "training", error, true, input);
            if (!row.Agrees && (worst is null || row.MaxError > worst.MaxError)) worst = row;
        }
        return worst;
    }

    /// <summary>A seeded random batch (B, T, I), lengths T, T − 2, T − 4, … (at least 1) when the case has lengths, and the
    /// float64 reference for them; tensors live in the caller's dispose scope.</summary>
    private static (Tensor X, Tensor? Lengths, Reference.Result Reference) Inputs(KernelCase c, Network net, int batch, int time, int input, long seed)
    {
        using var generator = new TorchSharp.torch.Generator((ulong)seed + 7);
        var x = randn([batch, time, input], generator: generator);
        var lengths = c.Lengths ? tensor(Enumerable.Range(0, batch).Select(b => (long)Math.Max(1, time - 2 * b)).ToArray()) : null;
        return (x, lengths, Reference.Run(c, net, x, lengths));
    }

    /// <summary>Largest relative error of the network's outputs (both lengths paths) and final states against the reference.</summary>
    private static double Compare(Network net, Tensor x, Tensor? lengths, bool grad, Reference.Result reference)
    {
        var wasTraining = net.training;
        net.train(grad);
        try
        {
            using var scope = NewDisposeScope();
            using var _ = grad ? enable_grad() : no_grad();
            var output = net.Forward(x, new ForwardContext { Lengths = lengths });             // padded path with lengths
            var keep = new ForwardContext { Lengths = lengths, KeepStates = true };            // packed path with lengths
            var output2 = net.Forward(x, keep);
            var state = keep.FinalStates[0];
            var err = Math.Max(MaxError(output, reference.Output), MaxError(output2, reference.Output));
            err = Math.Max(err, MaxError(state.H, reference.H));
            if (reference.C is not null) err = Math.Max(err, MaxError(state.C!, reference.C));
            return err;
        }
        finally { net.train(wasTraining); }
    }

    private static double MaxError(Tensor got, double[] expected)
    {
        var g = got.detach().cpu().contiguous().to_type(ScalarType.Float64).data<double>().ToArray();
        if (g.Length != expected.Length) return double.PositiveInfinity;
        var worst = 0.0;
        for (var i = 0; i < g.Length; i++)
        {
            var e = Math.Abs(g[i] - expected[i]) / Math.Max(1, Math.Abs(expected[i]));
            if (!(e <= worst)) worst = double.IsNaN(e) ? double.PositiveInfinity : e;
        }
        return worst;
    }

    /// <summary>
    /// Times forward + backward (training mode, gradients on) of one layer on each path at a few sizes (median of
    /// <paramref name="repeats"/>), LSTM on native, oneDNN, loop and SIMD; GRU and SimpleRnn on native and SIMD.
    /// </summary>
    public static IReadOnlyList<KernelSpeedRow> Probe(int repeats = 5)
    {
        Backend.Initialize();
        var rows = new List<KernelSpeedRow>();
        foreach (var (b, t, i, h) in new[] { (64, 50, 32, 32), (32, 35, 256, 256), (32, 20, 512, 512) })
        {
            var switchOk = Backend.OneDnnSwitchAvailable;
            var oneDnn = switchOk && Backend.OneDnnTrainingRightFor(i, h, 1, false);
            var simd = Simd.SimdMath.Detected != Simd.SimdWidth.Scalar && h <= Shapes.SimdAutoMaxUnits;
            rows.Add(Time("native", "lstm", b, t, i, h, $"Lstm({h}, returnSequences: true, kernel: Fused)", false, repeats, inUse: !simd && switchOk && !oneDnn));
            if (switchOk)
                rows.Add(Time("onednn", "lstm", b, t, i, h, $"Lstm({h}, returnSequences: true, kernel: Fused)", true, repeats, inUse: !simd && oneDnn));
            rows.Add(Time("loop", "lstm", b, t, i, h, $"Lstm({h}, returnSequences: true, kernel: Loop)", null, repeats, inUse: !simd && !switchOk));
            rows.Add(Time("simd", "lstm", b, t, i, h, $"Lstm({h}, returnSequences: true, kernel: Simd)", null, repeats, inUse: simd));
            // beyond 64 units Auto measures GRU and SimpleRnn layers on this CPU (KernelProbe; cached)
            bool Measured(CellSpec cell) =>
                KernelProbe.Applies(new RecurrentLayer(cell, h), cpu: true) && KernelProbe.Choose(new RecurrentLayer(cell, h), i, measure: true, null)?.Kernel == Kernel.Simd;
            var gruSimd = simd || Measured(new GruCell());
            var rnnSimd = simd || Measured(new RnnCell());
            rows.Add(Time("native", "gru", b, t, i, h, $"Gru({h}, returnSequences: true, kernel: Fused)", null, repeats, inUse: !gruSimd));
            rows.Add(Time("simd", "gru", b, t, i, h, $"Gru({h}, returnSequences: true, kernel: Simd)", null, repeats, inUse: gruSimd));
            rows.Add(Time("native", "rnn-tanh", b, t, i, h, $"SimpleRnn({h}, returnSequences: true, kernel: Fused)", null, repeats, inUse: !rnnSimd));
            rows.Add(Time("simd", "rnn-tanh", b, t, i, h, $"SimpleRnn({h}, returnSequences: true, kernel: Simd)", null, repeats, inUse: rnnSimd));
        }
        return rows;
    }

    private static KernelSpeedRow Time(string path, string cell, int b, int t, int i, int h, string model, bool? oneDnn, int repeats, bool inUse)
    {
        using var net = Network.Compile(ModelSyntax.Parse(model), new CompileOptions { Input = new InputSpec(Features: i), Seed = 1 });
        using var x = randn(b, t, i);
        var ms = new List<double>();
        for (var r = 0; r < repeats + 1; r++)
        {
            using var scope = NewDisposeScope();
            var sw = Stopwatch.StartNew();
            Backend.WithPath(oneDnn, () =>
            {
                net.forward(x).sum().backward();
                return 0;
            });
            if (r > 0) ms.Add(sw.Elapsed.TotalMilliseconds); // the first call warms up
        }
        ms.Sort();
        return new KernelSpeedRow(path, cell, b, t, i, h, ms[ms.Count / 2], inUse);
    }

    /// <summary>The float64 reference: the cells' equations on plain arrays, with libtorch's parameter layout.</summary>
    internal static class Reference
    {
        internal sealed record Result(double[] Output, double[] H, double[]? C);

        /// <summary>Outputs (B, T, D·H) with zeros at padded steps, final h and c (L·D, B, H) after each sequence's own last step.</summary>
        public static Result Run(KernelCase c, Network net, Tensor x, Tensor? lengths)
        {
            var B = (int)x.shape[0];
            var T = (int)x.shape[1];
            var H = c.Hidden;
            var D = c.Bidirectional ? 2 : 1;
            var p = net.named_parameters().ToDictionary(q => q.name, q => Values(q.parameter));
            var xs = Values(x);
            var lens = lengths is null ? Enumerable.Repeat(T, B).ToArray() : Values(lengths).Select(v => (int)v).ToArray();
            var width = (int)x.shape[2];
            var input = new double[B][][];
            for (var b = 0; b < B; b++)
            {
                input[b] = new double[T][];
                for (var t = 0; t < T; t++) input[b][t] = xs.AsSpan((b * T + t) * width, width).ToArray();
            }
            var hFinal = new double[c.Layers * D * B * H];
            double[]? cFinal = c.Cell == "lstm" ? new double[c.Layers * D * B * H] : null;
            for (var l = 0; l < c.Layers; l++)
            {
                var next = new double[B][][];
                for (var b = 0; b < B; b++)
                {
                    next[b] = new double[T][];
                    for (var t = 0; t < T; t++) next[b][t] = new double[D * H];
                }
                for (var d = 0; d < D; d++)
                {
                    var sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                    var w = new Weights(p[$"layers.0.rnn.weight_ih{sfx}"], p[$"layers.0.rnn.weight_hh{sfx}"],
                        p.GetValueOrDefault($"layers.0.rnn.bias_ih{sfx}"), p.GetValueOrDefault($"layers.0.rnn.bias_hh{sfx}"),
                        H, input[0][0].Length);
                    for (var b = 0; b < B; b++)
                    {
                        var h = new double[H];
                        var cell = new double[H];
                        for (var k = 0; k < lens[b]; k++)
                        {
                            var t = d == 0 ? k : lens[b] - 1 - k;
                            (h, cell) = Step(c.Cell, w, input[b][t], h, cell);
                            Array.Copy(h, 0, next[b][t], d * H, H);
                        }
                        Array.Copy(h, 0, hFinal, ((l * D + d) * B + b) * H, H);
                        if (cFinal is not null) Array.Copy(cell, 0, cFinal, ((l * D + d) * B + b) * H, H);
                    }
                }
                input = next;
            }
            var output = new double[B * T * D * H];
            for (var b = 0; b < B; b++)
                for (var t = 0; t < T; t++)
                    Array.Copy(input[b][t], 0, output, (b * T + t) * D * H, D * H);
            return new Result(output, hFinal, cFinal);
        }

        private sealed record Weights(double[] Wih, double[] Whh, double[]? Bih, double[]? Bhh, int H, int I)
        {
            /// <summary>Row r of W_ih x + b_ih.</summary>
            public double X(int r, double[] x)
            {
                var s = Bih?[r] ?? 0;
                for (var j = 0; j < I; j++) s += Wih[r * I + j] * x[j];
                return s;
            }

            /// <summary>Row r of W_hh h + b_hh.</summary>
            public double Hh(int r, double[] h)
            {
                var s = Bhh?[r] ?? 0;
                for (var j = 0; j < H; j++) s += Whh[r * H + j] * h[j];
                return s;
            }
        }

        private static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));

        private static (double[] h, double[] c) Step(string cell, Weights w, double[] x, double[] h, double[] c)
        {
            var H = w.H;
            var hNew = new double[H];
            var cNew = new double[H];
            switch (cell)
            {
                case "lstm": // gates i, f, g, o
                    for (var k = 0; k < H; k++)
                    {
                        double Gate(int g) => w.X(g * H + k, x) + w.Hh(g * H + k, h);
                        var i = Sigmoid(Gate(0));
                        var f = Sigmoid(Gate(1));
                        var g = Math.Tanh(Gate(2));
                        var o = Sigmoid(Gate(3));
                        cNew[k] = f * c[k] + i * g;
                        hNew[k] = o * Math.Tanh(cNew[k]);
                    }
                    return (hNew, cNew);
                case "gru": // reset-after, gates r, z, n: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
                    for (var k = 0; k < H; k++)
                    {
                        var r = Sigmoid(w.X(k, x) + w.Hh(k, h));
                        var z = Sigmoid(w.X(H + k, x) + w.Hh(H + k, h));
                        var n = Math.Tanh(w.X(2 * H + k, x) + r * w.Hh(2 * H + k, h));
                        hNew[k] = (1 - z) * n + z * h[k];
                    }
                    return (hNew, cNew);
                case "gru-reset-before": // n = tanh(W_in x + b_in + b_hn + W_hn (r ⊙ h))
                {
                    var r = new double[H];
                    var z = new double[H];
                    for (var k = 0; k < H; k++)
                    {
                        r[k] = Sigmoid(w.X(k, x) + w.Hh(k, h));
                        z[k] = Sigmoid(w.X(H + k, x) + w.Hh(H + k, h));
                    }
                    var rh = new double[H];
                    for (var k = 0; k < H; k++) rh[k] = r[k] * h[k];
                    for (var k = 0; k < H; k++)
                    {
                        var n = Math.Tanh(w.X(2 * H + k, x) + w.Hh(2 * H + k, rh));
                        hNew[k] = z[k] * h[k] + (1 - z[k]) * n;
                    }
                    return (hNew, cNew);
                }
                default: // rnn-tanh, rnn-relu
                    for (var k = 0; k < H; k++)
                    {
                        var v = w.X(k, x) + w.Hh(k, h);
                        hNew[k] = cell == "rnn-relu" ? Math.Max(0, v) : Math.Tanh(v);
                    }
                    return (hNew, cNew);
            }
        }

        private static double[] Values(Tensor t) =>
            t.detach().cpu().contiguous().to_type(ScalarType.Float64).data<double>().ToArray();
    }
}
