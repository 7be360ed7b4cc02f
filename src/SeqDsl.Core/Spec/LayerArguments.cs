using System.Globalization;

namespace SeqDsl.Spec;

/// <summary>The type of an argument in model text.</summary>
public enum ArgumentType
{
    /// <summary>An integer.</summary>
    Int,
    /// <summary>A number.</summary>
    Double,
    /// <summary>true or false.</summary>
    Bool,
    /// <summary>A double-quoted string.</summary>
    String,
    /// <summary>An <see cref="Spec.Activation"/> name.</summary>
    Activation,
    /// <summary>A <see cref="Spec.Merge"/> name.</summary>
    Merge,
    /// <summary>A <see cref="Spec.Bias"/> name.</summary>
    Bias,
    /// <summary>A <see cref="Spec.Kernel"/> name.</summary>
    Kernel,
}

/// <summary>A bound an argument's value must keep (checked by the C# builder, the parser and JSON alike).</summary>
public enum ArgumentRule
{
    /// <summary>Any value of the type.</summary>
    None,
    /// <summary>An integer ≥ 1.</summary>
    Positive,
    /// <summary>A fraction in [0, 1).</summary>
    Rate,
    /// <summary>A finite number.</summary>
    Finite,
}

/// <summary>One argument of a call in model text.</summary>
/// <param name="Name">Its name (<c>units</c>, <c>returnSequences</c>); named arguments are written <c>name: value</c>.</param>
/// <param name="Type">What it holds.</param>
/// <param name="Default">The value when not given (null for required and nullable arguments); a value equal to it is
/// not printed.</param>
/// <param name="Required">Must be given; always printed, positionally.</param>
/// <param name="Nullable">May be absent (null) with a meaning of its own (e.g. "taken from the data").</param>
/// <param name="Rule">The bound it keeps.</param>
/// <param name="Positional">Printed without its name when given (<c>Dense(1, Sigmoid)</c>, <c>Bidirectional(Sum)</c>).</param>
/// <param name="Label">How error messages name it; default "Call name" (e.g. "Lstm units").</param>
public sealed record ArgumentSpec(string Name, ArgumentType Type, object? Default = null, bool Required = false, bool Nullable = false,
    ArgumentRule Rule = ArgumentRule.None, bool Positional = false, string? Label = null);

/// <summary>One call of the model text (<c>Lstm(64)</c>, <c>.Stack(2)</c>): its arguments in order, how it applies to a
/// model, and how a layer shows it.</summary>
/// <param name="Name">The call's name.</param>
/// <param name="Arguments">Its arguments, in positional order.</param>
public sealed record CallSpec(string Name, IReadOnlyList<ArgumentSpec> Arguments)
{
    /// <summary>Applies the call with parsed arguments (the C# builder method of the same name).</summary>
    internal Func<ModelSpec, ArgumentValues, ModelSpec> Apply { get; init; } = (m, _) => m;

    /// <summary>The call's argument values as a layer holds them, or null when the layer is not written with this call.</summary>
    internal Func<Layer, IReadOnlyDictionary<string, object?>?> Read { get; init; } = _ => null;
}

/// <summary>Parsed argument values by name.</summary>
internal sealed class ArgumentValues(IReadOnlyDictionary<string, object?> values)
{
    public TV Get<TV>(string name, TV fallback) => values.TryGetValue(name, out var v) ? (TV)v! : fallback;
    public TV? Opt<TV>(string name) where TV : struct => values.TryGetValue(name, out var v) ? (TV?)v : null;
    public string? Str(string name) => values.TryGetValue(name, out var v) ? (string?)v : null;
}

/// <summary>
/// The one declarative table of the model text's calls and their arguments. It drives the parser
/// (<see cref="ModelSyntax.Parse"/>: names, types, order, required and optional), the printer
/// (<see cref="Layer.ToString"/>), the argument bounds the C# builder checks (<see cref="Shapes.CheckStructure"/>), and
/// the F# surface is tested against it (every call has a pipeline function and a <c>model { }</c> operation).
/// A layer's rules that relate two arguments (a padding index inside the vocabulary, dropout needing a stack) stay on
/// the layer record.
/// </summary>
public static class LayerArguments
{
    private static readonly ArgumentSpec[] RecurrentCommon =
    [
        new("returnSequences", ArgumentType.Bool, Nullable: true), new("kernel", ArgumentType.Kernel, Kernel.Auto),
    ];

    private static ArgumentSpec Units => new("units", ArgumentType.Int, Required: true, Rule: ArgumentRule.Positive);

