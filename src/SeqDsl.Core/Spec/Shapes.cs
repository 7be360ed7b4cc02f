using System.Collections.Immutable;
using System.Globalization;
using System.Text;

namespace SeqDsl.Spec;

/// <summary>The shape of a layer's output for one batch: (batch, time, features) or (batch, features).</summary>
/// <param name="Sequence">True when the time axis is present.</param>
/// <param name="Time">Sequence length when known.</param>
/// <param name="Features">Width of the last axis.</param>
public sealed record Shape(bool Sequence, int? Time, long Features)
{
    /// <summary>Keras-style text: (None, 200, 32), (None, None, 32) or (None, 64).</summary>
    public override string ToString() =>
        Sequence ? $"(None, {(Time is int t ? t.ToString() : "None")}, {Features})" : $"(None, {Features})";
}

/// <summary>How a recurrent layer will run, decided on the spec alone.</summary>
/// <param name="Kernel">Fused, Loop or Simd.</param>
/// <param name="Reason">Why the loop was chosen (requested, or the fused kernel cannot express the cell).</param>
/// <param name="Path">For a fused layer on the CPU, which libtorch implementation runs it.</param>
public sealed record KernelPlan(Kernel Kernel, string? Reason, FusedPath Path = FusedPath.Native)
{
    /// <summary>"fused", "fused (oneDNN in training if verified)", "loop (requested)" or "loop: reason". The spec
    /// alone cannot know the CPU: the compiled network's diagnostics say which path each layer took.</summary>
    public override string ToString() => Kernel switch
    {
        Kernel.Fused when Path == FusedPath.OneDnn => "fused (oneDNN in training if verified)",
        Kernel.Fused => "fused",
        Kernel.Simd => Reason is null or "requested" ? "simd" : $"simd (auto: {Reason})",
        _ => Reason is null ? "loop" : $"loop: {Reason}",
    };

    /// <summary>Why the fused path was chosen, for diagnostics.</summary>
    public string PathReason => Path == FusedPath.OneDnn
        ? "oneDNN's LSTM for training-mode forward passes (measured faster; checked against the reference on this CPU at this layer's widths); libtorch's native LSTM without gradients (oneDNN's inference is wrong for some sizes on AVX-512 CPUs)"
        : "libtorch's native kernel";
}

/// <summary>Which libtorch implementation runs a fused layer on the CPU.</summary>
public enum FusedPath
{
    /// <summary>libtorch's own kernel (matrix products and fused pointwise ops per step).</summary>
    Native,
    /// <summary>oneDNN's RNN primitive, for LSTM forward passes with gradients only; without gradients the native kernel.</summary>
    OneDnn,
}

/// <summary>One row of a summary.</summary>
public sealed record SummaryRow(int Index, string Layer, Shape Output, long Params, long TrainableParams, KernelPlan? Kernel);

/// <summary>Per-layer output shapes and parameter counts, and their totals.</summary>
public sealed record ModelSummary(ImmutableArray<SummaryRow> Rows, Convention Convention)
{
    /// <summary>All parameters.</summary>
    public long Total => Rows.Sum(r => r.Params);
    /// <summary>Parameters updated by training.</summary>
    public long Trainable => Rows.Sum(r => r.TrainableParams);
    /// <summary>Frozen parameters (e.g. a non-trainable embedding).</summary>
    public long NonTrainable => Total - Trainable;
    /// <summary>The model's output shape.</summary>
    public Shape Output => Rows[^1].Output;

