/// Keras's optimizer rules (OptimizerRules.Keras) against a float64 plain-array reference of TensorFlow's update
/// equations over several steps, with batches that leave embedding rows out (sparse rows for RMSprop and momentum SGD);
/// the convention chooses the rules and a spec can override them; the state resumes bit for bit.
module SeqDsl.Tests.KerasOptimizerTests

open System
open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

type private Algo = KerasOptimizer.Algorithm

/// The batches: token ids (rows of the 7 × 3 table E) and per-token coefficients c (2 values); the loss is
/// Σ_k (E[id_k] · W) · c_k, so ∂L/∂E[r] = Σ_{k: id_k = r} W c_k and ∂L/∂W = Σ_k E[id_k]ᵀ c_k. Every batch leaves rows
/// out; row 6 is never used; row 4 comes last with a gradient near 1e-5, where ε's place decides the step (RMSprop:
/// √(ms + ε) against √ms + ε; Adam: ε against ε·√(1 − β₂ᵗ)).
let private batches =
    [ [| 0; 2; 2 |], [| [| 0.5; -1.0 |]; [| 0.3; 0.2 |]; [| -0.7; 0.4 |] |]
      [| 1; 2 |], [| [| 1.0; 0.1 |]; [| -0.2; 0.9 |] |]
      [| 0; 0; 5 |], [| [| 0.05; -0.3 |]; [| 0.6; 0.6 |]; [| -1.2; 0.2 |] |]
      [| 3 |], [| [| 0.4; -0.8 |] |]
      [| 1; 5; 2 |], [| [| -0.3; 0.3 |]; [| 0.2; 0.1 |]; [| 0.9; -0.5 |] |]
      [| 4; 0 |], [| [| 1e-4; 2e-4 |]; [| 0.1; -0.1 |] |] ]

let private initialE = Array2D.init 7 3 (fun i j -> 0.1 * float (i + 1) - 0.07 * float j)
let private initialW = Array2D.init 3 2 (fun i j -> 0.2 - 0.15 * float i + 0.1 * float j)