    private static Dictionary<string, object?> RecurrentValues(RecurrentLayer r, params (string, object?)[] cell)
    {
        var d = new Dictionary<string, object?> { ["units"] = r.Units };
        foreach (var (k, v) in cell) d[k] = v;
        d["returnSequences"] = r.ReturnSequences;
        d["kernel"] = r.Kernel;
        return d;
    }

    /// <summary>Every call, in the order a layer prints them (a recurrent layer: its cell, then Stack, then Bidirectional).</summary>
    public static IReadOnlyList<CallSpec> Calls { get; } =
    [
        new("Embed", [new("dim", ArgumentType.Int, Required: true, Rule: ArgumentRule.Positive),
                      new("vocab", ArgumentType.Int, Nullable: true, Rule: ArgumentRule.Positive),
                      new("padding", ArgumentType.Int, Nullable: true), new("pretrained", ArgumentType.String, Nullable: true),
                      new("trainable", ArgumentType.Bool, true)])
        {
            Apply = (m, a) => m.Embed(a.Get("dim", 0), a.Opt<int>("vocab"), a.Opt<int>("padding"), a.Str("pretrained"), a.Get("trainable", true)),
            Read = l => l is EmbedLayer e
                ? new Dictionary<string, object?> { ["dim"] = e.Dim, ["vocab"] = e.Vocab, ["padding"] = e.Padding, ["pretrained"] = e.Pretrained, ["trainable"] = e.Trainable }
                : null,
        },
        new("SimpleRnn", [Units, new("activation", ArgumentType.Activation, Activation.Tanh), new("bias", ArgumentType.Bias, Bias.Auto), .. RecurrentCommon])
        {
            Apply = (m, a) => m.SimpleRnn(a.Get("units", 0), a.Get("activation", Activation.Tanh), a.Get("bias", Bias.Auto),
                a.Opt<bool>("returnSequences"), a.Get("kernel", Kernel.Auto)),
            Read = l => l is RecurrentLayer { Cell: RnnCell c } r ? RecurrentValues(r, ("activation", c.Activation), ("bias", c.Bias)) : null,
        },
        new("Lstm", [Units, new("bias", ArgumentType.Bias, Bias.Auto), new("forgetBias", ArgumentType.Double, Nullable: true, Rule: ArgumentRule.Finite),
                     new("peephole", ArgumentType.Bool, false), new("layerNorm", ArgumentType.Bool, false), .. RecurrentCommon])
        {
            Apply = (m, a) => m.Lstm(a.Get("units", 0), a.Get("bias", Bias.Auto), a.Opt<double>("forgetBias"), a.Get("peephole", false),
                a.Get("layerNorm", false), a.Opt<bool>("returnSequences"), a.Get("kernel", Kernel.Auto)),
            Read = l => l is RecurrentLayer { Cell: LstmCell c } r
                ? RecurrentValues(r, ("bias", c.Bias), ("forgetBias", c.ForgetBias), ("peephole", c.Peephole), ("layerNorm", c.LayerNorm))
                : null,
        },
        new("Gru", [Units, new("resetAfter", ArgumentType.Bool, true), new("bias", ArgumentType.Bias, Bias.Auto), .. RecurrentCommon])
        {
            Apply = (m, a) => m.Gru(a.Get("units", 0), a.Get("resetAfter", true), a.Get("bias", Bias.Auto),
                a.Opt<bool>("returnSequences"), a.Get("kernel", Kernel.Auto)),
            Read = l => l is RecurrentLayer { Cell: GruCell c } r ? RecurrentValues(r, ("resetAfter", c.ResetAfter), ("bias", c.Bias)) : null,
        },
        new("Stack", [new("n", ArgumentType.Int, Required: true, Rule: ArgumentRule.Positive, Label: "Stack count"),
                      new("dropout", ArgumentType.Double, 0.0, Rule: ArgumentRule.Rate)])
        {
            Apply = (m, a) => m.Stack(a.Get("n", 0), a.Get("dropout", 0.0)),
            Read = l => l is RecurrentLayer r && (r.Layers != 1 || r.Dropout != 0)
                ? new Dictionary<string, object?> { ["n"] = r.Layers, ["dropout"] = r.Dropout } : null,
        },
        new("Bidirectional", [new("merge", ArgumentType.Merge, Merge.Concat, Positional: true)])
        {
            Apply = (m, a) => m.Bidirectional(a.Get("merge", Merge.Concat)),
            Read = l => l is RecurrentLayer { Bidirectional: Merge merge } ? new Dictionary<string, object?> { ["merge"] = merge } : null,
        },
        new("Dropout", [new("rate", ArgumentType.Double, Required: true, Rule: ArgumentRule.Rate, Label: "Dropout")])
        {
            Apply = (m, a) => m.Dropout(a.Get("rate", 0.0)),
            Read = l => l is DropoutLayer d ? new Dictionary<string, object?> { ["rate"] = d.Rate } : null,
        },
        new("SpatialDropout", [new("rate", ArgumentType.Double, Required: true, Rule: ArgumentRule.Rate, Label: "SpatialDropout")])
        {
            Apply = (m, a) => m.SpatialDropout(a.Get("rate", 0.0)),
            Read = l => l is SpatialDropoutLayer d ? new Dictionary<string, object?> { ["rate"] = d.Rate } : null,
        },
        new("Dense", [new("units", ArgumentType.Int, Required: true, Rule: ArgumentRule.Positive),
                      new("activation", ArgumentType.Activation, Activation.Linear, Positional: true)])
        {
            Apply = (m, a) => m.Dense(a.Get("units", 0), a.Get("activation", Activation.Linear)),
            Read = l => l is DenseLayer d ? new Dictionary<string, object?> { ["units"] = d.Units, ["activation"] = d.Activation } : null,
        },
        new("Attention", [new("units", ArgumentType.Int, Nullable: true, Rule: ArgumentRule.Positive, Positional: true)])
        {
            Apply = (m, a) => m.Attention(a.Opt<int>("units")),
            Read = l => l is AttentionLayer at ? new Dictionary<string, object?> { ["units"] = at.Units } : null,
        },
    ];

