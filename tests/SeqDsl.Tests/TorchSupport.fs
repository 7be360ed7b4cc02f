/// Helpers for tests that touch tensors.
module SeqDsl.Tests.TorchSupport

open TorchSharp
open SeqDsl.Spec
open SeqDsl.Engine

/// Tensor → float32 array (row-major).
let values (t: torch.Tensor) : float32[] =
    use c = t.detach().cpu().contiguous().to_type(torch.ScalarType.Float32)
    c.data<float32>().ToArray()

/// Largest absolute difference of two tensors.
let maxDiff (a: torch.Tensor) (b: torch.Tensor) =
    Array.map2 (fun (x: float32) y -> abs (x - y)) (values a) (values b) |> Array.fold max 0.0f

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
