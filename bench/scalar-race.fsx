// Tries to make TorchSharp free an implicitly converted Scalar while libtorch reads it (docs/BENCHMARKS.md, sixteenth
// pass): masked_fill with a temporary Scalar in a loop, in optimised code, while another thread collects garbage and
// runs finalizers without pause. "held" passes a Scalar kept alive instead. A crash (or libtorch's "Expected false to
// be true" from c10::Scalar::toFloat) would show the race; the sixteenth pass saw none.
//   dotnet build src/SeqDsl.FSharp && dotnet fsi --optimize+ bench/scalar-race.fsx implicit 20
//   (also with MALLOC_PERTURB_=165 GLIBC_TUNABLES=glibc.malloc.tcache_count=0, and several processes at once)
#load "../fsharp-scripts/SeqDsl.fsx"
open System
open System.Threading
open TorchSharp
let kind = fsi.CommandLineArgs.[1]
let seconds = float fsi.CommandLineArgs.[2]
let t = torch.randn(64L, 64L)
let m = t.gt(torch.tensor 0.0f)
let mutable stop = false
let collector = Thread(fun () ->
    while not (Volatile.Read &stop) do
        GC.Collect()
        GC.WaitForPendingFinalizers())
collector.Start()
let held = (0.0).ToScalar()
let clock = Diagnostics.Stopwatch.StartNew()
let mutable calls = 0
while clock.Elapsed.TotalSeconds < seconds do
    use scope = torch.NewDisposeScope()
    for _ in 1 .. 100 do
        (if kind = "implicit" then t.masked_fill(m, Scalar.op_Implicit 0.0) else t.masked_fill(m, held)) |> ignore
        calls <- calls + 1
Volatile.Write(&stop, true)
collector.Join()
printfn "%s: %d masked_fill calls in %.0f s under constant collection, no crash" kind calls seconds