    /// <summary>Thousands separators, invariant culture: 258,113.</summary>
    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>The table, Keras-style, ending with <c>Total params: N</c>.</summary>
    public override string ToString()
    {
        var cells = Rows.Select(r => new[]
        {
            r.Index.ToString(), r.Layer, r.Output.ToString(), Count(r.Params), r.Kernel?.ToString() ?? "",
        }).ToList();
        string[] head = ["#", "Layer", "Output shape", "Params", "Kernel"];
        var w = Enumerable.Range(0, head.Length)
            .Select(c => cells.Select(x => x[c].Length).Append(head[c].Length).Max()).ToArray();
        var sb = new StringBuilder();
        string Line(string[] x) =>
            $"{x[0].PadLeft(w[0])}  {x[1].PadRight(w[1])}  {x[2].PadRight(w[2])}  {x[3].PadLeft(w[3])}  {x[4]}".TrimEnd();
        sb.AppendLine(Line(head));
        var rule = new string('─', w.Sum() + 8 + 2);
        sb.AppendLine(rule);
        foreach (var c in cells) sb.AppendLine(Line(c));
        sb.AppendLine(rule);
        sb.AppendLine($"Total params: {Count(Total)}");
        sb.AppendLine($"Trainable params: {Count(Trainable)}");
        sb.AppendLine($"Non-trainable params: {Count(NonTrainable)}");
        sb.Append($"Convention: {Convention.ToString().ToLowerInvariant()} (bias vectors per gate set: {(Convention == Convention.Torch ? "two" : "one")})");
        return sb.ToString();
    }
}

/// <summary>Validation and shape inference on the spec alone (no tensors).</summary>
public static class Shapes
{
    /// <summary>Whether recurrent layer <paramref name="index"/> outputs every time step:
    /// its explicit setting, else true exactly when a later layer consumes a sequence.</summary>
    public static bool ReturnsSequences(ModelSpec model, int index)
    {
        var r = (RecurrentLayer)model.Layers[index];
        if (r.ReturnSequences is bool b) return b;
        for (var j = index + 1; j < model.Layers.Length; j++)
            if (model.Layers[j] is RecurrentLayer or AttentionLayer) return true;
        return false;
    }

    /// <summary>Up to this many units, Auto runs a recurrent layer on SeqDsl's SIMD kernel. Measured (AMD EPYC with AVX2,
    /// docs/BENCHMARKS.md): faster than libtorch's kernels for E7's LSTM, GRU and SimpleRnn at 32 units at one and two
    /// threads, E4's LSTM at 50 units a tie at one thread and faster at two, 1.9–2.4× faster than the per-step loop for the
    /// reset-before GRU at 32 units; slower than libtorch's at 256 units (the char LM's LSTM). Beyond, this plan keeps
    /// libtorch's kernels (or the loop); the engine's KernelProbe measures GRU and SimpleRnn layers there on the CPU it
    /// runs on and may take the SIMD kernel instead (the compiled network's summary and diagnostics say which).</summary>
    public const int SimdAutoMaxUnits = 64;

    /// <summary>The kernel a recurrent layer runs on, or an error when <see cref="Kernel.Fused"/> cannot be honoured.
    /// Auto: SeqDsl's SIMD kernel up to <see cref="SimdAutoMaxUnits"/> units (for cells libtorch cannot fuse, instead
    /// of the per-step loop); beyond, libtorch's fused kernel, or the loop. The engine falls back from the SIMD kernel
    /// to <see cref="PlanLibtorch"/> on a GPU and on CPUs without AVX2 and FMA, and says so.</summary>
    public static KernelPlan PlanKernel(RecurrentLayer r) => r.Kernel switch
    {
        Kernel.Loop => new KernelPlan(Kernel.Loop, "requested"),
        Kernel.Simd => new KernelPlan(Kernel.Simd, "requested"),
        Kernel.Auto when r.Cell.SimdUnavailableReason is null && r.Units <= SimdAutoMaxUnits && r.Cell.FusedUnavailableReason is string why =>
            new KernelPlan(Kernel.Simd, $"{why}; SeqDsl's SIMD kernel instead of the per-step loop"),
        Kernel.Auto when r.Cell.SimdUnavailableReason is null && r.Units <= SimdAutoMaxUnits =>
            new KernelPlan(Kernel.Simd, $"{r.Units} units ≤ {SimdAutoMaxUnits}, where it measured faster than libtorch's kernels"),
        _ => PlanLibtorch(r),
    };