    /// <summary>The call a registered user cell is written with: <c>Name(units, returnSequences, kernel)</c>.</summary>
    internal static CallSpec ForUserCell(UserCell cell) => new(cell.CellName, [Units, .. RecurrentCommon])
    {
        Apply = (m, a) => m.Recurrent(cell, a.Get("units", 0), a.Opt<bool>("returnSequences"), a.Get("kernel", Kernel.Auto)),
        Read = l => l is RecurrentLayer { Cell: UserCell c } r && c.CellName == cell.CellName ? RecurrentValues(r) : null,
    };

    /// <summary>The calls that write a layer, each with its values.</summary>
    private static IEnumerable<(CallSpec Call, IReadOnlyDictionary<string, object?> Values)> CallsOf(Layer layer)
    {
        var calls = layer is RecurrentLayer { Cell: UserCell u } ? Calls.Prepend(ForUserCell(u)) : Calls;
        foreach (var c in calls)
            if (c.Read(layer) is { } values) yield return (c, values);
    }

    /// <summary>The layer's model text: its calls joined by dots, each with its required arguments and those that
    /// differ from their defaults.</summary>
    internal static string Text(Layer layer) => string.Join(".", CallsOf(layer).Select(cv =>
    {
        var args = new List<string>();
        foreach (var a in cv.Call.Arguments)
        {
            var v = cv.Values[a.Name];
            if (!a.Required && Equals(v, a.Default)) continue;
            args.Add(a.Required || a.Positional ? Format(v) : $"{a.Name}: {Format(v)}");
        }
        return $"{cv.Call.Name}({string.Join(", ", args)})";
    }));

    /// <summary>The first argument of the layer outside its bound, as (reason, received, expected).</summary>
    internal static (string reason, string received, string expected)? Problem(Layer layer)
    {
        foreach (var (call, values) in CallsOf(layer))
            foreach (var a in call.Arguments)
            {
                var label = a.Label ?? $"{call.Name} {a.Name}";
                switch (a.Rule, values[a.Name])
                {
                    case (ArgumentRule.Positive, int n) when n < 1:
                        return ($"{label} must be positive.", n.ToString(CultureInfo.InvariantCulture), $"{label} ≥ 1");
                    case (ArgumentRule.Rate, double r) when !(r >= 0 && r < 1):
                        return ($"{label} must lie in [0, 1).", ModelSyntax.FormatNumber(r), "0 ≤ rate < 1");
                    case (ArgumentRule.Finite, double f) when !double.IsFinite(f):
                        return ($"{label} must be a finite number.", ModelSyntax.FormatNumber(f), "a finite number such as 1");
                }
            }
        return null;
    }

    /// <summary>A value as model text writes it.</summary>
    internal static string Format(object? v) => v switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        int i => i.ToString(CultureInfo.InvariantCulture),
        double d => ModelSyntax.FormatNumber(d),
        string s => ModelSyntax.Quote(s),
        _ => v.ToString()!,
    };
}
