/// Helpers for tests that touch tensors.
module SeqDsl.Tests.TorchSupport

open TorchSharp
open SeqDsl.Spec
open SeqDsl.Engine

/// Tensor → float32 array (row-major).
let values (t: torch.Tensor) : float32[] =
    use c = t.detach().cpu().contiguous().to_type(torch.ScalarType.Float32)
    c.data<float32>().ToArray()

/// |x − y|, infinite where one side is NaN and the other not (a bare max over differences would skip NaNs: NaN
/// compares false), zero where both are.
let absDiff (x: float32) (y: float32) =
    match System.Single.IsNaN x, System.Single.IsNaN y with
    | true, true -> 0.0f
    | false, false -> abs (x - y)
    | _ -> infinityf

/// Largest absolute difference of two tensors (NaN against a number counts as infinite).
let maxDiff (a: torch.Tensor) (b: torch.Tensor) =
    Array.map2 absDiff (values a) (values b) |> Array.fold max 0.0f

/// Compiles a model on the CPU with a seed.
let compile (m: ModelSpec) (input: InputSpec) (convention: Convention) (seed: int64) =
    Network.Compile(m, CompileOptions(Input = input, Convention = convention, Seed = seed))

/// A named parameter of a network.
let param (net: Network) (name: string) =
    net.named_parameters() |> Seq.pick (fun struct (n, p) -> if n = name then Some p else None)

/// Parameter names of a network.
let paramNames (net: Network) = [ for struct (n, _) in net.named_parameters() -> n ]

/// Copies every parameter of `src` into the same-named parameter of `dst`.
let copyWeights (src: Network) (dst: Network) =
    let copied = dst.CopyParametersFrom src
    if copied <> List.length (paramNames dst) then failwithf "only %d parameters of %O found in %O" copied dst.Spec src.Spec
