/// fit / evaluate / predict: learning, determinism, validation split, clipping, schedules,
/// early stopping, non-finite losses, cancellation, memory, resume.
module SeqDsl.Tests.TrainerTests

open System
open System.IO
open System.Threading
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Data
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

/// A sentiment-like toy: the label is whether token 3 occurs in the sequence.
let private tokenTask (n: int) (seed: int64) =
    torch.manual_seed seed |> ignore
    let x = torch.randint(1L, 8L, [| int64 n; 12L |], dtype = torch.ScalarType.Int64)
    let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
    SequenceData(x, y)

let private tokenModel = Model.Embed(8).Lstm(16).Dense(1, Activation.Sigmoid)
/// FitOptions for the toy task, with the fields a test changes given by name.
type private Bce =
    static member Opts(?epochs, ?seed, ?validationSplit, ?optimizer: OptimizerSpec, ?schedule: Schedule, ?earlyStopping: EarlyStopping,
                       ?progress: IProgress<TrainingProgress>, ?cancellation, ?stateDirectory: string) =
        FitOptions(Loss = Loss.Bce, Metrics = [| Metric.Accuracy |], BatchSize = 32,
                   Optimizer = defaultArg optimizer (OptimizerSpec.Adam(0.01)), Epochs = defaultArg epochs 10,
                   Seed = defaultArg seed 0L, ValidationSplit = defaultArg validationSplit 0.0,
                   Schedule = Option.toObj schedule, EarlyStopping = Option.toObj earlyStopping, Progress = Option.toObj progress,
                   Cancellation = defaultArg cancellation CancellationToken.None, StateDirectory = Option.toObj stateDirectory)
let private tempDir () = Path.Combine(Path.GetTempPath(), "seqdsl-tests-" + Guid.NewGuid().ToString("N"))

