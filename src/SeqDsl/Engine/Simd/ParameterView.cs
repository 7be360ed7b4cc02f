using static TorchSharp.torch;

namespace SeqDsl.Engine.Simd;

/// <summary>
/// How SeqDsl's C# autograd functions take a parameter: through a view of it, so that the gradient a function returns
/// reaches the parameter through libtorch's own view node. libtorch's accumulator keeps a gradient nothing else holds
/// as the parameter's <c>.grad</c>; a gradient returned straight from a C# function is still held by its C# handle
/// at that moment, and libtorch copies it instead (E4's 9.7 MB embedding table: 3.7 % of its step, AMD EPYC, AVX2).
/// The <c>.grad</c> is then the very tensor the function's backward allocated: a backward must allocate its gradients
/// fresh each call, never reuse a buffer.
/// </summary>
internal static class ParameterView
{
    /// <summary>A view of <paramref name="t"/> with its own shape (null for null); the caller disposes it after the call.</summary>
    public static Tensor? Of(Tensor? t) => t?.view(t.shape);
}
