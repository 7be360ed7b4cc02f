/// Auto's measured kernel choice for GRU and SimpleRnn layers beyond 64 units (KernelProbe): the choice both ways,
/// the summary and diagnostics that report it, the cache file, and that probing leaves the network's weights alone.
module SeqDsl.Tests.KernelProbeTests

open System
open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Tests.TorchSupport

let private simdHere = SeqDsl.Engine.Simd.SimdMath.Detected <> SeqDsl.Engine.Simd.SimdWidth.Scalar

/// Runs f with the probe on (on this thread), a fresh cache folder and, when given, fake timings (ms for the SIMD
/// kernel, ms for libtorch's).
let private probing (fake: (float * float) option) (f: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), $"seqdsl-probe-{Guid.NewGuid():N}")
    KernelProbe.ResetForTests()
    KernelProbe.EnabledOverride <- Nullable true
    KernelProbe.CacheDirOverride <- dir
    KernelProbe.TimeOverride <-
        match fake with
        | Some (simd, other) -> Func<RecurrentLayer, int64, float>(fun layer _ -> if layer.Kernel = Kernel.Simd then simd else other)
        | None -> null
    try f dir
    finally
        KernelProbe.EnabledOverride <- Nullable()
        KernelProbe.CacheDirOverride <- null
        KernelProbe.TimeOverride <- null
        KernelProbe.ResetForTests()
        try Directory.Delete(dir, true) with _ -> ()

let private compileLogged (m: ModelSpec) (features: int) =
    let events = ResizeArray<string>()
    let net = Network.Compile(m, CompileOptions(Input = InputSpec(Features = features), Seed = 7L, Diagnostics = Action<string>(events.Add)))
    net, List.ofSeq events

let private kernelOf (net: Network) (i: int) = string net.Summary.Rows.[i].Kernel

[<Tests>]
let tests =
    testSequenced <| testList "KernelProbe" [
        test "wide GRU: Auto takes the SIMD kernel where it measured faster, says so with both times, and keeps it" {
            if simdHere then
                probing (Some (10.0, 20.0)) (fun dir ->
                    let net, events = compileLogged (Model.Gru(71).Dense(1)) 3
                    use _ = net
                    Expect.stringStarts (kernelOf net 0) "simd (auto: measured faster on this CPU)" "summary row"
                    Expect.exists events (fun e -> e.Contains "layer 0 (Gru): kernel simd" && e.Contains "SIMD 10.00 ms" && e.Contains "fused 20.00 ms") $"diagnostic: {events}"
                    let file = Path.Combine(dir, "kernel-choices.json")
                    Expect.isTrue (File.Exists file) "cache written"
                    let text = File.ReadAllText file
                    Expect.stringContains text "I 3 H 71 layers 1 directions 1" "the layer's shape is the key"
                    Expect.stringContains text "\"kernel\": \"Simd\"" "the choice"
                    // a later process (this one's memory cleared) reads the choice back without measuring
                    KernelProbe.ResetForTests()
                    KernelProbe.TimeOverride <- Func<RecurrentLayer, int64, float>(fun _ _ -> failwith "measured again")
                    let again, events2 = compileLogged (Model.Gru(71).Dense(1)) 3
                    use _ = again
                    Expect.stringStarts (kernelOf again 0) "simd" "same choice from the cache"
                    Expect.exists events2 (fun e -> e.Contains "kernel-choices.json") $"says it came from the cache: {events2}")
        }

        test "wide SimpleRnn: Auto keeps libtorch's kernel where the SIMD kernel was not faster by the margin" {
            if simdHere then
                probing (Some (19.0, 20.0)) (fun _ ->
                    let net, events = compileLogged (Model.SimpleRnn(72).Dense(1)) 3
                    use _ = net
                    Expect.equal (kernelOf net 0) "fused" "summary row"
                    Expect.exists events (fun e -> e.Contains "layer 0 (SimpleRnn): kernel fused" && e.Contains "Auto: libtorch's kernel" && e.Contains "SIMD 19.00 ms") $"diagnostic: {events}")
        }

        test "a reset-before GRU is measured against the per-step loop" {
            if simdHere then
                probing (Some (5.0, 40.0)) (fun _ ->
                    let net, events = compileLogged (Model.Gru(73, resetAfter = false).Dense(1)) 3
                    use _ = net
                    Expect.stringStarts (kernelOf net 0) "simd" "SIMD instead of the loop"
                    Expect.exists events (fun e -> e.Contains "loop 40.00 ms") $"diagnostic: {events}")
        }

        test "not asked: LSTM, 64 units or fewer, a named kernel, or the probe turned off" {
            probing (Some (1.0, 100.0)) (fun dir ->
                for m in [ Model.Lstm(80).Dense(1); Model.Gru(64).Dense(1); Model.Gru(80, kernel = Kernel.Fused).Dense(1) ] do
                    let net, _ = compileLogged m 3
                    use _ = net
                    Expect.isFalse ((kernelOf net 0).Contains "on this CPU") $"{m}: {kernelOf net 0}"
                Expect.isFalse (File.Exists(Path.Combine(dir, "kernel-choices.json"))) "nothing measured"
                KernelProbe.EnabledOverride <- Nullable false
                let net, _ = compileLogged (Model.Gru(80).Dense(1)) 3
                use _ = net
                Expect.equal (kernelOf net 0) "fused" "probe off: libtorch's kernel beyond 64 units, as before")
        }

        test "a damaged cache file is measured again and replaced" {
            if simdHere then
                probing (Some (10.0, 20.0)) (fun dir ->
                    Directory.CreateDirectory dir |> ignore
                    let file = Path.Combine(dir, "kernel-choices.json")
                    File.WriteAllText(file, "{ \"version\": 1, \"entries\": { trunc")
                    let net, _ = compileLogged (Model.Gru(74).Dense(1)) 3
                    use _ = net
                    Expect.stringStarts (kernelOf net 0) "simd" "measured"
                    Expect.stringContains (File.ReadAllText file) "H 74" "rewritten whole")
        }

        test "the real probe: its choice is the kernel the layer runs, and probing does not change the seeded weights" {
            if simdHere then
                probing None (fun dir ->
                    let net, events = compileLogged (Model.Gru(75).Dense(1)) 4
                    use _ = net
                    let taken = kernelOf net 0
                    let text = File.ReadAllText(Path.Combine(dir, "kernel-choices.json"))
                    let cached = if text.Contains "\"kernel\": \"Simd\"" then "simd" else "fused"
                    Expect.stringStarts taken cached $"summary {taken} = cache ({text})"
                    Expect.exists events (fun e -> e.Contains "SIMD " && e.Contains " ms per forward + backward of a 32 × 32 batch") $"diagnostic: {events}"
                    // the same model with the kernel named: the same weights, the same outputs
                    let named = if cached = "simd" then Kernel.Simd else Kernel.Fused
                    use reference = Network.Compile(Model.Gru(75, kernel = named).Dense(1), CompileOptions(Input = InputSpec(Features = 4), Seed = 7L))
                    for struct (name, p) in reference.named_parameters() do
                        Expect.equal (values (param net name)) (values p) $"{name}: same seeded weights"
                    use x = torch.randn(3L, 5L, 4L)
                    use _g = torch.no_grad()
                    Expect.equal (values (net.forward x)) (values (reference.forward x)) "same outputs")
        }
    ]
