/// The fused CPU optimizer steps (FusedUpdates): libtorch's Adam and RMSprop in one pass per parameter against
/// libtorch's own optimizers on the same parameters and gradients (a parameter split over threads, a tail shorter
/// than a vector, a parameter without a gradient), the fallback to the tensor update (non-contiguous, float64, options
/// the loop does not cover) and SGD, AdamW and Adagrad (SeqDsl's TorchUpdates against TorchSharp's classes, bit for
/// bit), the closure, a checkpoint saved and loaded mid-run; Keras's RMSprop/Adam/AdamW fast path
/// against KerasOptimizer's own tensor code on a large embedding table whose batches leave rows out.
module SeqDsl.Tests.FusedOptimizerTests

open System
open System.IO
open Expecto
open TorchSharp
open TorchSharp.Modules
open SeqDsl.Training
open SeqDsl.Tests.TorchSupport
open SeqDsl.Tests.Support

/// Shapes of the test parameters: one larger than two chunks (split over libtorch's threads when it has several),
/// an embedding-like table, one whose size leaves a tail of 3 after the vectors, a bias.
let private shapes = [ [| 300_000L |]; [| 700L; 32L |]; [| 7L; 13L |]; [| 5L |] ]

let private randomArray (rng: Random) (n: int) (scale: float) =
    Array.init n (fun _ -> float32 ((rng.NextDouble() * 2.0 - 1.0) * scale))

/// Fresh parameters with the same values on every call (float32 unless told), plus one parameter that no loss uses.
let private parameters (dtype: torch.ScalarType) =
    let rng = Random 11
    let used =
        [ for s in shapes ->
            let n = Array.fold (*) 1L s |> int
            new Parameter(torch.tensor(randomArray rng n 1.0, dtype = dtype).reshape(s)) ]
    used, new Parameter(torch.ones([| 9L |], dtype = dtype))

/// The gradients of step t: fixed random values (some exactly zero, some tiny), the same for every optimizer.
let private gradient (t: int) (p: Parameter) =
    let rng = Random(1000 + 17 * t + int (p.numel() % 997L))
    let n = int (p.numel())
    let g = randomArray rng n 0.5 |> Array.mapi (fun i x -> if i % 11 = 0 then 0.0f elif i % 13 = 0 then x * 1e-6f else x)
    torch.tensor(g, dtype = p.dtype).reshape(p.shape)

/// Steps 1..steps: loss Σ θ·c_t over the used parameters, so each gradient is c_t exactly.
let private steps (first: int) (last: int) (ps: Parameter list) (opt: torch.optim.Optimizer) =
    for t in first .. last do
        opt.zero_grad()
        use scope = torch.NewDisposeScope()
        let loss = ps |> List.map (fun p -> (p * gradient t p).sum()) |> List.reduce (+)
        loss.backward()
        referenceStep opt

/// got against expected, element by element: |a − b| ≤ 1e-6·max(|a|, |b|, |b − start|, floor) (start: the values
/// before the updates, or none; floor: the learning rate, the size of one update, or 0). Where θ crosses zero its
/// value says nothing of the update's precision: there the distance moved and the size of a step are the scale.
/// (libtorch's vectorised sqrt is an ulp off the IEEE one in some elements, so θ agrees to about an ulp of each
/// update, not bit for bit.) Prints how many elements differ at all.
let private agreeFrom (start: float32[] option) (floor: float) (what: string) (got: torch.Tensor) (expected: torch.Tensor) =
    let a = values got
    let b = values expected
    Expect.equal a.Length b.Length $"{what}: size"
    let mutable worst = 0.0
    let mutable differ = 0
    let mutable at = 0
    for k in 0 .. a.Length - 1 do
        let err = abs (float a.[k] - float b.[k])
        let moved = match start with Some s0 -> abs (float b.[k] - float s0.[k]) | None -> 0.0
        let rel = if err = 0.0 then 0.0 else err / max (max floor moved) (max (abs (float a.[k])) (abs (float b.[k])))
        if rel > 0.0 then differ <- differ + 1
        if rel > worst then
            worst <- rel
            at <- k
    if differ > 0 then printfn "%s: %d of %d differ, largest relative %g at %d (%g vs %g)" what differ a.Length worst at a.[at] b.[at]
    if worst > 1e-6 then failtestf "%s[%d]: %g, expected %g (relative error %g; %d of %d differ)" what at a.[at] b.[at] worst differ a.Length
    worst