    /// <summary>The kernel a layer runs on without SeqDsl's SIMD kernel: libtorch's fused kernel where the cell allows,
    /// else the per-step loop.</summary>
    public static KernelPlan PlanLibtorch(RecurrentLayer r) => r.Kernel switch
    {
        Kernel.Loop => new KernelPlan(Kernel.Loop, "requested"),
        _ when r.Cell.FusedUnavailableReason is string why => new KernelPlan(Kernel.Loop, why),
        _ => new KernelPlan(Kernel.Fused, null, PlanFusedPath(r)),
    };

    /// <summary>
    /// libtorch's oneDNN path for the training-mode forward passes of every LSTM layer, the native kernel for
    /// everything else. Measured on an AMD EPYC with AVX2 (docs/BENCHMARKS.md, `bench paths`), with SeqDsl's memory policy
    /// in force: oneDNN's LSTM forward + backward takes 0.38–0.52× the native kernel's time at the textbooks' small sizes
    /// (H 32–50), 0.72–0.92× at H 512 and about the same at the char LM's (I 1027, H 256); its training-mode
    /// results agree with the reference. Forward passes without gradients never use it: its inference path gave
    /// wrong outputs for hidden sizes 2–48 on an AVX-512 CPU. The engine verifies oneDNN's training path against
    /// the reference before a layer uses it (on the CPU, at that layer's widths) and falls back to the native
    /// kernel if it disagrees or the switch is missing; on a GPU the path does not apply. GRU and
    /// SimpleRnn have no oneDNN path in libtorch.
    /// </summary>
    public static FusedPath PlanFusedPath(RecurrentLayer r) =>
        r.Cell is LstmCell ? FusedPath.OneDnn : FusedPath.Native;

