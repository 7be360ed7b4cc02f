/// Every path a recurrent layer takes on this machine against the float64 reference of its equations:
/// LSTM, GRU (reset-after, reset-before), SimpleRnn (tanh, relu); H 1…64, 96, 128, 256; uni- and
/// bidirectional; one and two stacked layers; with and without lengths; training mode and no_grad/eval.
/// libtorch's oneDNN LSTM gave wrong no_grad outputs for H 2, 3, 4, 8, 12, 16, 48 on an AVX-512 CPU: a
/// change that lets SeqDsl's layers reach that path without gradients fails here on such a machine.
module SeqDsl.Tests.KernelAgreementTests

open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Tests.TorchSupport

let private describe (rows: KernelCheckRow seq) =
    rows
    |> Seq.map (fun r -> $"{r.Path} {r.Mode} {r.Case.Cell} H={r.Case.Hidden} {r.Case.Variant}: max error {r.MaxError:G3}")
    |> String.concat "\n"

/// Runs `check` with the compile diagnostics of `model` (3 features) while a failure is simulated, then restores the backend.
let private simulated (set: bool -> unit) (model: string) (check: string -> unit) =
    try
        set true
        Backend.ResetForTests()
        let messages = ResizeArray<string>()
        use _net = Network.Compile(ModelSyntax.Parse model, CompileOptions(Input = InputSpec(Features = 3), Diagnostics = System.Action<string>(messages.Add)))
        check (String.concat "\n" messages)
    finally
        set false
        Backend.ResetForTests()

/// Sizes where oneDNN's LSTM inference was seen wrong; the sweep must keep them.
let private seenWrong = [ 2; 3; 4; 8; 12; 16; 48 ]

