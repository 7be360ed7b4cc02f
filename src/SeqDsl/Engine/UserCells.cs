using System.Collections.Concurrent;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>The parameters of one layer and direction of a user cell, by the names the cell declared.</summary>
public sealed class CellParameters(IReadOnlyDictionary<string, Tensor> values)
{
    /// <summary>A parameter by name.</summary>
    public Tensor this[string name] => values.TryGetValue(name, out var t) ? t
        : throw new SeqDslException(ErrorKind.Spec, $"The cell has no parameter '{name}'.") { Received = name, Expected = "one of " + string.Join(", ", values.Keys) };
}

/// <summary>
/// A user cell's equations. <paramref name="Step"/> maps (x_t or its projection (B, K), state [h] or
/// [h, c] each (B, H), parameters) to the new state; h is the step's output. The optional
/// <paramref name="Project"/> maps the whole input (B, T, I) once, before the loop, to what the steps
/// read — put the input matrix products there.
/// </summary>
public sealed record UserCellKernel(
    Func<Tensor, Tensor[], CellParameters, Tensor[]> Step,
    Func<Tensor, CellParameters, Tensor>? Project = null);

/// <summary>Registers user cells: the spec (shapes, for the model text) and the kernel (equations, for the engine).</summary>
public static class UserCells
{
    private static readonly ConcurrentDictionary<string, UserCellKernel> Kernels = new(StringComparer.Ordinal);

    /// <summary>Registers a cell so that models can use it by value or by name in model text.</summary>
    public static UserCell Register(UserCell cell, UserCellKernel kernel)
    {
        UserCellCatalog.Register(cell);
        Kernels[cell.CellName] = kernel;
        return cell;
    }

    /// <summary>Shorthand: define and register in one call.</summary>
    public static UserCell Register(string name, int arity, (string name, Dim[] shape)[] parameters,
        Func<Tensor, Tensor[], CellParameters, Tensor[]> step, Func<Tensor, CellParameters, Tensor>? project = null) =>
        Register(UserCell.Define(name, arity, parameters), new UserCellKernel(step, project));

    internal static UserCellKernel Kernel(UserCell cell, int layerIndex, Layer layer) =>
        Kernels.TryGetValue(cell.CellName, out var k) ? k
        : throw SeqDslException.ForLayer(layerIndex, layer, ErrorKind.Spec,
            $"No step function is registered for the user cell '{cell.CellName}'.",
            cell.CellName, "UserCells.Register(cell, kernel) before compiling");
}