/// TensorFlow's kernels in float64: ApplyRMSProp / ApplyAdam / ApplyKerasMomentum / ApplyAdagradV2, and their sparse
/// forms for the table (only the rows of the batch, for RMSprop and momentum SGD); keras.optimizers.AdamW: the decay
/// θ ← θ − θ·λ·lr on every row, then Adam's step. With <paramref name="torchAdamW"/>, PyTorch's AdamW instead:
/// θ ← θ(1 − lr·λ), then θ ← θ − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + 1e-8).
let private reference (algo: Algo) (lr: float) (momentum: float) (decay: float) (torchAdamW: bool) =
    let e = Array2D.copy initialE
    let w = Array2D.copy initialW
    let eps = 1e-7
    let slot1E = Array2D.create 7 3 (if algo = Algo.Adagrad then 0.1 else 0.0)
    let slot2E = Array2D.zeroCreate 7 3
    let slot1W = Array2D.create 3 2 (if algo = Algo.Adagrad then 0.1 else 0.0)
    let slot2W = Array2D.zeroCreate 3 2
    let mutable t = 0
    [ for (ids, c) in batches do
        t <- t + 1
        let gE = Array2D.zeroCreate 7 3
        let gW = Array2D.zeroCreate 3 2
        for k in 0 .. ids.Length - 1 do
            for j in 0 .. 2 do
                for o in 0 .. 1 do
                    gE.[ids.[k], j] <- gE.[ids.[k], j] + w.[j, o] * c.[k].[o]
                    gW.[j, o] <- gW.[j, o] + e.[ids.[k], j] * c.[k].[o]
        let update (v: float[,]) (g: float[,]) (s1: float[,]) (s2: float[,]) (touched: int -> bool) =
            for i in 0 .. Array2D.length1 v - 1 do
                if touched i then
                    for j in 0 .. Array2D.length2 v - 1 do
                        let gr = g.[i, j]
                        match algo with
                        | Algo.RmsProp ->
                            s1.[i, j] <- 0.9 * s1.[i, j] + 0.1 * gr * gr
                            v.[i, j] <- v.[i, j] - lr * gr / sqrt (s1.[i, j] + eps)
                        | Algo.AdamW when torchAdamW ->
                            v.[i, j] <- v.[i, j] * (1.0 - lr * decay)
                            s1.[i, j] <- 0.9 * s1.[i, j] + 0.1 * gr
                            s2.[i, j] <- 0.999 * s2.[i, j] + 0.001 * gr * gr
                            let denominator = sqrt s2.[i, j] / sqrt (1.0 - 0.999 ** float t) + 1e-8
                            v.[i, j] <- v.[i, j] - lr / (1.0 - 0.9 ** float t) * s1.[i, j] / denominator
                        | Algo.Adam | Algo.AdamW ->
                            if algo = Algo.AdamW then v.[i, j] <- v.[i, j] - v.[i, j] * decay * lr
                            s1.[i, j] <- 0.9 * s1.[i, j] + 0.1 * gr
                            s2.[i, j] <- 0.999 * s2.[i, j] + 0.001 * gr * gr
                            let rate = lr * sqrt (1.0 - 0.999 ** float t) / (1.0 - 0.9 ** float t)
                            v.[i, j] <- v.[i, j] - rate * s1.[i, j] / (sqrt s2.[i, j] + eps)
                        | Algo.Sgd ->
                            s1.[i, j] <- momentum * s1.[i, j] - lr * gr
                            v.[i, j] <- v.[i, j] + s1.[i, j]
                        | _ ->
                            s1.[i, j] <- s1.[i, j] + gr * gr
                            v.[i, j] <- v.[i, j] - lr * gr / (sqrt s1.[i, j] + eps)
        let sparse = algo = Algo.RmsProp || (algo = Algo.Sgd && momentum <> 0.0)
        update e gE slot1E slot2E (fun r -> not sparse || Array.contains r ids)
        update w gW slot1W slot2W (fun _ -> true)
        yield Array2D.copy e, Array2D.copy w ]

let private toTensor (a: float[,]) = torch.tensor(Array.init (a.Length) (fun k -> float32 a.[k / Array2D.length2 a, k % Array2D.length2 a])).reshape(int64 (Array2D.length1 a), int64 (Array2D.length2 a))

/// The batches' steps with an optimizer over E and W; returns E and W after each step.
let private run (e: TorchSharp.Modules.Parameter) (w: TorchSharp.Modules.Parameter) (opt: torch.optim.Optimizer) =
    [ for (ids, c) in batches do
        opt.zero_grad()
        use idx = torch.tensor(Array.map int64 ids)
        use coef = torch.tensor(Array.concat c |> Array.map float32).reshape(int64 ids.Length, 2L)
        use loss = (e.index_select(0L, idx).matmul(w) * coef).sum()
        loss.backward()
        referenceStep opt
        yield values e, values w ]

/// The same steps with KerasOptimizer on float32 parameters; returns E and W after each step.
let private withOptimizer (algo: Algo) (lr: float) (momentum: float) (decay: float) =
    use e = new TorchSharp.Modules.Parameter(toTensor initialE)
    use w = new TorchSharp.Modules.Parameter(toTensor initialW)
    use opt = new KerasOptimizer([ e; w ], [ e ], algo, lr, momentum = momentum, weightDecay = decay)
    let result = run e w opt
    // RMSprop, Adam and AdamW on float32 CPU parameters take the fused loops (FusedUpdates): these checks are theirs
    let fused = if FusedUpdates.Enabled && (algo = Algo.RmsProp || algo = Algo.Adam || algo = Algo.AdamW) then 2L * int64 batches.Length else 0L
    Expect.equal opt.FusedParameterUpdates fused $"{algo}: updates by the fused loops"
    result