    /// <summary>
    /// Checks every layer's arguments and where it stands: Embed first, recurrent layers and
    /// attention fed a sequence. Throws a <see cref="SeqDslException"/> naming the layer.
    /// </summary>
    public static void CheckStructure(ModelSpec model)
    {
        var layers = model.Layers;
        var sequence = true;           // the input is a sequence
        int? collapsedBy = null;       // the layer that removed the time axis
        for (var i = 0; i < layers.Length; i++)
        {
            var layer = layers[i];
            if (layer.ArgumentProblem() is var (reason, received, expected))
                throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, reason, received, expected);
            switch (layer)
            {
                case EmbedLayer when i != 0:
                    throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec,
                        "Embed maps token ids to vectors, so it must be the first layer.",
                        $"Embed at position {i}", "Embed at position 0");
                case RecurrentLayer or AttentionLayer when !sequence:
                    var by = layers[collapsedBy!.Value];
                    var fix = by is RecurrentLayer ? $" Set returnSequences: true on layer {collapsedBy}." : "";
                    throw SeqDslException.ForLayer(i, layer, ErrorKind.Shape,
                        $"{layer.Kind} needs a sequence, but layer {collapsedBy} ({by.Kind}) already collapsed the time axis.{fix}",
                        "(batch, features)", "(batch, time, features)");
                case SpatialDropoutLayer when !sequence:
                    throw SeqDslException.ForLayer(i, layer, ErrorKind.Shape,
                        $"SpatialDropout drops feature channels across time steps, so it needs a sequence, but layer {collapsedBy} ({layers[collapsedBy!.Value].Kind}) already collapsed the time axis.",
                        "(batch, features)", "(batch, time, features)");
                case RecurrentLayer:
                    if (!ReturnsSequences(model, i)) { sequence = false; collapsedBy = i; }
                    break;
                case AttentionLayer:
                    sequence = false; collapsedBy = i;
                    break;
            }
        }
    }

    /// <summary>Output shape and parameter count of every layer; throws when a size is missing.</summary>
    public static ModelSummary Summarise(ModelSpec model, InputSpec input, Convention convention)
    {
        CheckStructure(model);
        if (model.Layers.IsEmpty)
            throw new SeqDslException(ErrorKind.Spec, "The model has no layers.");
        var rows = ImmutableArray.CreateBuilder<SummaryRow>();
        Shape shape;
        if (model.Layers[0] is EmbedLayer)
            shape = new Shape(true, input.SeqLen, 0);
        else if (input.Features is int f && f > 0)
            shape = new Shape(true, input.SeqLen, f);
        else
            throw SeqDslException.ForLayer(0, model.Layers[0], ErrorKind.Spec,
                "A model that does not start with Embed reads feature vectors; their width must be given.",
                input.Features is int g ? $"features: {g}" : "no feature count", "features ≥ 1 (--features N)");

        for (var i = 0; i < model.Layers.Length; i++)
        {
            var layer = model.Layers[i];
            try
            {
                checked
                {
                    shape = AddRow(model, input, convention, rows, i, layer, shape);
                }
            }
            catch (OverflowException)
            {
                throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, "The layer's parameter count does not fit in 64 bits.",
                    layer.ToString(), "sizes whose product of widths stays below 9.2e18");
            }
        }
        try
        {
            _ = rows.Sum(r => r.Params); // checked: the total must be printable
        }
        catch (OverflowException)
        {
            throw new SeqDslException(ErrorKind.Spec, "The model's parameter count does not fit in 64 bits.") { Received = model.ToString() };
        }
        return new ModelSummary(rows.ToImmutable(), convention);
    }

    private static Shape AddRow(ModelSpec model, InputSpec input, Convention convention, ImmutableArray<SummaryRow>.Builder rows, int i, Layer layer, Shape shape)
    {
        checked
        {
            long p = 0, trainable;
            KernelPlan? plan = null;
            switch (layer)
            {
                case EmbedLayer e:
                    var vocab = e.Vocab ?? input.Vocab
                        ?? throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec,
                            "Embed needs the vocabulary size: give vocab: N on the layer or take it from the data (--vocab N).",
                            "no vocabulary size", "vocab ≥ 1");
                    if (vocab < 1 || (e.Padding is int pad && pad >= vocab))
                        throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, "Embed vocabulary too small.",
                            $"vocab {vocab}", e.Padding is int pd ? $"vocab > padding index {pd}" : "vocab ≥ 1");
                    p = (long)vocab * e.Dim;
                    shape = shape with { Features = e.Dim };
                    trainable = e.Trainable ? p : 0;
                    rows.Add(new SummaryRow(i, layer.ToString(), shape, p, trainable, null));
                    return shape;
                case RecurrentLayer r:
                    // the first layer reads the input; every stacked layer above it reads Directions × Units
                    p = r.Directions * (r.Cell.ParameterCount(shape.Features, r.Units, convention)
                        + (r.Layers - 1L) * r.Cell.ParameterCount((long)r.Directions * r.Units, r.Units, convention));
                    plan = PlanKernel(r);
                    shape = ReturnsSequences(model, i)
                        ? shape with { Features = r.OutputWidth }
                        : new Shape(false, null, r.OutputWidth);
                    break;
                case DenseLayer d:
                    p = (long)d.Units * (shape.Features + 1);
                    shape = shape with { Features = d.Units };
                    break;
                case AttentionLayer a:
                    var u = a.Units ?? shape.Features;
                    p = u * shape.Features + 2 * u;
                    shape = new Shape(false, null, shape.Features);
                    break;
                case DropoutLayer or SpatialDropoutLayer:
                    break;
                default:
                    throw SeqDslException.ForLayer(i, layer, ErrorKind.Spec, "Unknown layer type.", layer.GetType().Name, "a SeqDsl layer");
            }
            rows.Add(new SummaryRow(i, layer.ToString(), shape, p, p, plan));
            return shape;
        }
    }
}