[<Tests>]
let tests =
    testList "KernelAgreement" [
        test "the sweep covers H 1…64, 96, 128, 256 and keeps the sizes oneDNN got wrong" {
            Expect.equal (List.ofSeq KernelCheck.Sizes) ([ 1..64 ] @ [ 96; 128; 256 ]) "sizes"
            for h in seenWrong do Expect.contains KernelCheck.Sizes h $"H={h} in the sweep"
            Expect.equal (Seq.length (KernelCheck.Cases(KernelCheck.Cells, [ 8 ]))) 40 "5 cells × uni/bi × 1/2 layers × lengths or not"
        }

        test "libtorch's oneDNN switch is set off process-wide and can be read back" {
            Backend.Initialize()
            Expect.isTrue Backend.OneDnnSwitchAvailable $"switch: {Backend.SwitchProblem}"
            Expect.stringContains (String.concat "\n" (Backend.Describe())) "oneDNN RNN path: off" "described"
        }

        // one test per cell, each running the whole sweep for that cell: every path SeqDsl uses must agree
        for cell in KernelCheck.Cells do
            test $"{cell}: every path in use equals the float64 reference, in training mode and under no_grad" {
                let rows =
                    KernelCheck.Cases([ cell ], KernelCheck.Sizes)
                    |> Seq.collect (fun c -> KernelCheck.Run(c, withOneDnn = true, withLoop = (c.Hidden <= 64)))
                    |> List.ofSeq
                let inUse = rows |> List.filter (fun r -> r.InUse)
                // 67 sizes × 8 variants × 2 modes
                Expect.equal (inUse.Length) (67 * 8 * 2) "rows in use"
                let bad = inUse |> List.filter (fun r -> not r.Agrees)
                Expect.isEmpty bad $"disagreements:\n{describe bad}"
                // the loop kernel (SeqDsl's fallback for LSTM when the oneDNN switch is missing) agrees too
                let loopBad = rows |> List.filter (fun r -> r.Path = "loop" && not r.Agrees)
                Expect.isEmpty loopBad $"loop kernel disagreements:\n{describe loopBad}"
            }

        test "an LSTM on libtorch's kernel takes oneDNN (where checked right) only in training, the native kernel under no_grad" {
            let rows =
                [ for h in seenWrong @ [ 20; 32; 64 ] do
                    yield! KernelCheck.Run(KernelCase("lstm", h, 1, false, false), withOneDnn = true, withLoop = false) ]
            // up to 64 units kernel Auto runs SeqDsl's SIMD kernel (on CPUs with AVX2 and FMA); beyond, libtorch's
            let simdHere = SeqDsl.Engine.Simd.SimdMath.Detected <> SeqDsl.Engine.Simd.SimdWidth.Scalar
            let used = rows |> List.filter (fun r -> r.InUse)
            if simdHere then
                Expect.isNonEmpty used "a path in use at every size"
                Expect.isTrue (used |> List.forall (fun r -> r.Path = "simd")) "SIMD kernel in use up to 64 units"
            let large =
                [ for h in [ 96; 128 ] do
                    yield! KernelCheck.Run(KernelCase("lstm", h, 1, false, false), withOneDnn = true, withLoop = false) ]
            let usedLarge = large |> List.filter (fun r -> r.InUse)
            for r in usedLarge do
                let trainingPath = if Backend.OneDnnTrainingRightFor(4L, r.Case.Hidden, 1, false) then "onednn" else "native"
                Expect.equal r.Path (if r.Mode = "training" then trainingPath else "native") $"path in use at H {r.Case.Hidden}, {r.Mode}"
            Expect.equal usedLarge.Length 4 "one path per size and mode"
            Expect.isTrue ((used @ usedLarge) |> List.forall (fun r -> r.Agrees)) $"in use:\n{describe (used @ usedLarge)}"
            // oneDNN without gradients (wrong on an AVX-512 CPU) is probed and reported, never used
            let inference = rows |> List.filter (fun r -> r.Path = "onednn" && r.Mode = "no_grad")
            Expect.equal inference.Length 10 "probed"
            let wrong = inference |> List.filter (fun r -> not r.Agrees)
            if not wrong.IsEmpty then printfn "oneDNN inference disagrees on this CPU (not used by SeqDsl):\n%s" (describe wrong)
        }

        test "input and hidden 512: the training path in use and native under no_grad both agree" {
            let c = KernelCase("lstm", 512, 1, false, false)
            let rows = KernelCheck.Run(c, withOneDnn = true, withLoop = false, batch = 2, time = 3, input = 512) |> List.ofSeq
            let used = rows |> List.filter (fun r -> r.InUse)
            let trainingPath = if Backend.OneDnnTrainingRightFor(512L, 512, 1, false) then "onednn" else "native"
            Expect.equal (List.sort [ for r in used -> r.Path, r.Mode ]) (List.sort [ "native", "no_grad"; trainingPath, "training" ]) "paths in use"
            Expect.isTrue (used |> List.forall (fun r -> r.Agrees)) (describe rows)
        }

        test "a layer's forward in training mode runs the checked training path and under no_grad the native kernel" {
            // the switch as libtorch reads it during the call, observed through forced-path comparisons:
            // a training-mode forward is bit-identical to a forced-oneDNN forward (where oneDNN was checked right),
            // and a no_grad forward to a forced-native one
            use net = Network.Compile(ModelSyntax.Parse "Lstm(16, returnSequences: true, kernel: Fused)", CompileOptions(Input = InputSpec(Features = 4), Seed = 3L))
            use x = torch.randn(3L, 7L, 4L)
            let run (grad: bool) (forced: System.Nullable<bool>) =
                use _ = if grad then torch.enable_grad() else torch.no_grad()
                let f () = net.forward(x).detach().clone()
                if forced.HasValue then Backend.WithPath(forced.Value, System.Func<_>(f)) else f ()
            let oneDnn = Backend.OneDnnTrainingRightFor(4L, 16, 1, false)
            use training = run true (System.Nullable())
            use trainingOneDnn = run true (System.Nullable true)
            use trainingNative = run true (System.Nullable false)
            use inference = run false (System.Nullable())
            use inferenceNative = run false (System.Nullable false)
            use inferenceOneDnn = run false (System.Nullable true)
            Expect.equal (maxDiff training (if oneDnn then trainingOneDnn else trainingNative)) 0.0f "training mode = the checked path, bit for bit"
            Expect.equal (maxDiff inference inferenceNative) 0.0f "no_grad = native, bit for bit"
            if maxDiff trainingOneDnn trainingNative = 0.0f || maxDiff inferenceOneDnn inferenceNative = 0.0f then
                printfn "note: oneDNN and native round identically here, so this test cannot tell them apart on this CPU"
        }

        test "the reference catches a wrong kernel: one perturbed weight is a disagreement" {
            // run the check's comparison on a network whose weight changed after the reference was computed
            let c = KernelCase("lstm", 8, 1, true, true)
            use net = Network.Compile(ModelSyntax.Parse(c.ModelText Kernel.Auto), CompileOptions(Input = InputSpec(Features = 4), Seed = 1L))
            use x = torch.randn(3L, 5L, 4L)
            use lengths = torch.tensor([| 5L; 3L; 1L |])
            let reference = KernelCheck.Reference.Run(c, net, x, lengths)
            let err () =
                use _ = torch.no_grad()
                let ctx = ForwardContext(Lengths = lengths, KeepStates = true)
                use y = net.Forward(x, ctx)
                let got = (y.to_type(torch.ScalarType.Float64).data<float>().ToArray())
                Array.map2 (fun (a: float) b -> abs (a - b)) got reference.Output |> Array.max
            Expect.isLessThan (err ()) 1e-5 "agrees before"
            do
                use _ = torch.no_grad()
                let w = net.named_parameters() |> Seq.pick (fun struct (n, p) -> if n = "layers.0.rnn.weight_ih_l0_reverse" then Some p else None)
                w.[0L, 0L].add_(torch.tensor 1e-2f, SeqDsl.Engine.Kept.One) |> ignore   // (alpha held: TorchSharp's add_(t) makes one it does not keep alive)
            Expect.isGreaterThan (err ()) 1e-5 "a 0.01 change in one backward-direction weight is seen"
        }

        // sequenced: they change process-wide state that the parallel tests read
        testSequenced <| testList "simulated failures" [
            test "without the oneDNN switch, Auto LSTM layers on the CPU fall back to the loop kernel and say why" {
                simulated (fun on -> Backend.SimulateMissingSwitch <- on) "Lstm(80).Gru(80)" (fun all ->
                    Expect.stringContains all "layer 0 (Lstm): kernel loop: libtorch's oneDNN switch is unavailable" "LSTM falls back"
                    Expect.stringContains all "(fallback from Auto)" "reported as a fallback"
                    Expect.stringContains all "layer 1 (Gru): kernel fused" "GRU has no oneDNN path and stays fused"
                    Expect.stringContains (String.concat "\n" (Backend.Describe())) "UNKNOWN" "described"
                    Expect.isFalse Backend.OneDnnTrainingRight "oneDNN not used without the switch"
                    // the check marks the loop kernel as the LSTM path in use, and it agrees
                    let rows = KernelCheck.Run(KernelCase("lstm", 80, 1, true, true), withOneDnn = true, withLoop = true) |> List.ofSeq
                    Expect.equal (rows |> List.filter (fun r -> r.InUse) |> List.map (fun r -> r.Path) |> List.distinct) [ "loop" ] "loop in use"
                    Expect.isTrue (rows |> List.forall (fun r -> r.Path <> "onednn")) "oneDNN not probed without the switch")
                Expect.isTrue Backend.OneDnnSwitchAvailable "restored"
            }

            test "when oneDNN's training path disagrees with the reference, LSTMs train on the native kernel and say why" {
                simulated (fun on -> Backend.SimulateOneDnnWrong <- on) "Lstm(80).Dense(1)" (fun all ->
                    Expect.stringContains all "layer 0 (Lstm): kernel fused — libtorch's native kernel; not oneDNN: oneDNN's LSTM disagrees" "falls back, says why"
                    Expect.stringContains (String.concat "\n" (Backend.Describe())) "not used for training either" "described"
                    let rows = KernelCheck.Run(KernelCase("lstm", 80, 1, false, false), withOneDnn = true, withLoop = false) |> List.ofSeq
                    Expect.equal (rows |> List.filter (fun r -> r.InUse) |> List.map (fun r -> r.Path, r.Mode) |> List.sort) [ "native", "no_grad"; "native", "training" ] "native in use in both modes")
                Expect.isTrue Backend.OneDnnTrainingRight "restored"
            }

            test "the first compile of a process, which runs oneDNN's check, gives the weights every later compile gives" {
                Backend.ResetForTests() // forget the checks, so that the next compile runs them
                let model = ModelSyntax.Parse "Embed(9).Lstm(7, kernel: Fused).Bidirectional().Dense(1)"
                use first = Network.Compile(model, CompileOptions(Input = InputSpec(Vocab = 20), Seed = 5L))
                use second = Network.Compile(model, CompileOptions(Input = InputSpec(Vocab = 20), Seed = 5L))
                for struct (n, p) in first.named_parameters() do
                    let q = second.named_parameters() |> Seq.pick (fun struct (m, q) -> if m = n then Some q else None)
                    Expect.equal (maxDiff p q) 0.0f $"{n} identical"
            }
        ]
    ]
