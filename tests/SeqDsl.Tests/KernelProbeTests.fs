/// Auto's measured kernel choice for GRU and SimpleRnn layers beyond 64 units (KernelProbe): the choice both ways,
/// the summary and diagnostics that report it, the cache file, failures that fall back to libtorch's kernel, the
/// choices a resumed run takes over, and that probing leaves the network's weights alone.
module SeqDsl.Tests.KernelProbeTests

open System
open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Workflows
open SeqDsl.Tests.TorchSupport

let private simdHere = SeqDsl.Engine.Simd.SimdMath.Detected <> SeqDsl.Engine.Simd.SimdWidth.Scalar

let private needsSimd () = if not simdHere then skiptest "this CPU has no AVX2 with FMA: Auto never measures here"

let private fakeTimes (simd: float) (other: float) =
    Func<RecurrentLayer, int64, float>(fun layer _ -> if layer.Kernel = Kernel.Simd then simd else other)

/// Runs f with the probe on (on this thread), a fresh cache folder and the given timings (null: the real probe).
let private probing (times: Func<RecurrentLayer, int64, float>) (f: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), $"seqdsl-probe-{Guid.NewGuid():N}")
    KernelProbe.ResetForTests()
    KernelProbe.EnabledOverride <- Nullable true
    KernelProbe.CacheDirOverride <- dir
    KernelProbe.TimeOverride <- times
    try f dir
    finally
        KernelProbe.EnabledOverride <- Nullable()
        KernelProbe.CacheDirOverride <- null
        KernelProbe.TimeOverride <- null
        KernelProbe.ResetForTests()
        try Directory.Delete(dir, true) with _ -> ()

/// Compiles with options made around a diagnostics sink; returns the network and the diagnostics.
let private compileWith (options: Action<string> -> CompileOptions) (m: ModelSpec) =
    let events = ResizeArray<string>()
    let net = Network.Compile(m, options (Action<string>(events.Add)))
    net, List.ofSeq events

let private compileLogged (m: ModelSpec) (features: int) =
    compileWith (fun d -> CompileOptions(Input = InputSpec(Features = features), Seed = 7L, Diagnostics = d)) m

let private kernelOf (net: Network) (i: int) = string net.Summary.Rows.[i].Kernel

let private outputs (net: Network) (features: int64) =
    use g = new torch.Generator(11UL)
    use x = torch.randn([| 3L; 5L; features |], generator = g)
    use _g = torch.no_grad()
    values (net.forward x)

let private cacheText dir = File.ReadAllText(Path.Combine(dir, "kernel-choices.json"))