[<Tests>]
let tests =
    testSequenced <| testList "Trainer" [
        test "it learns: loss after training below half the first epoch's" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let h = Trainer.Fit(net, tokenTask 512 1L, Bce.Opts(epochs = 8))
            Expect.isLessThan (h.Epochs.[7].["loss"]) (h.Epochs.[0].["loss"] / 2.0) "loss halves"
            Expect.isGreaterThan (h.Epochs.[7].["accuracy"]) 0.9 "accuracy"
        }

        test "each step's gradient is that step's alone: cleared before the backward pass, not added to" {
            // SGD at learning rate 0 leaves the weights as they are, so the same batch twice must give the same gradient
            // (an accumulated one would be twice it); the embedding table, the SIMD recurrent layer and Dense alike
            use net = compile (Model.Embed(6).Lstm(8).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 11)) Convention.Torch 3L
            torch.manual_seed 4L |> ignore
            let x = torch.randint(1L, 11L, [| 16L; 7L |], dtype = torch.ScalarType.Int64)
            let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
            use session = new TrainingSession(net, FitOptions(Loss = Loss.Bce, Optimizer = OptimizerSpec.Sgd(0.0)))
            session.Step(SequenceData(x, y)) |> ignore
            let first = [ for n in paramNames net -> n, values (param net n).grad ]
            session.Step(SequenceData(x, y)) |> ignore
            for n, g in first do
                Expect.isTrue (g |> Array.exists ((<>) 0.0f)) $"{n} has a gradient"
                Expect.equal (values (param net n).grad) g $"{n}: the same gradient, not twice it"
            // dropped, not zero-filled: libtorch then keeps the next pass's gradient as it comes (no fill, no add)
            session.ClearGradients()
            for n in paramNames net do Expect.isNull (param net n).grad $"{n}: no gradient until the next pass"
        }

        test "TrainingProgress.OnEpoch reports each finished epoch, in order, on the training thread" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let seen = System.Collections.Generic.List<int * int>()
            let progress = TrainingProgress.OnEpoch(fun e -> seen.Add((e.Epoch, Environment.CurrentManagedThreadId)))
            Trainer.Fit(net, tokenTask 64 1L, Bce.Opts(epochs = 3, progress = progress)) |> ignore
            Expect.equal (List.ofSeq seen) [ for e in 1 .. 3 -> e, Environment.CurrentManagedThreadId ] "epochs 1, 2, 3 on this thread"
        }

        test "a seed makes CPU training bit-identical" {
            let run () =
                use net = compile (Model.Embed(8).SpatialDropout(0.2).Gru(8).Dropout(0.3).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 8)) Convention.Torch 5L
                let h = Trainer.Fit(net, tokenTask 256 2L, Bce.Opts(epochs = 2, seed = 9L))
                h.Epochs |> Seq.map (fun e -> e.["loss"]) |> List.ofSeq, paramNames net |> List.map (fun n -> values (param net n))
            let a = run ()
            let b = run ()
            Expect.equal (fst a) (fst b) "identical losses"
            Expect.equal (snd a) (snd b) "identical weights"
        }

        test "validation split holds out the LAST fraction, before shuffling" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let data = tokenTask 100 3L
            let h = Trainer.Fit(net, data, Bce.Opts(epochs = 1, validationSplit = 0.2))
            let last20 = Trainer.Evaluate(net, data.Slice(80L, 20L), Loss.Bce, [| Metric.Accuracy |])
            Expect.floatClose Accuracy.medium (h.Epochs.[0].["val_loss"]) last20.["loss"] "val_loss is the loss on rows 80..99"
        }

        test "metrics against a plain-array reference: accuracy, MSE, MAE, R²" {
            use net = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 3L
            torch.manual_seed 4L |> ignore
            let data = SequenceData(torch.randn(40L, 5L, 2L), torch.randn(40L, 1L) * 2.0)
            let m = Trainer.Evaluate(net, data, Loss.Mse, [| Metric.Mse; Metric.Mae; Metric.R2; Metric.Accuracy |], batchSize = 7)
            let p = values (Trainer.Predict(net, data.Inputs)) |> Array.map float
            let y = values data.Targets |> Array.map float
            let n = float p.Length
            let sse = Array.map2 (fun a b -> (a - b) ** 2.0) p y |> Array.sum
            let mean = Array.average y
            let sst = y |> Array.sumBy (fun v -> (v - mean) ** 2.0)
            Expect.floatClose Accuracy.medium m.["mse"] (sse / n) "mse"
            Expect.floatClose Accuracy.medium m.["loss"] (sse / n) "loss = mse"
            Expect.floatClose Accuracy.medium m.["mae"] ((Array.map2 (fun a b -> abs (a - b)) p y |> Array.sum) / n) "mae"
            Expect.floatClose Accuracy.medium m.["r2"] (1.0 - sse / sst) "r2"
            Expect.floatClose Accuracy.medium m.["accuracy"] ((Array.map2 (fun a b -> if Math.Round(a: float) = Math.Round(b: float) then 1.0 else 0.0) p y |> Array.sum) / n) "rounded accuracy"
        }

        test "evaluation with lengths (rows batched by length) equals the metrics of each row run alone" {
            use net = compile (Model.Embed(6, padding = 0).Lstm(8).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 10)) Convention.Torch 5L
            torch.manual_seed 6L |> ignore
            let lengths = [| for i in 0 .. 22 -> int64 (1 + (i * 7) % 15) |]
            let x = torch.randint(1L, 10L, [| 23L; 15L |], dtype = torch.ScalarType.Int64)
            x.masked_fill_(torch.arange(15L).unsqueeze(0).ge(torch.tensor(lengths).unsqueeze(1)), 0L) |> ignore
            let y = torch.randint(0L, 2L, [| 23L; 1L |]).to_type(torch.ScalarType.Float32)
            let m = Trainer.Evaluate(net, SequenceData(x, y, torch.tensor(lengths)), Loss.Bce, [| Metric.Accuracy |], batchSize = 4)
            let yy = values y |> Array.map float
            let p =
                [| for i in 0 .. 22 ->
                    use row = x.narrow(0, int64 i, 1L).narrow(1, 0L, lengths.[i])
                    use out = Trainer.Predict(net, row)
                    float (values out).[0] |]
            let bce = Array.map2 (fun (q: float) t -> -(t * log q + (1.0 - t) * log (1.0 - q))) p yy |> Array.average
            let acc = Array.map2 (fun (q: float) t -> if (q >= 0.5) = (t = 1.0) then 1.0 else 0.0) p yy |> Array.average
            Expect.floatClose Accuracy.medium m.["loss"] bce "mean BCE"
            Expect.floatClose Accuracy.medium m.["accuracy"] acc "accuracy"
        }

        test "per-token cross-entropy ignores padding; perplexity = exp(mean loss)" {
            use net = compile (Model.Embed(4).Gru(8, returnSequences = true).Dense(6, Activation.Softmax)) (InputSpec(Vocab = 6)) Convention.Torch 1L
            let x = torch.randint(1L, 6L, [| 4L; 5L |], dtype = torch.ScalarType.Int64)
            let y = torch.randint(0L, 6L, [| 4L; 5L |], dtype = torch.ScalarType.Int64)
            y.[0L, 4L] <- torch.tensor(-100L)
            let loss = Loss(LossKind.CrossEntropy, -100L)
            let m = Trainer.Evaluate(net, SequenceData(x, y), loss, [| Metric.Perplexity; Metric.Accuracy |])
            use probs = Trainer.Predict(net, x)
            let p = values probs
            let yy = values y
            let mutable ce, count = 0.0, 0
            for i in 0 .. 19 do
                if yy.[i] >= 0.0f then
                    ce <- ce - log (float p.[i * 6 + int yy.[i]])
                    count <- count + 1
            Expect.equal count 19 "one padded token skipped"
            Expect.floatClose Accuracy.medium m.["loss"] (ce / 19.0) "mean CE over real tokens"
            Expect.floatClose Accuracy.medium m.["perplexity"] (exp (ce / 19.0)) "perplexity"
        }

        test "clipping by global norm follows d2l: g ← (θ/‖g‖)·g" {
            use net = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 3L
            let before = paramNames net |> List.map (fun n -> values (param net n))
            let data = SequenceData(torch.randn(8L, 5L, 2L) * 10.0, torch.ones(8L, 1L) * 100.0)
            Trainer.Fit(net, data, FitOptions(Epochs = 1, BatchSize = 8, Shuffle = false, Loss = Loss.Mse, Optimizer = OptimizerSpec.Sgd(1.0), Clip = Clip.ByNorm(0.5))) |> ignore
            let after = paramNames net |> List.map (fun n -> values (param net n))
            let sq = List.map2 (fun (a: float32[]) b -> Array.map2 (fun x y -> float (x - y) ** 2.0) a b |> Array.sum) before after |> List.sum
            Expect.floatClose Accuracy.medium (sqrt sq) 0.5 "update norm = lr·θ"
        }

        test "clipping by value bounds every element (seed 001's ±2)" {
            use net = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 3L
            let before = paramNames net |> List.map (fun n -> values (param net n))
            let data = SequenceData(torch.randn(8L, 5L, 2L) * 10.0, torch.ones(8L, 1L) * 100.0)
            Trainer.Fit(net, data, FitOptions(Epochs = 1, BatchSize = 8, Loss = Loss.Mse, Optimizer = OptimizerSpec.Sgd(0.1), Clip = Clip.ByValue(2.0))) |> ignore
            let after = paramNames net |> List.map (fun n -> values (param net n))
            let biggest = List.map2 (fun (a: float32[]) b -> Array.map2 (fun x y -> abs (x - y)) a b |> Array.max) before after |> List.max
            Expect.isLessThanOrEqual biggest 0.2000001f "|Δw| ≤ lr·2"
            Expect.isGreaterThan biggest 0.19f "the clip was active"
        }

        test "step schedule and reduce-on-plateau change the learning rate" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let h = Trainer.Fit(net, tokenTask 64 1L, Bce.Opts(epochs = 4, schedule = Schedule.Step(2, 0.5)))
            Expect.equal [ for e in h.Epochs -> e.LearningRate ] [ 0.01; 0.01; 0.005; 0.005 ] "each record holds the rate its epoch trained with; halved after epochs 2 and 4"
            use net2 = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let h2 = Trainer.Fit(net2, tokenTask 64 1L, Bce.Opts(epochs = 3, optimizer = OptimizerSpec.Sgd(1e-9), schedule = Schedule.ReduceOnPlateau("loss", 0.1, 1)))
            Expect.isLessThan (h2.Epochs.[2].LearningRate) 1e-9 "reduced when the loss does not improve"
        }

        test "early stopping restores the best epoch's weights" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let data = tokenTask 200 5L
            let opts = Bce.Opts(epochs = 40, validationSplit = 0.3, optimizer = OptimizerSpec.Adam(0.05), earlyStopping = EarlyStopping("val_loss", 2, true))
            let h = Trainer.Fit(net, data, opts)
            let vals = h.Series "val_loss"
            let bestEpoch = (vals |> Seq.mapi (fun i v -> i + 1, v) |> Seq.minBy snd |> fst)
            Expect.isLessThan h.Epochs.Count 40 "training stopped before its 40 epochs"
            Expect.equal h.Epochs.Count (bestEpoch + 2) "two epochs without improvement after the best, then it stopped"
            Expect.stringContains h.StopReason "early stopping: val_loss did not improve for 2 epochs" "the stop reason says why"
            Expect.equal h.RestoredEpoch (Nullable bestEpoch) "restored the best epoch"
            let now = Trainer.Evaluate(net, data.Slice(140L, 60L), Loss.Bce, [||])
            Expect.floatClose Accuracy.medium now.["loss"] (Seq.min vals) "weights are the best epoch's"
        }

        test "seed 000's 40-step counting RNN stops on the non-finite loss with finite weights" {
            use net = compile (Model.SimpleRnn(1, Activation.Linear, Bias.None)) (InputSpec(Features = 1)) Convention.Torch 0L
            net.Assign("layers.0.rnn.weight_ih_l0", -2.0f)
            net.Assign("layers.0.rnn.weight_hh_l0", 0.0f)
            let h = Trainer.Fit(net, SequenceData.From(Synthetic.OneSequence(String.replicate 4 "0000101010")),
                                FitOptions(Epochs = 150, BatchSize = 1, Shuffle = false, Optimizer = OptimizerSpec.Sgd(5e-4), Loss = Loss.Mse))
            Expect.isTrue h.StoppedOnNonFiniteLoss "stopped"
            Expect.isLessThan h.Epochs.Count 150 "before the last epoch"
            Expect.stringContains h.StopReason $"at epoch {h.Epochs.Count + 1}, batch 1" "names epoch and batch"
            for n in paramNames net do
                Expect.isTrue (values (param net n) |> Array.forall Single.IsFinite) $"{n} finite"
        }

        test "cancellation stops between batches" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            use cts = new CancellationTokenSource()
            let progress = { new IProgress<TrainingProgress> with member _.Report p = if p.Batch = 2 then cts.Cancel() }
            let h = Trainer.Fit(net, tokenTask 256 1L, Bce.Opts(epochs = 3, progress = progress, cancellation = cts.Token))
            Expect.equal h.StopReason "cancelled at epoch 1, batch 3" "reason"
        }

        test "progress: one event per batch and one per epoch end" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let events = ResizeArray<TrainingProgress>()
            let progress = { new IProgress<TrainingProgress> with member _.Report p = events.Add p }
            Trainer.Fit(net, tokenTask 100 1L, Bce.Opts(epochs = 2, progress = progress)) |> ignore
            Expect.equal events.Count (2 * 4 + 2) "4 batches of 32 per epoch, plus 2 epoch ends"
            Expect.equal (events |> Seq.filter (fun e -> not (isNull (box e.EpochEnd))) |> Seq.length) 2 "epoch ends"
        }

        test "memory stays flat: live native tensors do not grow across epochs" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let data = tokenTask 256 1L
            let live () = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            Trainer.Fit(net, data, Bce.Opts(epochs = 1)) |> ignore
            let after1 = live ()
            Trainer.Fit(net, data, Bce.Opts(epochs = 5)) |> ignore
            let after5 = live ()
            Expect.isLessThanOrEqual (after5 - after1) 2L $"live tensors {after1} → {after5}"
        }

        test "resuming from saved state continues exactly as an uninterrupted run" {
            let model = Model.Embed(8).Lstm(8).Dropout(0.3).Dense(1, Activation.Sigmoid)
            let data = tokenTask 128 7L
            let opts epochs dir = Bce.Opts(seed = 3L, schedule = Schedule.Step(1, 0.7), epochs = epochs, ?stateDirectory = dir)
            use straight = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            let h = Trainer.Fit(straight, data, opts 4 None)
            let dir = tempDir ()
            use first = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            Trainer.Fit(first, data, opts 2 (Some dir)) |> ignore
            use resumed = compile model (InputSpec(Vocab = 8)) Convention.Torch 99L
            let h2 = Trainer.Fit(resumed, data, opts 4 (Some dir))
            Expect.equal (List.ofSeq (h2.Series "loss")) (List.ofSeq (h.Series "loss")) "same losses, epochs 1-4"
            for n in paramNames straight do
                Expect.equal (values (param resumed n)) (values (param straight n)) $"{n} bit-identical"
            Directory.Delete(dir, true)
        }

        test "training whose activations cannot fit is refused before the first batch, with the estimate" {
            use net = compile (Model.Lstm(64).Dense(1)) (InputSpec(Features = 8)) Convention.Torch 1L
            let huge =
                { new IBatchSource with
                    member _.Epoch _ = failwith "no batch may be drawn"
                    member _.CarriesState = false
                    member _.BatchShape = struct (1_000_000, 1_000_000L)
                    member _.SaveState() = [||]
                    member _.RestoreState(_, _) = () }
            let e = expectSeqDslError "huge batches" (fun () -> Trainer.Fit(net, huge, FitOptions(Epochs = 1)))
            Expect.stringContains e.Message "on batches of 1000000 × 1000000 steps needs about" "the estimate"
            Expect.stringContains e.Message "activations" "names the activations"
            Expect.isLessThan (net.ActivationBytes(32, 100L)) 10e6 "a small model's estimate stays small (64 units × 6 × 100 steps × 32 rows, ×2)"
        }

        test "a run killed inside an epoch resumes from its last batch checkpoint to the uninterrupted result" {
            // 96 rows in batches of 8: 12 batches per epoch, a checkpoint after every 5th; dropout draws from the global RNG
            let model = Model.Embed(8).Lstm(8).Dropout(0.3).Dense(1, Activation.Sigmoid)
            let data = tokenTask 96 7L
            let opts dir = FitOptions(Loss = Loss.Bce, Metrics = [| Metric.Accuracy |], BatchSize = 8, Epochs = 2, Seed = 3L,
                                      Optimizer = OptimizerSpec.Adam(0.01), StateDirectory = dir, CheckpointEveryBatches = Nullable 5)
            use straight = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            let h = Trainer.Fit(straight, data, opts null)
            let expected = [ for n in paramNames straight -> values (param straight n) ]
            // each save is 11 or 12 file operations; kill inside the 2nd (epoch 1, batch 10), 3rd (end of epoch 1) and 4th
            // (epoch 2, batch 5) saves
            for k in [ 14; 25; 40 ] do
                let dir = tempDir ()
                use killed = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
                TrainingState.FailAtOperation <- Nullable k
                let died = try Trainer.Fit(killed, data, opts dir) |> ignore; false with :? IOException -> true
                TrainingState.FailAtOperation <- Nullable()
                Expect.isTrue died $"kill at operation {k}"
                use resumed = compile model (InputSpec(Vocab = 8)) Convention.Torch 99L
                let h2 = Trainer.Fit(resumed, data, opts dir)
                Expect.equal (List.ofSeq (h2.Series "loss")) (List.ofSeq (h.Series "loss")) $"kill at operation {k}: same epoch losses (running sums resumed)"
                Expect.equal (List.ofSeq (h2.Series "accuracy")) (List.ofSeq (h.Series "accuracy")) $"kill at operation {k}: same accuracies"
                Expect.equal [ for n in paramNames resumed -> values (param resumed n) ] expected $"kill at operation {k}: same weights"
                Directory.Delete(dir, true)
        }

        test "a save killed at any of its file operations resumes to the uninterrupted result" {
            // the state is one unit per epoch: a kill before it is published leaves the previous epoch's, after it the new one
            let model = Model.Embed(8).Lstm(8).Dropout(0.3).Dense(1, Activation.Sigmoid)
            let data = tokenTask 96 7L
            let opts dir = Bce.Opts(seed = 3L, epochs = 3, stateDirectory = dir)
            use straight = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            let h = Trainer.Fit(straight, data, Bce.Opts(seed = 3L, epochs = 3))
            let expected = [ for n in paramNames straight -> values (param straight n) ]
            // count the file operations of the first two saves: every operation of the second save is a kill point
            let operations epochs =
                use counting = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
                TrainingState.FailAtOperation <- Nullable 1000000
                Trainer.Fit(counting, data, Bce.Opts(seed = 3L, epochs = epochs, stateDirectory = tempDir ())) |> ignore
                let n = TrainingState.Operations
                TrainingState.FailAtOperation <- Nullable()
                n
            let firstSave, twoSaves = operations 1, operations 2
            let mutable tried = 0
            for k in firstSave .. twoSaves do
                let dir = tempDir ()
                use killed = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
                TrainingState.FailAtOperation <- Nullable k
                let died = try Trainer.Fit(killed, data, opts dir) |> ignore; false with :? IOException -> true
                TrainingState.FailAtOperation <- Nullable()
                if died then
                    tried <- tried + 1
                    use resumed = compile model (InputSpec(Vocab = 8)) Convention.Torch 99L
                    let h2 = Trainer.Fit(resumed, data, opts dir)
                    Expect.equal (List.ofSeq (h2.Series "loss")) (List.ofSeq (h.Series "loss")) $"kill at operation {k}: same losses"
                    Expect.equal [ for n in paramNames resumed -> values (param resumed n) ] expected $"kill at operation {k}: same weights"
                    Expect.equal (Directory.GetDirectories dir |> Array.map Path.GetFileName |> List.ofArray) [ "epoch-000003" ] "one generation left, no leftovers"
                Directory.Delete(dir, true)
            Expect.equal tried (twoSaves - firstSave + 1) "every file operation of the second save (and the third's first) was a kill point"
            Expect.isGreaterThanOrEqual tried 12 "create, seven files, sync, publish, sync, remove the older generation, and the next save's first"
        }

        test "resuming keeps the callbacks' state: the best checkpoint, early stopping and the plateau schedule continue" {
            // a learning rate high enough that validation loss is best early and worse later: after a resume the
            // checkpoint must not be overwritten by a worse epoch, and patience must not restart
            let model = Model.Embed(8).Lstm(8).Dense(1, Activation.Sigmoid)
            let data = tokenTask 160 11L
            let opts epochs checkpoint state =
                FitOptions(Epochs = epochs, BatchSize = 32, Loss = Loss.Bce, Optimizer = OptimizerSpec.Adam(0.3), ValidationSplit = 0.25, Seed = 4L,
                           CheckpointDirectory = checkpoint, CheckpointMonitor = "val_loss",
                           EarlyStopping = EarlyStopping("val_loss", Patience = 3, RestoreBest = true),
                           Schedule = Schedule.ReduceOnPlateau("val_loss", 0.5, 2), StateDirectory = state)
            let straightCkpt = tempDir ()
            use straight = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            let h = Trainer.Fit(straight, data, opts 6 straightCkpt null)
            let vl = h.Series "val_loss" |> List.ofSeq
            let bestEpoch = 1 + List.findIndex ((=) (List.min vl)) vl
            // the scenario: a later epoch is worse than the best one, so resuming right after the best epoch is where
            // a forgotten best value would let the next (worse) epoch overwrite the checkpoint
            Expect.isLessThan bestEpoch vl.Length $"the scenario: an epoch after the best one ({vl})"
            Expect.isNotNull h.StopReason "the scenario: early stopping fires"
            Expect.isGreaterThan ([ for e in h.Epochs -> e.LearningRate ] |> List.distinct |> List.length) 1 "the scenario: the plateau cuts the rate"
            let ckpt, state = tempDir (), tempDir ()
            use first = compile model (InputSpec(Vocab = 8)) Convention.Torch 2L
            Trainer.Fit(first, data, opts bestEpoch ckpt state) |> ignore
            use resumed = compile model (InputSpec(Vocab = 8)) Convention.Torch 99L
            let h2 = Trainer.Fit(resumed, data, opts 6 ckpt state)
            Expect.equal (List.ofSeq (h2.Series "val_loss")) vl "same validation losses"
            let rates (h: History) = [ for e in h.Epochs -> e.LearningRate ]
            Expect.equal (rates h2) (rates h) "the plateau schedule continued"
            Expect.equal h2.StopReason h.StopReason "early stopping at the same epoch"
            Expect.equal h2.RestoredEpoch h.RestoredEpoch "the same best epoch restored"
            use a = ModelStore.Load straightCkpt
            use b = ModelStore.Load ckpt
            for n in paramNames a do
                Expect.equal (values (param b n)) (values (param a n)) $"checkpoint {n}: the best epoch's, not a later worse one"
            for n in paramNames straight do
                Expect.equal (values (param resumed n)) (values (param straight n)) $"final {n} bit-identical"
            for d in [ straightCkpt; ckpt; state ] do Directory.Delete(d, true)
        }

        test "a diverging classifier with BCE stops on the non-finite loss instead of libtorch's BCE error" {
            // the issue's case: a linear recurrence with a huge learning rate sends the sigmoid's input to ±inf, then NaN
            use net = compile (Model.Embed(8).SimpleRnn(16, activation = Activation.Linear).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 8)) Convention.Torch 1L
            torch.manual_seed 3L |> ignore
            let x = torch.randint(1L, 8L, [| 256L; 80L |], dtype = torch.ScalarType.Int64)
            let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
            let h = Trainer.Fit(net, SequenceData(x, y), Bce.Opts(epochs = 20, optimizer = OptimizerSpec.Adam(10.0)))
            Expect.isTrue h.StoppedOnNonFiniteLoss $"stopped on a non-finite loss: {h.StopReason}"
            Expect.stringContains h.StopReason "NaN" "says NaN"
            for n in paramNames net do
                Expect.isTrue (values (param net n) |> Array.forall System.Single.IsFinite) $"{n} finite"
        }

        test "a monitor is a name and a direction: auto from the name, or given" {
            Expect.equal (Monitor.Of("val_accuracy", System.Nullable())).Mode MonitorMode.Max "accuracy: higher is better"
            Expect.equal (Monitor.Of("val_loss", System.Nullable())).Mode MonitorMode.Min "loss: lower is better"
            let f1 = Monitor.Of("val_f1", System.Nullable MonitorMode.Max)
            Expect.isTrue (f1.Improves(0.8, 0.7)) "given Max: 0.8 beats 0.7"
            Expect.isFalse ((Monitor.Auto "val_f1").Improves(0.8, 0.7)) "auto would have taken it for a loss"
            Expect.isTrue (f1.Improves(0.7, nan)) "anything beats no value yet"
            Expect.isFalse (f1.Improves(nan, 0.7)) "NaN never improves"
            Expect.isFalse ((Monitor.Auto "loss").Improves(0.95, 1.0, 0.1)) "min delta"
        }

        test "wrong targets and incompatible losses are clear errors" {
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let data = tokenTask 10 1L
            let e = expectSeqDslError "targets" (fun () -> Trainer.Fit(net, SequenceData(data.Inputs, torch.zeros(10L, 3L)), Bce.Opts(epochs = 1)))
            Expect.equal e.LayerKind "Dense" "names the output layer"
            Expect.stringContains e.Received "targets [10, 3]" "received"
            let e2 = expectSeqDslError "bce with logits on sigmoid" (fun () -> Trainer.Fit(net, data, FitOptions(Loss = Loss.BceWithLogits)))
            Expect.stringContains e2.Message "expects raw scores" "reason"
            let e3 = expectSeqDslError "rows" (fun () -> Trainer.Fit(net, SequenceData(data.Inputs, torch.zeros(9L, 1L)), Bce.Opts()))
            Expect.stringContains e3.Message "10 input rows but 9 target rows" "rows"
        }
    
        test "bucketing by length: every row once per epoch, fewer padded steps, and it learns" {
            let n = 256
            torch.manual_seed 3L |> ignore
            let lengths = [| for i in 0 .. n - 1 -> int64 (3 + (i * 37) % 28) |]
            let x = torch.randint(1L, 8L, [| int64 n; 30L |], dtype = torch.ScalarType.Int64)
            for i in 0 .. n - 1 do x.[int64 i].narrow(0, lengths.[i], 30L - lengths.[i]).fill_(0L) |> ignore
            let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
            let data = SequenceData(x, y, torch.tensor lengths)
            let buckets = SeqDsl.Data.Sequences.Buckets(lengths |> Array.map int, 32, 1)
            Expect.equal (buckets |> Seq.concat |> Seq.sort |> List.ofSeq) [ 0 .. n - 1 ] "a partition"
            Expect.equal buckets.Count 8 "ceil(256 / 32) batches"
            // padded steps: every row of a batch runs to the batch's longest row
            let padded (batches: int[] seq) =
                batches |> Seq.sumBy (fun b -> let ls = b |> Array.map (fun i -> lengths.[i]) in int64 b.Length * Array.max ls - Array.sum ls)
            let shuffled = Array.init n id |> Array.sortBy (fun i -> (i * 7919 + 13) % n) |> Array.chunkBySize 32
            let bucketedPad, shuffledPad = padded buckets, padded shuffled
            Expect.isLessThan (float bucketedPad) (0.25 * float shuffledPad)
                (sprintf "bucketed batches pad %d steps, shuffled ones %d: under a quarter" bucketedPad shuffledPad)
            use net = compile (Model.Embed(8, padding = 0).Lstm(16).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 8)) Convention.Torch 1L
            let h = Trainer.Fit(net, data, FitOptions(Epochs = 8, BatchSize = 32, BucketByLength = true, Loss = Loss.Bce, Optimizer = OptimizerSpec.Adam(0.01)))
            Expect.isLessThan (h.Epochs.[7].["loss"]) (h.Epochs.[0].["loss"] / 2.0) "learns"
        }
    
        test "the best-model checkpoint holds the weights of the epoch with the best monitored value" {
            let dir = tempDir ()
            use net = compile tokenModel (InputSpec(Vocab = 8)) Convention.Torch 1L
            let data = tokenTask 200 5L
            let opts = FitOptions(Epochs = 6, BatchSize = 32, Loss = Loss.Bce, Optimizer = OptimizerSpec.Adam(0.05), ValidationSplit = 0.3,
                                  CheckpointDirectory = dir, CheckpointMonitor = "val_loss")
            let h = Trainer.Fit(net, data, opts)
            use best = ModelStore.Load dir
            let m = Trainer.Evaluate(best, data.Slice(140L, 60L), Loss.Bce, [||])
            Expect.floatClose Accuracy.medium m.["loss"] (h.Series "val_loss" |> Seq.min) "the checkpoint is the best epoch's model"
        }
    ]
