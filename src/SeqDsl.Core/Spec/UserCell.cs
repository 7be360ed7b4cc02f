using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json.Serialization;

namespace SeqDsl.Spec;

/// <summary>One dimension of a user cell's parameter: Units·H + Inputs·I + Constant.</summary>
/// <param name="Units">Multiple of the hidden size H.</param>
/// <param name="Inputs">Multiple of the input width I.</param>
/// <param name="Constant">A fixed size.</param>
public sealed record Dim(int Units = 0, int Inputs = 0, int Constant = 0)
{
    /// <summary>H.</summary>
    public static Dim H(int times = 1) => new(Units: times);
    /// <summary>I.</summary>
    public static Dim I(int times = 1) => new(Inputs: times);

    /// <summary>The size for an input width and hidden size.</summary>
    public long Size(long input, long units) => Units * units + Inputs * input + Constant;

    /// <inheritdoc />
    public override string ToString() =>
        string.Join(" + ", new[] { Units != 0 ? $"{Units}H" : null, Inputs != 0 ? $"{Inputs}I" : null, Constant != 0 ? $"{Constant}" : null }
            .Where(s => s is not null).DefaultIfEmpty("0"));
}

/// <summary>A named parameter of a user cell, with its shape in terms of I and H.</summary>
public sealed record UserParameter(string Name, ImmutableArray<Dim> Shape)
{
    /// <summary>Number of values for an input width and hidden size.</summary>
    public long Count(long input, long units) => Shape.Aggregate(1L, (n, d) => n * d.Size(input, units));

    /// <inheritdoc />
    public bool Equals(UserParameter? other) => other is not null && Name == other.Name && Shape.SequenceEqual(other.Shape);

    /// <inheritdoc />
    public override int GetHashCode() => Shape.Aggregate(Name.GetHashCode(StringComparison.Ordinal), HashCode.Combine);
}

/// <summary>
/// A cell the user defines: a name, its state arity (1: h; 2: h and c) and its parameters' shapes.
/// Its equations are a step function registered with the engine under the same name
/// (<c>UserCells.Register</c> in <c>SeqDsl.Engine</c>); everything else — stacking, bidirectional,
/// lengths, summary, save/load, text and JSON forms — it gets from SeqDsl. The spec itself holds no
/// code, so it stays a value that prints, parses and serialises.
/// </summary>
public sealed record UserCell : CellSpec
{
    /// <summary>The name used in model text, e.g. MinimalGru.</summary>
    public required string CellName { get; init; }
    /// <summary>1 (h) or 2 (h, c).</summary>
    public int Arity { get; init; } = 1;
    /// <summary>The parameters, per layer and direction.</summary>
    public required ImmutableArray<UserParameter> Parameters { get; init; }

    /// <inheritdoc />
    [JsonIgnore] public override string Name => CellName;
    /// <inheritdoc />
    [JsonIgnore] public override int StateArity => Arity;
    /// <inheritdoc />
    public override long ParameterCount(long input, long units, Convention convention) =>
        Parameters.Sum(p => p.Count(input, units));
    /// <inheritdoc />
    [JsonIgnore] public override string? FusedUnavailableReason => $"{CellName} is a user-defined cell";

    /// <inheritdoc />
    [JsonIgnore] public override string? SimdUnavailableReason => $"{CellName} is a user-defined cell";
    internal override (string, string, string)? ArgumentProblem() =>
        Arity is < 1 or > 2 ? ($"{CellName}: a cell carries h, or h and c.", $"arity {Arity}", "1 or 2")
        : Parameters.IsDefaultOrEmpty ? ($"{CellName} declares no parameters.", "none", "at least one parameter")
        : Parameters.Select(p => p.Name).Distinct().Count() != Parameters.Length ? ($"{CellName} declares a parameter twice.", string.Join(", ", Parameters.Select(p => p.Name)), "distinct names")
        : null;

    /// <inheritdoc />
    public bool Equals(UserCell? other) =>
        other is not null && CellName == other.CellName && Arity == other.Arity && Bias == other.Bias && Parameters.SequenceEqual(other.Parameters);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(CellName, Arity, Parameters.Length);

    /// <summary>A user cell with parameters given as (name, dims…).</summary>
    public static UserCell Define(string name, int arity, params (string name, Dim[] shape)[] parameters) =>
        new() { CellName = name, Arity = arity, Parameters = [.. parameters.Select(p => new UserParameter(p.name, [.. p.shape]))] };
}

/// <summary>User cells known to the model text parser, by name (<c>MinimalGru(32)</c> parses once registered).</summary>
public static class UserCellCatalog
{
    private static readonly ConcurrentDictionary<string, UserCell> Cells = new(StringComparer.Ordinal);

    /// <summary>Makes a cell's name usable in model text. Registering the same definition again is harmless.</summary>
    public static void Register(UserCell cell)
    {
        if (cell.ArgumentProblem() is var (reason, received, expected))
            throw new SeqDslException(ErrorKind.Spec, reason) { Received = received, Expected = expected };
        Cells.AddOrUpdate(cell.CellName, cell, (_, _) => cell);
    }

    /// <summary>The registered cell with this name, if any.</summary>
    public static UserCell? Find(string name) => Cells.TryGetValue(name, out var c) ? c : null;

    /// <summary>Names of the registered cells.</summary>
    public static IReadOnlyCollection<string> Names => Cells.Keys.ToList();
}