let private close (name: string) (got: float32[]) (expected: float[,]) =
    let flat = Array.init expected.Length (fun k -> expected.[k / Array2D.length2 expected, k % Array2D.length2 expected])
    for k in 0 .. flat.Length - 1 do
        let err = abs (float got.[k] - flat.[k])
        if err > 1e-5 * max 1.0 (abs flat.[k]) then failtestf "%s[%d]: %g, reference %g (error %g)" name k got.[k] flat.[k] err

[<Tests>]
let tests =
    testSequenced <| testList "KerasOptimizer" [
        for (algo, lr, momentum) in [ Algo.RmsProp, 0.01, 0.0; Algo.Adam, 0.01, 0.0; Algo.Sgd, 0.1, 0.0; Algo.Sgd, 0.1, 0.9; Algo.Adagrad, 0.1, 0.0 ] do
            test $"{algo} (lr {lr}, momentum {momentum}) follows TensorFlow's equations within 1e-5 over six steps, rows left out included" {
                let expected = reference algo lr momentum 0.0 false
                let got = withOptimizer algo lr momentum 0.0
                for (step, ((e, w), (re, rw))) in List.indexed (List.zip got expected) do
                    close $"step {step + 1} E" e re
                    close $"step {step + 1} W" w rw
                // row 6 is in no batch: it never moves
                let last, _ = List.last got
                Expect.sequenceEqual last.[18..20] [| for j in 0 .. 2 -> float32 initialE.[6, j] |] "an unused row keeps its initial values"
            }

        // a large decay (λ·lr = 0.005 per step) so that a misplaced or missing decay is far outside the tolerance
        test "AdamW (lr 0.01, λ 0.5) follows keras.optimizers.AdamW within 1e-5 over six steps: decay first, on every row" {
            let expected = reference Algo.AdamW 0.01 0.0 0.5 false
            let got = withOptimizer Algo.AdamW 0.01 0.0 0.5
            for (step, ((e, w), (re, rw))) in List.indexed (List.zip got expected) do
                close $"step {step + 1} E" e re
                close $"step {step + 1} W" w rw
            // row 6 is in no batch: only the decay moves it, (1 − λ·lr)⁶
            let last, _ = List.last got
            close "unused row 6" last.[18..20] (Array2D.init 1 3 (fun _ j -> initialE.[6, j] * (1.0 - 0.5 * 0.01) ** 6.0))
            // and without the decay it would be Adam: the two differ far beyond the tolerance
            let adam, _ = List.last (withOptimizer Algo.Adam 0.01 0.0 0.0)
            Expect.isGreaterThan (Array.map2 (fun a b -> abs (a - b)) adam last |> Array.max) 1e-3f "the decay matters"
        }

        test "AdamW under libtorch's rules is PyTorch's AdamW (lr 0.01, λ 0.5) within 1e-5 over six steps" {
            let expected = reference Algo.AdamW 0.01 0.0 0.5 true
            use e = new TorchSharp.Modules.Parameter(toTensor initialE)
            use w = new TorchSharp.Modules.Parameter(toTensor initialW)
            // the optimizer the spec makes under the torch rules, as training makes it
            use opt = (OptimizerSpec.AdamW(0.01, 0.5)).Create([ e; w ], [ e ], OptimizerRules.Torch)
            Expect.isTrue (opt :? TorchSharp.Modules.AdamW) "libtorch's AdamW"
            let got = run e w opt
            for (step, ((ge, gw), (re, rw))) in List.indexed (List.zip got expected) do
                close $"step {step + 1} E" ge re
                close $"step {step + 1} W" gw rw
        }

        test "the sparse rows matter: libtorch's dense RMSprop ends elsewhere than Keras's on a row some batches leave out" {
            // row 2 is in batches 1, 2 and 5; under libtorch's rules its ms decays in batches 3 and 4 (zero gradient), so
            // its update in batch 5 is divided by a smaller root than under Keras's sparse rule
            let keras = withOptimizer Algo.RmsProp 0.01 0.0 0.0
            use e = new TorchSharp.Modules.Parameter(toTensor initialE)
            use w = new TorchSharp.Modules.Parameter(toTensor initialW)
            use opt = torch.optim.RMSProp([ e; w ], 0.01, alpha = 0.9, eps = 1e-7)
            let torchE, _ = run e w opt |> List.last
            let kerasE, _ = List.last keras
            Expect.isGreaterThan (abs (kerasE.[6] - torchE.[6])) 1e-4f "row 2 ends elsewhere under the two rules"
        }

        test "the convention chooses the rules; a spec can override them" {
            use keras = compile (Model.Embed(4).Lstm(3).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 9)) Convention.Keras 1L
            use torchNet = compile (Model.Embed(4).Lstm(3).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 9)) Convention.Torch 1L
            let session net (spec: OptimizerSpec) = new TrainingSession(net, FitOptions(Loss = Loss.Bce, Optimizer = spec))
            use a = session keras (OptimizerSpec.RmsProp(1e-3))
            Expect.equal a.Rules OptimizerRules.Keras "Keras convention → Keras rules"
            Expect.isTrue (a.Optimizer :? KerasOptimizer) "Keras's RMSprop"
            use b = session torchNet (OptimizerSpec.RmsProp(1e-3))
            Expect.equal b.Rules OptimizerRules.Torch "torch convention → libtorch's"
            Expect.isTrue (b.Optimizer :? TorchSharp.Modules.RMSProp) "libtorch's RMSprop"
            use c = session keras (OptimizerSpec.RmsProp(1e-3, Rules = Nullable OptimizerRules.Torch))
            Expect.isTrue (c.Optimizer :? TorchSharp.Modules.RMSProp) "overridden"
            Expect.equal (List.ofSeq keras.EmbeddingTables |> List.length) 1 "the embedding table is the sparse parameter"
            use d = session keras (OptimizerSpec.AdamW(1e-3, 0.1))
            Expect.isTrue (d.Optimizer :? KerasOptimizer) "Keras's AdamW under the Keras rules"
            use f = session torchNet (OptimizerSpec.AdamW(1e-3, 0.1))
            Expect.isTrue (f.Optimizer :? TorchSharp.Modules.AdamW) "libtorch's AdamW under the torch rules"
        }

        for optimizer in [ OptimizerSpec.RmsProp(0.01) :> OptimizerSpec; OptimizerSpec.AdamW(0.01, 0.1) ] do
            test $"training under Keras's rules resumes bit for bit (the optimizer's slots are in the state): {optimizer.GetType().Name}" {
                let model = Model.Embed(8).Lstm(8).Dense(1, Activation.Sigmoid)
                torch.manual_seed 7L |> ignore
                let x = torch.randint(1L, 8L, [| 96L; 10L |], dtype = torch.ScalarType.Int64)
                let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
                let data = SequenceData(x, y)
                let opts epochs dir = FitOptions(Loss = Loss.Bce, BatchSize = 16, Epochs = epochs, Seed = 2L, Optimizer = optimizer, StateDirectory = dir)
                use straight = compile model (InputSpec(Vocab = 8)) Convention.Keras 2L
                let h = Trainer.Fit(straight, data, opts 4 null)
                let dir = tempFolder "keras-resume"
                use first = compile model (InputSpec(Vocab = 8)) Convention.Keras 2L
                Trainer.Fit(first, data, opts 2 dir) |> ignore
                use resumed = compile model (InputSpec(Vocab = 8)) Convention.Keras 5L
                let h2 = Trainer.Fit(resumed, data, opts 4 dir)
                Expect.equal (List.ofSeq (h2.Series "loss")) (List.ofSeq (h.Series "loss")) "same losses"
                for n in paramNames straight do Expect.equal (values (param resumed n)) (values (param straight n)) $"{n}"
            }
    ]
