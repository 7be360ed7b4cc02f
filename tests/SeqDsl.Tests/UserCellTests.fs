/// User-defined cells: equations as a step function, everything else from SeqDsl.
module SeqDsl.Tests.UserCellTests

open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

/// The tanh RNN written as a user cell, with libtorch's parameter names, so an oracle exists: SimpleRnn.
let private tanhRnn =
    UserCells.Register("TanhRnnCell", 1,
        [| struct ("weight_ih", [| Dim.H(); Dim.I() |]); struct ("weight_hh", [| Dim.H(); Dim.H() |])
           struct ("bias_ih", [| Dim.H() |]); struct ("bias_hh", [| Dim.H() |]) |],
        (fun px (s: torch.Tensor[]) (p: CellParameters) -> [| (px + torch.nn.functional.linear(s.[0], p.["weight_hh"], p.["bias_hh"])).tanh() |]),
        (fun x p -> torch.nn.functional.linear(x, p.["weight_ih"], p.["bias_ih"])))

/// A cell that notes, at each step, whether the thread flushes subnormal floats (the training step's mode).
let private flushSeen = System.Collections.Concurrent.ConcurrentBag<bool>()
let private probeCell =
    UserCells.Register("FlushProbeCell", 1,
        [| struct ("weight_ih", [| Dim.H(); Dim.I() |]); struct ("weight_hh", [| Dim.H(); Dim.H() |]) |],
        (fun px (s: torch.Tensor[]) (p: CellParameters) ->
            flushSeen.Add(Engine.Simd.Denormals.FlushingNow())
            [| (px + torch.nn.functional.linear(s.[0], p.["weight_hh"])).tanh() |]),
        (fun x p -> torch.nn.functional.linear(x, p.["weight_ih"])))

[<Tests>]
let tests =
    testList "UserCell" [
        test "a training step runs with subnormals flushed on its thread; inference and the thread after it do not" {
            if not Engine.Simd.Denormals.Available then skiptest "the CPU's flush mode cannot be set here (x86-64 Linux with glibc only)"
            use net = compile (Model.Recurrent(probeCell, 4).Dense(1)) (InputSpec(Features = 3)) Convention.Torch 1L
            use x = torch.randn(5L, 4L, 3L)
            use y = torch.randn(5L, 1L)
            flushSeen.Clear()
            net.eval()
            do
                use _ = torch.no_grad()
                net.Forward(x, (null: torch.Tensor)).Dispose()
            Expect.isFalse (flushSeen |> Seq.exists id) "inference: the caller's mode (not flushing)"
            flushSeen.Clear()
            use session = new TrainingSession(net, FitOptions(Loss = Loss.Mse))
            let struct (_, bad) = session.Step(SequenceData(x, y))
            Expect.isNull bad "a finite step"
            Expect.isNonEmpty (List.ofSeq flushSeen) "the probe ran"
            Expect.isTrue (flushSeen |> Seq.forall id) "every step of the recurrence flushed"
            Expect.isFalse (Engine.Simd.Denormals.FlushingNow()) "the thread's mode put back after the step"
        }

        test "a user cell written as the tanh RNN equals SimpleRnn: stacked, bidirectional, padded batch" {
            let user = Model.Embed(5).Recurrent(tanhRnn, 4, returnSequences = true).Stack(2).Bidirectional().Dense(3)
            let builtin = Model.Embed(5).SimpleRnn(4, returnSequences = true, kernel = Kernel.Loop).Stack(2).Bidirectional().Dense(3)
            use a = compile user (InputSpec(Vocab = 9)) Convention.Torch 1L
            use b = compile builtin (InputSpec(Vocab = 9)) Convention.Torch 2L
            Expect.equal (paramNames a) (paramNames b) "libtorch's names"
            copyWeights b a
            use x = torch.randint(1L, 9L, [| 3L; 6L |], dtype = torch.ScalarType.Int64)
            use lengths = torch.tensor([| 6L; 2L; 4L |])
            Expect.isLessThan (maxDiff (a.Forward(x, lengths)) (b.Forward(x, lengths))) 1e-5f "same outputs"
            Expect.equal a.ParameterCount a.Summary.Total "parameter count from the declared shapes"
        }

        test "a registered user cell prints, parses and round-trips through JSON and a saved model" {
            let m = Model.Recurrent(tanhRnn, 3).Dense(1)
            Expect.equal (string m) "TanhRnnCell(3).Dense(1)" "text"
            Expect.equal (ModelSyntax.Parse(string m)) m "parses back"
            Expect.equal (ModelJson.FromJson(ModelJson.ToJson m)) m "JSON"
            use net = compile m (InputSpec(Features = 2)) Convention.Torch 1L
            let dir = tempFolder "usercell"
            ModelStore.Save(net, dir)
            use loaded = ModelStore.Load dir
            use x = torch.randn(2L, 4L, 2L)
            Expect.equal (values (loaded.forward x)) (values (net.forward x)) "same predictions after loading"
        }

        test "a cell without a registered step function is a clear compile error; bad declarations are refused" {
            let orphan = UserCell.Define("Orphan", 1, struct ("w", [| Dim.H(); Dim.I() |]))
            let e = expectSeqDslError "no kernel" (fun () -> compile (Model.Recurrent(orphan, 3)) (InputSpec(Features = 2)) Convention.Torch 0L)
            Expect.stringContains e.Message "No step function is registered for the user cell 'Orphan'" "message"
            let e2 = expectSeqDslError "arity" (fun () -> Model.Recurrent(UserCell.Define("Three", 3, struct ("w", [| Dim.H() |])), 2))
            Expect.stringContains e2.Message "h, or h and c" "arity"
            let e3 = expectSeqDslError "fused" (fun () -> Model.Recurrent(tanhRnn, 2, kernel = Kernel.Fused))
            Expect.stringContains e3.Message "user-defined cell" "no fused kernel"
        }
    ]