/// Slots and other values that must agree relative to their size (1e-6).
let private agree = agreeFrom None 0.0

let private adamStates (opt: torch.optim.Optimizer) =
    [ for s in (opt :?> OptimizerHelper).state_dict().State -> s :?> Modules.Adam.State ]

let private rmsStates (opt: torch.optim.Optimizer) =
    [ for s in (opt :?> OptimizerHelper).state_dict().State -> s :?> Modules.RMSProp.State ]

/// Fused updates a test expects: none when SEQDSL_FUSED_OPTIMIZER=0 turned the loops off (the comparisons still hold).
let private expectFused (n: int64) = if FusedUpdates.Enabled then n else 0L

let private fusedCount (opt: torch.optim.Optimizer) =
    match opt with
    | :? SeqDsl.Training.Fused.Adam as a -> a.FusedParameterUpdates
    | :? SeqDsl.Training.Fused.RMSProp as r -> r.FusedParameterUpdates
    | :? KerasOptimizer as k -> k.FusedParameterUpdates
    | _ -> failwith "not a fused optimizer"

type private Kind =
    | AdamK
    | RmsK

/// The learning rates of the torch-rules tests.
let private rate kind = match kind with AdamK -> 3e-3 | RmsK -> 1e-3

let private make (kind: Kind) (fused: bool) (all: Parameter list) : torch.optim.Optimizer =
    let ps = Seq.ofList all
    match kind, fused with
    | AdamK, true -> new SeqDsl.Training.Fused.Adam(ps, rate kind)
    | AdamK, false -> torch.optim.Adam(ps, rate kind)
    | RmsK, true -> new SeqDsl.Training.Fused.RMSProp(ps, rate kind, alpha = 0.9, eps = 1e-7)
    | RmsK, false -> torch.optim.RMSProp(ps, rate kind, alpha = 0.9, eps = 1e-7)

/// The fused optimizer and libtorch's over six steps on the same parameters; both parameter lists, with the unused ones.
let private sideBySide (kind: Kind) (dtype: torch.ScalarType) =
    let ps, unused = parameters dtype
    let qs, unused2 = parameters dtype
    let fused = make kind true (ps @ [ unused ])
    let reference = make kind false (qs @ [ unused2 ])
    steps 1 6 ps fused
    steps 1 6 qs reference
    fused, reference, (ps, unused), (qs, unused2)