[<Tests>]
let tests =
    testSequenced <| testList "KernelProbe" [
        test "wide GRU: Auto takes the SIMD kernel where it measured faster, says so with both times, and keeps it" {
            needsSimd ()
            probing (fakeTimes 10.0 20.0) (fun dir ->
                let net, events = compileLogged (Model.Gru(71).Dense(1)) 3
                use _ = net
                Expect.stringStarts (kernelOf net 0) "simd (auto: measured faster on this CPU)" "summary row"
                Expect.exists events (fun e -> e.Contains "layer 0 (Gru): kernel simd" && e.Contains "SIMD 10.00 ms" && e.Contains "fused 20.00 ms") $"diagnostic: {events}"
                Expect.exists events (fun e -> e.Contains "layer 0 (Gru): measuring") "says it measures"
                Expect.equal (net.MeasuredKernels |> Seq.map (fun kv -> kv.Key, kv.Value) |> List.ofSeq) [ 0, Kernel.Simd ] "MeasuredKernels"
                let text = cacheText dir
                Expect.stringContains text "I 3 H 71 layers 1 directions 1" "the layer's shape is in the key"
                Expect.stringContains text "\"kernel\": \"Simd\"" "the choice"
                // a later process (this one's memory cleared) reads the choice back without measuring, and repeats the floats
                KernelProbe.ResetForTests()
                KernelProbe.TimeOverride <- Func<RecurrentLayer, int64, float>(fun _ _ -> failwith "measured again")
                let again, events2 = compileLogged (Model.Gru(71).Dense(1)) 3
                use _ = again
                Expect.stringStarts (kernelOf again 0) "simd" "same choice from the cache"
                Expect.exists events2 (fun e -> e.Contains "measured earlier, kept in" && e.Contains "kernel-choices.json") $"says it came from the cache: {events2}"
                Expect.equal (outputs again 3L) (outputs net 3L) "the same floats")
        }

        test "wide SimpleRnn: Auto keeps libtorch's kernel where the SIMD kernel was not faster by the margin" {
            needsSimd ()
            probing (fakeTimes 19.0 20.0) (fun _ ->
                let net, events = compileLogged (Model.SimpleRnn(72).Dense(1)) 3
                use _ = net
                Expect.equal (kernelOf net 0) "fused" "summary row"
                Expect.exists events (fun e -> e.Contains "layer 0 (SimpleRnn): kernel fused" && e.Contains "Auto: libtorch's kernel" && e.Contains "SIMD 19.00 ms") $"diagnostic: {events}")
        }

        test "a reset-before GRU is measured against the per-step loop" {
            needsSimd ()
            probing (fakeTimes 5.0 40.0) (fun _ ->
                let net, events = compileLogged (Model.Gru(73, resetAfter = false).Dense(1)) 3
                use _ = net
                Expect.stringStarts (kernelOf net 0) "simd" "SIMD instead of the loop"
                Expect.exists events (fun e -> e.Contains "loop 40.00 ms") $"diagnostic: {events}")
        }

        test "not asked: LSTM, 64 units or fewer, a named kernel, or the probe turned off" {
            probing (fakeTimes 1.0 100.0) (fun dir ->
                for m in [ Model.Lstm(80).Dense(1); Model.Gru(64).Dense(1); Model.Gru(80, kernel = Kernel.Fused).Dense(1) ] do
                    let net, _ = compileLogged m 3
                    use _ = net
                    Expect.isFalse ((kernelOf net 0).Contains "on this CPU") $"{m}: {kernelOf net 0}"
                    Expect.isEmpty net.MeasuredKernels $"{m}: nothing measured"
                Expect.isFalse (File.Exists(Path.Combine(dir, "kernel-choices.json"))) "nothing measured"
                KernelProbe.EnabledOverride <- Nullable false
                let net, _ = compileLogged (Model.Gru(80).Dense(1)) 3
                use _ = net
                Expect.equal (kernelOf net 0) "fused" "probe off: libtorch's kernel beyond 64 units, as before")
        }

        test "a damaged or wrongly typed cache file is measured again and replaced" {
            needsSimd ()
            for damaged in [ "{ \"version\": 1, \"entries\": { trunc"; "{ \"version\": \"1\", \"entries\": {} }"; "[1, 2]"
                             "{ \"version\": 1, \"entries\": { \"k\": { \"kernel\": 3 } } }" ] do
                probing (fakeTimes 10.0 20.0) (fun dir ->
                    Directory.CreateDirectory dir |> ignore
                    File.WriteAllText(Path.Combine(dir, "kernel-choices.json"), damaged)
                    let net, _ = compileLogged (Model.Gru(74).Dense(1)) 3
                    use _ = net
                    Expect.stringStarts (kernelOf net 0) "simd" $"measured ({damaged})"
                    Expect.stringContains (cacheText dir) "H 74" "rewritten whole")
        }

        test "a probe that fails, or a choice that cannot be kept: libtorch's kernel, and a diagnostic says why" {
            needsSimd ()
            probing (Func<RecurrentLayer, int64, float>(fun _ _ -> raise (InvalidOperationException "simulated probe failure"))) (fun _ ->
                let net, events = compileLogged (Model.Gru(76).Dense(1)) 3
                use _ = net
                Expect.equal (kernelOf net 0) "fused" "libtorch's"
                Expect.exists events (fun e -> e.Contains "layer 0 (Gru): Auto keeps libtorch's kernel" && e.Contains "simulated probe failure") $"diagnostic: {events}")
            probing (fakeTimes 10.0 20.0) (fun dir ->
                // the cache folder's place is taken by a file: nothing can be kept, so nothing is taken from the measurement
                File.WriteAllText(dir, "not a folder")
                try
                    let net, events = compileLogged (Model.Gru(77).Dense(1)) 3
                    use _ = net
                    Expect.equal (kernelOf net 0) "fused" "libtorch's, so that the next run takes the same"
                    Expect.exists events (fun e -> e.Contains "Auto keeps libtorch's kernel" && e.Contains "could not be kept") $"diagnostic: {events}"
                finally File.Delete dir)
        }

        test "a process that finds another one measuring waits for it and takes its choice" {
            needsSimd ()
            probing (fakeTimes 10.0 20.0) (fun dir ->
                Directory.CreateDirectory dir |> ignore
                let file = Path.Combine(dir, "kernel-choices.json")
                let layer = RecurrentLayer(GruCell(), 79)
                // "another process": holds the lock, then writes its (opposite) choice and lets go
                let held = new FileStream(file + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                let mutable result = None
                let worker =
                    Threading.Thread(fun () ->
                        KernelProbe.EnabledOverride <- Nullable true
                        KernelProbe.CacheDirOverride <- dir
                        KernelProbe.TimeOverride <- Func<RecurrentLayer, int64, float>(fun _ _ -> failwith "measured, though another process did")
                        result <- Some (KernelProbe.Choose(layer, 3L, true, null)))
                worker.Start()
                Threading.Thread.Sleep 300
                Expect.isTrue worker.IsAlive "waits while the lock is held"
                let key = KernelProbe.Key(layer, 3L)
                File.WriteAllText(file, $"{{ \"version\": 1, \"entries\": {{ \"{key}\": {{ \"kernel\": \"Fused\", \"other\": \"Fused\", \"simdMs\": 30, \"otherMs\": 20 }} }} }}")
                held.Dispose()
                Expect.isTrue (worker.Join(TimeSpan.FromSeconds 30.0)) "goes on once the lock is free"
                match result with
                | Some r when not (isNull (box r)) ->
                    Expect.equal r.Kernel Kernel.Fused "the other process's choice"
                    Expect.isTrue r.FromCache "read, not measured"
                | _ -> failtest "no choice")
        }

        test "a loaded model does not measure; a resumed run's choices are taken as given" {
            needsSimd ()
            probing (Func<RecurrentLayer, int64, float>(fun _ _ -> failwith "measured")) (fun _ ->
                let net, events =
                    compileWith (fun d -> CompileOptions(Input = InputSpec(Features = 3), Seed = 7L, Diagnostics = d, MeasureKernels = false)) (Model.Gru(78).Dense(1))
                use _ = net
                Expect.equal (kernelOf net 0) "fused" "nothing cached: libtorch's"
                Expect.exists events (fun e -> e.Contains "not measured") $"diagnostic: {events}"
                let choices = readOnlyDict [ 0, Kernel.Simd ]
                let resumed, events2 =
                    compileWith (fun d -> CompileOptions(Input = InputSpec(Features = 3), Seed = 7L, Diagnostics = d, KernelChoices = choices)) (Model.Gru(78).Dense(1))
                use _ = resumed
                Expect.stringStarts (kernelOf resumed 0) "simd (auto: as the run it continues took)" $"summary: {events2}")
        }

        test "an experiment's training state keeps the kernels Auto measured, and the resumed run takes them" {
            needsSimd ()
            probing (fakeTimes 10.0 20.0) (fun dir ->
                let state = Path.Combine(dir, "state")
                let e epochs =
                    ExperimentSpec(Model = "Embed(4).Gru(70).Dense(1, Sigmoid)", Data = "synthetic:negation",
                                   Training = TrainingSpec(Epochs = epochs, BatchSize = 256, Threads = Nullable 1))
                (Experiment.Run(e 1, stateDirectory = state)).Dispose()
                Expect.equal (File.ReadAllText(Path.Combine(state, "kernels.json"))) "{\"1\":\"Simd\"}" "kernels.json"
                // on resume the cache says otherwise (another thread count, say): the state wins
                KernelProbe.ResetForTests()
                File.Delete(Path.Combine(dir, "kernel-choices.json"))
                KernelProbe.TimeOverride <- fakeTimes 20.0 10.0
                let log = ResizeArray<string>()
                use resumed = Experiment.Run(e 2, stateDirectory = state, log = Action<string>(log.Add))
                Expect.exists log (fun l -> l.Contains "layer 1 (Gru): kernel simd (auto: as the run it continues took)") $"log: {log}")
        }

        test "the real probe: its choice is the kernel the layer runs, and probing does not change the seeded weights" {
            needsSimd ()
            probing null (fun dir ->
                let net, events = compileLogged (Model.Gru(75).Dense(1)) 4
                use _ = net
                let taken = kernelOf net 0
                let text = cacheText dir
                let cached = if text.Contains "\"kernel\": \"Simd\"" then "simd" else "fused"
                Expect.stringStarts taken cached $"summary {taken} = cache ({text})"
                Expect.exists events (fun e -> e.Contains $"layer 0 (Gru): kernel {cached}" && e.Contains " ms per forward + backward of a 32 × 32 batch") $"diagnostic: {events}"
                // the same model with the kernel named: the same weights, the same outputs
                let named = if cached = "simd" then Kernel.Simd else Kernel.Fused
                use reference = Network.Compile(Model.Gru(75, kernel = named).Dense(1), CompileOptions(Input = InputSpec(Features = 4), Seed = 7L))
                for struct (name, p) in reference.named_parameters() do
                    Expect.equal (values (param net name)) (values p) $"{name}: same seeded weights"
                Expect.equal (outputs net 4L) (outputs reference 4L) "same outputs")
        }
    ]