[<Tests>]
let tests =
    testSequenced <| testList "FusedOptimizer" [
        for kind in [ AdamK; RmsK ] do
            test $"{kind}: the fused step agrees with libtorch's within 1e-6 relative over six steps (threaded split, tail, a parameter without a gradient)" {
                // two threads, so that the first parameter is split in chunks whatever the machine's default
                let threads = torch.get_num_threads()
                torch.set_num_threads 2
                let fused, reference, (ps, unused), (qs, unused2) =
                    try sideBySide kind torch.ScalarType.Float32 finally torch.set_num_threads threads
                use _f = fused
                use _r = reference
                Expect.equal (fusedCount fused) (expectFused (6L * int64 ps.Length)) "the fused loop updated every parameter with a gradient at every step"
                Expect.isGreaterThan (ps.[0].numel()) (2L * FusedUpdates.MinChunk) "the first parameter is split in two chunks"
                let mutable worst = 0.0
                let p0, _ = parameters torch.ScalarType.Float32
                for (i, (p, q)) in List.indexed (List.zip ps qs) do
                    worst <- max worst (agreeFrom (Some (values p0.[i])) (rate kind) $"θ{i}" p q)
                // the slots too
                match kind with
                | AdamK ->
                    for (i, (a, b)) in List.indexed (List.zip (adamStates fused) (adamStates reference)) do
                        Expect.equal a.step b.step $"step count {i}"
                        worst <- max worst (agree $"m{i}" a.exp_avg b.exp_avg)
                        worst <- max worst (agree $"v{i}" a.exp_avg_sq b.exp_avg_sq)
                | RmsK ->
                    for (i, (a, b)) in List.indexed (List.zip (rmsStates fused) (rmsStates reference)) do
                        Expect.equal a.step b.step $"step count {i}"
                        worst <- max worst (agree $"s{i}" a.square_avg b.square_avg)
                // the parameter without a gradient: untouched, no step counted
                Expect.equal (values unused) (values unused2) "the unused parameter"
                Expect.isTrue (values unused |> Array.forall ((=) 1.0f)) "the unused parameter keeps its values"
                let lastStep = match kind with AdamK -> (List.last (adamStates fused)).step | RmsK -> (List.last (rmsStates fused)).step
                Expect.equal lastStep 0L "no step counted for the parameter without a gradient"
                // and the parameters did move (a no-op update would agree with nothing)
                Expect.isGreaterThan (maxDiff ps.[0] p0.[0]) 1e-4f "θ moved"
                printfn "FusedOptimizer %A: largest relative difference from libtorch %g (threads %d)" kind worst (torch.get_num_threads())
            }

            test $"{kind}: float64 parameters take the tensor update (the fallback), with libtorch's results" {
                let fused, reference, (ps, _), (qs, _) = sideBySide kind torch.ScalarType.Float64
                use _f = fused
                use _r = reference
                Expect.equal (fusedCount fused) 0L "no fused update on float64"
                for (p, q) in List.zip ps qs do
                    Expect.equal (values p) (values q) "bit for bit libtorch's"
            }

            test $"{kind}: a non-contiguous parameter makes the whole step the tensor update, with libtorch's results" {
                let build () =
                    let ps, unused = parameters torch.ScalarType.Float32
                    let rng = Random 5
                    let t = new Parameter(torch.tensor(randomArray rng (40 * 24) 1.0).reshape(40L, 24L).t())
                    ps @ [ t ], unused
                let ps, unused = build ()
                let qs, unused2 = build ()
                Expect.isFalse ((List.last ps).is_contiguous()) "the test's parameter is a transposed view"
                use fused = make kind true (ps @ [ unused ])
                use reference = make kind false (qs @ [ unused2 ])
                steps 1 4 ps fused
                steps 1 4 qs reference
                Expect.equal (fusedCount fused) 0L "no fused update when one parameter is not contiguous"
                for (p, q) in List.zip ps qs do
                    Expect.equal (values p) (values q) "bit for bit libtorch's"
            }

        test "Adam with amsgrad or weight decay, RMSprop with momentum or centered: the tensor update, with libtorch's results" {
            let check (mk: Parameter list -> torch.optim.Optimizer) (reference: Parameter list -> torch.optim.Optimizer) =
                let ps, _ = parameters torch.ScalarType.Float32
                let qs, _ = parameters torch.ScalarType.Float32
                use a = mk ps
                use b = reference qs
                steps 1 3 ps a
                steps 1 3 qs b
                Expect.equal (fusedCount a) 0L "fallback"
                for (p, q) in List.zip ps qs do
                    Expect.equal (values p) (values q) "bit for bit libtorch's"
            check (fun ps -> new SeqDsl.Training.Fused.Adam(ps, 3e-3, amsgrad = true)) (fun ps -> torch.optim.Adam(ps, 3e-3, amsgrad = true))
            check (fun ps -> new SeqDsl.Training.Fused.Adam(ps, 3e-3, weight_decay = 0.1)) (fun ps -> torch.optim.Adam(ps, 3e-3, weight_decay = 0.1))
            check (fun ps -> new SeqDsl.Training.Fused.RMSProp(ps, 1e-3, momentum = 0.9)) (fun ps -> torch.optim.RMSProp(ps, 1e-3, momentum = 0.9))
            check (fun ps -> new SeqDsl.Training.Fused.RMSProp(ps, 1e-3, centered = true)) (fun ps -> torch.optim.RMSProp(ps, 1e-3, centered = true))
        }

        test "SGD, AdamW, Adagrad and the other options of Adam and RMSprop: SeqDsl's step is libtorch's, bit for bit" {
            // SeqDsl's own tensor code (TorchUpdates: every Scalar held) against TorchSharp's classes, whose steps pass
            // temporary Scalars; in float32 and float64 (Adam and RMSprop take the tensor code here for their options)
            let check (what: string) (mk: Parameter list -> torch.optim.Optimizer) (reference: Parameter list -> torch.optim.Optimizer) =
                for dtype in [ torch.ScalarType.Float32; torch.ScalarType.Float64 ] do
                    let ps, _ = parameters dtype
                    let qs, _ = parameters dtype
                    let p0, _ = parameters dtype
                    use a = mk ps
                    use b = reference qs
                    Expect.notEqual (a.GetType().Assembly) (b.GetType().Assembly) $"{what}: SeqDsl's class against TorchSharp's"
                    steps 1 4 ps a
                    steps 1 4 qs b
                    for (p, q) in List.zip ps qs do
                        Expect.equal (values p) (values q) $"{what} ({dtype}): bit for bit libtorch's"
                    Expect.isGreaterThan (maxDiff ps.[1] p0.[1]) 1e-5f $"{what}: θ moved"
            check "SGD" (fun ps -> new SeqDsl.Training.Fused.SGD(ps, 0.1)) (fun ps -> torch.optim.SGD(ps, 0.1))
            check "SGD with momentum" (fun ps -> new SeqDsl.Training.Fused.SGD(ps, 0.1, momentum = 0.9)) (fun ps -> torch.optim.SGD(ps, 0.1, momentum = 0.9))
            check "SGD, Nesterov, decay, maximizing"
                (fun ps -> new SeqDsl.Training.Fused.SGD(ps, 0.1, momentum = 0.8, weight_decay = 0.01, nesterov = true, maximize = true))
                (fun ps -> torch.optim.SGD(ps, 0.1, momentum = 0.8, weight_decay = 0.01, nesterov = true, maximize = true))
            check "SGD with dampening"
                (fun ps -> new SeqDsl.Training.Fused.SGD(ps, 0.1, momentum = 0.8, dampening = 0.1))
                (fun ps -> torch.optim.SGD(ps, 0.1, momentum = 0.8, dampening = 0.1))
            check "AdamW" (fun ps -> new SeqDsl.Training.Fused.AdamW(ps, 3e-3, weight_decay = 0.01)) (fun ps -> torch.optim.AdamW(ps, 3e-3, weight_decay = 0.01))
            check "AdamW, amsgrad, maximizing"
                (fun ps -> new SeqDsl.Training.Fused.AdamW(ps, 3e-3, weight_decay = 0.05, amsgrad = true, maximize = true))
                (fun ps -> torch.optim.AdamW(ps, 3e-3, weight_decay = 0.05, amsgrad = true, maximize = true))
            check "Adagrad" (fun ps -> new SeqDsl.Training.Fused.Adagrad(ps, 1e-2)) (fun ps -> torch.optim.Adagrad(ps, 1e-2))
            check "Adagrad, decay of the rate and the weights"
                (fun ps -> new SeqDsl.Training.Fused.Adagrad(ps, 1e-2, lr_decay = 0.1, weight_decay = 0.01, initial_accumulator_value = 0.5))
                (fun ps -> torch.optim.Adagrad(ps, 1e-2, lr_decay = 0.1, weight_decay = 0.01, initial_accumulator_value = 0.5))
            check "Adam, maximizing" (fun ps -> new SeqDsl.Training.Fused.Adam(ps, 3e-3, maximize = true)) (fun ps -> torch.optim.Adam(ps, 3e-3, maximize = true))
            check "RMSprop, centred, momentum, decay, maximizing"
                (fun ps -> new SeqDsl.Training.Fused.RMSProp(ps, 1e-3, momentum = 0.5, centered = true, weight_decay = 0.01, maximize = true))
                (fun ps -> torch.optim.RMSProp(ps, 1e-3, momentum = 0.5, centered = true, weight_decay = 0.01, maximize = true))
        }

        test "Adagrad's parameter groups: SeqDsl's states are TorchSharp's (accumulators at the initial value, no step)" {
            // SeqDsl's Adagrad adds its groups itself (TorchSharp's fills the accumulators from a temporary Scalar)
            let ps, _ = parameters torch.ScalarType.Float32
            let qs, _ = parameters torch.ScalarType.Float32
            use a = new SeqDsl.Training.Fused.Adagrad(ps, 1e-2, lr_decay = 0.1, initial_accumulator_value = 0.5)
            use b = torch.optim.Adagrad(qs, 1e-2, lr_decay = 0.1, initial_accumulator_value = 0.5)
            let states (o: torch.optim.Optimizer) = [ for s in (o :?> OptimizerHelper).state_dict().State -> s :?> Modules.Adagrad.State ]
            Expect.equal (states a).Length ps.Length "a state per parameter"
            for (x, y) in List.zip (states a) (states b) do
                Expect.equal x.step y.step "no step counted"
                Expect.equal (values x.sum) (values y.sum) "the accumulator"
                Expect.isTrue (values x.sum |> Array.forall ((=) 0.5f)) "filled with the initial value"
            let group (o: torch.optim.Optimizer) = (o :?> OptimizerHelper).ParamGroups |> Seq.head :?> Modules.ParamGroup
            let oa = (group a).Options :?> Modules.Adagrad.Options
            let ob = (group b).Options :?> Modules.Adagrad.Options
            Expect.equal (oa.LearningRate, oa.lr_decay, oa.eps, oa.weight_decay, oa.initial_accumulator_value, oa.InitialLearningRate)
                (ob.LearningRate, ob.lr_decay, ob.eps, ob.weight_decay, ob.initial_accumulator_value, ob.InitialLearningRate) "the group's options"
        }

        test "the closure runs with gradients enabled, its loss is returned, and the fused step follows" {
            let ps, _ = parameters torch.ScalarType.Float32
            let qs, _ = parameters torch.ScalarType.Float32
            use fused = new SeqDsl.Training.Fused.Adam(Seq.ofList ps, 3e-3)
            use reference = torch.optim.Adam(Seq.ofList qs, 3e-3)
            let closureOf (xs: Parameter list) (t: int) =
                Func<torch.Tensor>(fun () ->
                    xs |> List.iter (fun p -> p.grad <- null)
                    let loss = xs |> List.map (fun p -> (p * gradient t p).sum()) |> List.reduce (+)
                    loss.backward()
                    loss)
            for t in 1 .. 3 do
                use _noGrad = torch.no_grad() // the closure turns gradients back on
                let l1 = fused.step(closureOf ps t)
                let l2 = reference.step(closureOf qs t)
                Expect.isNotNull l1 "the closure's loss is returned"
                Expect.equal (l1.item<float32>()) (l2.item<float32>()) "the same loss"
            Expect.equal (fusedCount fused) (expectFused (3L * int64 ps.Length)) "fused after the closure"
            let p0, _ = parameters torch.ScalarType.Float32
            for (i, (p, q)) in List.indexed (List.zip ps qs) do agreeFrom (Some (values p0.[i])) 3e-3 "θ" p q |> ignore
        }

        for kind in [ AdamK; RmsK ] do
            test $"{kind}: a checkpoint saved mid-run and loaded into a new optimizer continues bit for bit, and libtorch's loads it" {
                // straight: six steps
                let ps, u = parameters torch.ScalarType.Float32
                use straight = make kind true (ps @ [ u ])
                steps 1 6 ps straight
                // three steps, then the optimizer's state saved with the parameters' values
                let qs, u2 = parameters torch.ScalarType.Float32
                use first = make kind true (qs @ [ u2 ])
                steps 1 3 qs first
                use ms = new MemoryStream()
                (first :?> OptimizerHelper).save_state_dict(new BinaryWriter(ms, Text.Encoding.UTF8, true))
                let saved = [ for q in qs -> values q ]
                let restore (fused: bool) =
                    let rs, ru = parameters torch.ScalarType.Float32
                    for (r, v) in List.zip rs saved do
                        use _ = torch.no_grad()
                        r.copy_(torch.tensor(v).reshape(r.shape)) |> ignore
                    let opt = make kind fused (rs @ [ ru ])
                    ms.Position <- 0L
                    (opt :?> OptimizerHelper).load_state_dict(new BinaryReader(ms, Text.Encoding.UTF8, true))
                    steps 4 6 rs opt
                    rs, opt
                let rs, resumed = restore true
                use _r = resumed
                Expect.equal (fusedCount resumed) (expectFused (3L * int64 rs.Length)) "the resumed run is fused"
                for (p, r) in List.zip ps rs do
                    Expect.equal (values r) (values p) "resumed = straight, bit for bit"
                // the same checkpoint in libtorch's own optimizer: the state format is libtorch's
                let ls, lopt = restore false
                use _l = lopt
                let p0, _ = parameters torch.ScalarType.Float32
                for (i, (p, l)) in List.indexed (List.zip ps ls) do agreeFrom (Some (values p0.[i])) (rate kind) "libtorch resumed" l p |> ignore
            }

        for algo in [ KerasOptimizer.Algorithm.RmsProp; KerasOptimizer.Algorithm.Adam; KerasOptimizer.Algorithm.AdamW ] do
            test $"Keras {algo}: the fast path equals KerasOptimizer's tensor code on a 5000 × 32 table whose batches leave rows out" {
                // the tensor code runs on a transposed (non-contiguous) copy of the same values, float32 too
                let rng = Random 3
                let table = randomArray rng (5000 * 32) 1.0
                let dense = randomArray rng (32 * 4) 1.0
                let e = new Parameter(torch.tensor(table).reshape(5000L, 32L))
                let w = new Parameter(torch.tensor(dense).reshape(32L, 4L))
                let eT = new Parameter(torch.tensor(table).reshape(5000L, 32L).t().contiguous().t())
                let wT = new Parameter(torch.tensor(dense).reshape(32L, 4L).t().contiguous().t())
                Expect.isFalse (eT.is_contiguous()) "the fallback's table is not contiguous"
                use fast = new KerasOptimizer([ e; w ], [ e ], algo, 0.01, weightDecay = 0.1)
                use slow = new KerasOptimizer([ eT; wT ], [ eT ], algo, 0.01, weightDecay = 0.1)
                // each batch's gradient: random rows for 300 token ids (the others exactly zero), random for W; the
                // loss Σ E·G_E + Σ W·G_W makes the gradients exactly these on both sides, whatever the layout
                let batches =
                    [ for b in 0 .. 4 ->
                        let gE = Array.zeroCreate<float32> (5000 * 32)
                        for _ in 1 .. 300 do
                            let r = rng.Next(0, 2500 + 500 * b)
                            for j in 0 .. 31 do gE.[r * 32 + j] <- float32 (rng.NextDouble() - 0.5)
                        gE, randomArray rng (32 * 4) 0.5 ]
                for (gE, gW) in batches do
                    for (table, weights, opt) in [ e, w, fast :> torch.optim.Optimizer; eT, wT, slow :> torch.optim.Optimizer ] do
                        opt.zero_grad()
                        use scope = torch.NewDisposeScope()
                        let loss = (table * torch.tensor(gE).reshape(5000L, 32L)).sum() + (weights * torch.tensor(gW).reshape(32L, 4L)).sum()
                        loss.backward()
                        referenceStep opt
                Expect.equal fast.FusedParameterUpdates (expectFused 10L) "the fast path ran for both parameters at every step"
                Expect.equal slow.FusedParameterUpdates 0L "the tensor code ran on the transposed copy"
                agreeFrom (Some table) 0.01 "E" e eT |> ignore
                agreeFrom (Some dense) 0.01 "W" w wT |> ignore
                // rows no batch used (4500..4999): untouched, except by AdamW's decay
                let last = values e
                let untouched = [| for k in 4500 * 32 .. 5000 * 32 - 1 -> last.[k] |]
                if algo = KerasOptimizer.Algorithm.AdamW then
                    Expect.notEqual untouched table.[4500 * 32 ..] "AdamW decays every row"
                else
                    Expect.equal untouched table.[4500 * 32 ..] "rows outside every batch keep their values"
            }
    ]
