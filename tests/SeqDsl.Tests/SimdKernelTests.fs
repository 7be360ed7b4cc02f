/// SeqDsl's SIMD kernel (kernel: Simd) against the loop kernel run in float64 (the reference: the same equations
/// through libtorch's autograd), against libtorch's fused kernels in float32, and against finite differences:
/// outputs, final states and every parameter and input gradient, on every instruction-set path this machine can
/// run (AVX-512 in software where the CPU lacks it), with lengths, both directions, stacking, odd batch and
/// hidden sizes, and two threads.
module SeqDsl.Tests.SimdKernelTests

open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Engine.Simd
open SeqDsl.Tests.TorchSupport
open Microsoft.FSharp.NativeInterop

/// |a − b| ≤ tol · max(1, |b|), elementwise; returns the largest |a − b| / max(1, |b|).
let private relErr (a: torch.Tensor) (b: torch.Tensor) =
    Array.map2 (fun (x: float32) (y: float32) -> float (absDiff x y) / max 1.0 (abs (float y))) (values a) (values b)
    |> Array.fold max 0.0

let private cells : (string * (Kernel -> ModelSpec)) list =
    [ "lstm", (fun k -> Model.Lstm(12, returnSequences = true, kernel = k))
      "lstm stacked bidirectional (concat)", (fun k -> Model.Lstm(9, returnSequences = true, kernel = k).Stack(2).Bidirectional())
      "lstm last step, bidirectional sum", (fun k -> Model.Lstm(16, kernel = k).Bidirectional(Merge.Sum))
      "gru reset-after", (fun k -> Model.Gru(11, returnSequences = true, kernel = k))
      "gru reset-after stacked bidirectional (ave)", (fun k -> Model.Gru(8, returnSequences = true, kernel = k).Stack(2).Bidirectional(Merge.Ave))
      "gru reset-before", (fun k -> Model.Gru(10, resetAfter = false, returnSequences = true, kernel = k))
      "gru reset-before bidirectional (mul)", (fun k -> Model.Gru(8, resetAfter = false, kernel = k).Bidirectional(Merge.Mul))
      "rnn tanh", (fun k -> Model.SimpleRnn(13, returnSequences = true, kernel = k))
      "rnn relu stacked", (fun k -> Model.SimpleRnn(8, Activation.Relu, returnSequences = true, kernel = k).Stack(2))
      "rnn linear", (fun k -> Model.SimpleRnn(7, Activation.Linear, kernel = k))
      // the last step only: the top layer writes no output sequence (final states only), the lower ones do
      "rnn tanh stacked bidirectional, last step", (fun k -> Model.SimpleRnn(6, kernel = k).Stack(2).Bidirectional())
      "gru reset-after stacked, last step", (fun k -> Model.Gru(10, kernel = k).Stack(2))
      "lstm 32 stacked, last step", (fun k -> Model.Lstm(32, kernel = k).Stack(2))
      "rnn sigmoid", (fun k -> Model.SimpleRnn(9, Activation.Sigmoid, returnSequences = true, kernel = k))
      // sizes whose weight blocks are whole 16-column panels take the packed products (the sizes Auto uses)
      "lstm 32 (packed)", (fun k -> Model.Lstm(32, returnSequences = true, kernel = k))
      "gru reset-after 48 bidirectional (packed)", (fun k -> Model.Gru(48, returnSequences = true, kernel = k).Bidirectional())
      "gru reset-before 32 (packed)", (fun k -> Model.Gru(32, resetAfter = false, returnSequences = true, kernel = k))
      "gru reset-before 64 stacked (packed)", (fun k -> Model.Gru(64, resetAfter = false, returnSequences = true, kernel = k).Stack(2))
      "rnn relu 64 (packed)", (fun k -> Model.SimpleRnn(64, Activation.Relu, returnSequences = true, kernel = k))
      // [dW_hh | dW_ih] above 64K floats: the weight gradient as one product after the loop, not step by step (a
      // SimpleRnn takes the LSTM's code there)
      "lstm 128 (weight gradient after the loop)", (fun k -> Model.Lstm(128, returnSequences = true, kernel = k))
      "gru reset-after 148 (weight gradient after the loop)", (fun k -> Model.Gru(148, returnSequences = true, kernel = k))
      "gru reset-before 148 (weight gradient after the loop)", (fun k -> Model.Gru(148, resetAfter = false, returnSequences = true, kernel = k))
      "lstm 128 stacked, last step (weight gradient after the loop)", (fun k -> Model.Lstm(128, kernel = k).Stack(2)) ]

let private hasFused (m: ModelSpec) =
    m.Layers |> Seq.forall (function :? RecurrentLayer as r -> r.Cell.FusedUnavailableReason = null | _ -> true)

/// Forward + backward of a sum of squares; returns the output, the input gradient and every parameter gradient.
let private run (net: Network) (x: torch.Tensor) (lengths: torch.Tensor option) =
    net.zero_grad()
    let x = x.detach().requires_grad_(true)
    let y = match lengths with Some l -> net.Forward(x, l) | None -> net.Forward(x, (null: torch.Tensor))
    y.square().sum().backward()
    y.detach(), x.grad.detach().clone(), [ for n in paramNames net -> n, (param net n).grad.detach().clone() ]

let private agree (what: string) tol (a: torch.Tensor * torch.Tensor * (string * torch.Tensor) list) (b: torch.Tensor * torch.Tensor * (string * torch.Tensor) list) =
    let ya, ga, pa = a
    let yb, gb, pb = b
    Expect.isLessThanOrEqual (relErr ya yb) tol $"{what}: outputs"
    Expect.isLessThanOrEqual (relErr ga gb) tol $"{what}: input gradient"
    for (n, g), (_, h) in List.zip pa pb do
        Expect.isLessThanOrEqual (relErr g h) tol $"{what}: gradient of {n}"

let private withWidth (w: SimdWidth) f =
    let before = SimdMath.Width
    SimdMath.Width <- w
    try f () finally SimdMath.Width <- before

/// Runs f with the AVX-512 products' twelve- and eight-row tiles (and 512-bit 16-column strips) on or off
/// (SmallGemm.TallTiles, process-wide: the SimdKernel list runs in sequence).
let private withTallTiles (tall: bool) f =
    let before = SmallGemm.TallTiles
    SmallGemm.TallTiles <- tall
    try f () finally SmallGemm.TallTiles <- before

let private widths = [ SimdWidth.Scalar; SimdWidth.Avx2; SimdWidth.Avx512 ]

/// SmallGemm.AccumulateAtB on managed arrays.
#nowarn "9"
let private accumulateAtB rows m n (a: float32[]) lda (b: float32[]) ldb (c: float32[]) ldc =
    use pa = fixed a
    use pb = fixed b
    use pc = fixed c
    SmallGemm.AccumulateAtB(rows, m, n, pa, int64 lda, pb, int64 ldb, pc, int64 ldc)

/// SmallGemm.Run (C = C0 + A·B) on managed arrays: B as it is, and packed in 16-column panels when packed is true;
/// C0 given, absent, or C itself (inPlace: C = C + A·B).
let private smallGemm m n k (a: float32[]) lda (b: float32[]) ldb (c0: float32[] option) ldc0 (c: float32[]) ldc packed inPlace =
    let p = Array.zeroCreate<float32> (int (SmallGemm.PackedSize(k, n)))
    use pa = fixed a
    use pb = fixed b
    use pp = fixed p
    use pc = fixed c
    let given = Option.isSome c0
    let c0 = defaultArg c0 [| 0.0f |]
    use pc0 = fixed c0
    let init = if inPlace then pc elif given then pc0 else NativePtr.nullPtr
    if packed then
        SmallGemm.Pack(k, n, pb, int64 ldb, pp)
        SmallGemm.Run(m, n, k, pa, int64 lda, pb, int64 ldb, pp, int64 k * int64 SmallGemm.Panel, init, int64 ldc0, pc, int64 ldc)
    else SmallGemm.Run(m, n, k, pa, int64 lda, pb, int64 ldb, init, int64 ldc0, pc, int64 ldc)

/// One forward and backward (sum of squares) of a network on ids in training, the embedding looked up inside the SIMD
/// kernel or apart, the random stream seeded first (the same dropout masks): the output and every parameter's gradient.
let private trainStep (net: Network) (ids: torch.Tensor) (lengths: torch.Tensor) (seed: int64) (inKernel: bool) =
    SimdEmbedding.InKernel <- inKernel
    try
        net.zero_grad()
        torch.manual_seed seed |> ignore
        let y = net.Forward(ids, lengths)
        y.square().sum().backward()
        values y, [ for n in paramNames net -> n, values (param net n).grad ]
    finally SimdEmbedding.InKernel <- true

/// Each model on the SIMD kernel against the same model on the loop kernel in float64 (the same weights), with and
/// without the lengths, at one and two threads: outputs and every gradient within 1e-5.
let private againstFloat64 (models: (string * (Kernel -> ModelSpec)) list) (input: InputSpec) (x: torch.Tensor) (lens: torch.Tensor) =
    let threads = torch.get_num_threads()
    try
        for name, build in models do
            use reference = compile (build Kernel.Loop) input Convention.Torch 5L
            reference.``to``(torch.ScalarType.Float64) |> ignore
            use simd = compile (build Kernel.Simd) input Convention.Torch 6L
            copyWeights reference simd
            for lengths in [ None; Some lens ] do
                let expected = run reference (x.to_type torch.ScalarType.Float64) lengths
                for n in [ 1; 2 ] do
                    torch.set_num_threads n
                    agree $"{name}, {n} threads, lengths {lengths.IsSome}" 1e-5 (run simd x lengths) expected
    finally torch.set_num_threads threads

/// A float32's distance in ulps from the exact value rounded to float32 (the difference of their bit patterns; same sign).
let private ulps (got: float32) (exact: float) =
    abs (int64 (System.BitConverter.SingleToInt32Bits got) - int64 (System.BitConverter.SingleToInt32Bits(float32 exact)))

/// Every step-th float32 bit pattern from 1e-30 up to limit, both signs, 16 at a time through f (one 16-lane vector, or
/// two 8-lane ones), and then `extra` (16 values each); `check xs ys` sees every group. Returns f's largest distance in ulps
/// from the exact value over the finite inputs up to the limit, and where.
let private sweepGates (step: int) (limit: float32) (f: float32[] -> float32[]) (exact: float -> float) (extra: float32[] list)
                       (check: float32[] -> float32[] -> unit) =
    let lo, hi = System.BitConverter.SingleToInt32Bits 1e-30f, System.BitConverter.SingleToInt32Bits limit
    let mutable worst, at = 0L, 0f
    let run (xs: float32[]) =
        let ys = f xs
        check xs ys
        for k in 0 .. 15 do
            if System.Single.IsFinite xs.[k] && abs xs.[k] <= limit then
                let u = ulps ys.[k] (exact (float xs.[k]))
                if u > worst then (worst <- u; at <- xs.[k])
    let mutable b = lo
    while b < hi do
        for sign in [ 1f; -1f ] do run [| for k in 0 .. 15 -> sign * System.BitConverter.Int32BitsToSingle(min hi (b + step * k)) |]
        b <- b + step * 16
    for xs in extra do run xs
    worst, at

/// A function on 8 lanes applied to 16 floats (two vectors), and one on 16 lanes.
let private on8 (f: System.Runtime.Intrinsics.Vector256<float32> -> System.Runtime.Intrinsics.Vector256<float32>) (xs: float32[]) =
    [| for h in 0 .. 1 do
         let y = f (System.Runtime.Intrinsics.Vector256.Create<float32>(System.ReadOnlySpan(xs, 8 * h, 8)))
         for k in 0 .. 7 -> System.Runtime.Intrinsics.Vector256.GetElement(y, k) |]

let private on16 (f: System.Runtime.Intrinsics.Vector512<float32> -> System.Runtime.Intrinsics.Vector512<float32>) (xs: float32[]) =
    let y = f (System.Runtime.Intrinsics.Vector512.Create<float32>(xs))
    [| for k in 0 .. 15 -> System.Runtime.Intrinsics.Vector512.GetElement(y, k) |]

/// One NaN in row 0, step 1.
let private poison (x: torch.Tensor) =
    use _ = torch.no_grad()
    x.[0L, 1L, 2L] <- torch.tensor nanf

[<Tests>]
let tests =
    testSequenced <| testList "SimdKernel" [
        for name, build in cells do
            test $"{name}: simd = float64 loop reference = fused; outputs and gradients, lengths, every path" {
                let input = InputSpec(Features = 5)
                torch.manual_seed 3L |> ignore
                use x = torch.randn(37L, 9L, 5L)
                use lens = torch.tensor([| for i in 0 .. 36 -> int64 (1 + (i * 7) % 9) |])
                use reference = compile (build Kernel.Loop) input Convention.Torch 5L
                reference.``to``(torch.ScalarType.Float64) |> ignore
                for lengths in [ None; Some lens ] do
                    let expected = run reference (x.to_type torch.ScalarType.Float64) lengths
                    for w in widths do
                        withWidth w (fun () ->
                            use simd = compile (build Kernel.Simd) input Convention.Torch 6L
                            copyWeights reference simd
                            let got = run simd x lengths
                            agree $"{w}, lengths {lengths.IsSome}" 1e-5 got expected)
                    if hasFused (build Kernel.Auto) then
                        use fused = compile (build Kernel.Fused) input Convention.Torch 7L
                        use simd = compile (build Kernel.Simd) input Convention.Torch 6L
                        copyWeights reference fused
                        copyWeights reference simd
                        agree $"fused, lengths {lengths.IsSome}" 1e-5 (run simd x lengths) (run fused x lengths)
            }

        test "which weight-gradient path a size takes; both = float64 reference at one and two threads" {
            Expect.isTrue (RecurrentKernels.GradientInLoop(32, 32, 4)) "E7's LSTM: in the loop"
            Expect.isTrue (RecurrentKernels.GradientInLoop(50, 32, 4)) "E4's LSTM: in the loop"
            Expect.isTrue (RecurrentKernels.GradientInLoop(64, 100, 4)) "Lstm(64) on 100 inputs: in the loop"
            Expect.isFalse (RecurrentKernels.GradientInLoop(128, 5, 4)) "Lstm(128) on 5 features: after the loop"
            // B 41, T 20, with and without lengths
            let input = InputSpec(Features = 5)
            torch.manual_seed 4L |> ignore
            use x = torch.randn(41L, 20L, 5L)
            use lens = torch.tensor([| for i in 0 .. 40 -> int64 (1 + (i * 7) % 20) |])
            againstFloat64 [ "lstm 40 (in the loop)", (fun k -> Model.Lstm(40, returnSequences = true, kernel = k))
                             "lstm 128 (after the loop)", (fun k -> Model.Lstm(128, returnSequences = true, kernel = k))
                             "gru reset-before 148 (after the loop)", (fun k -> Model.Gru(148, resetAfter = false, returnSequences = true, kernel = k)) ]
                input x lens
        }

        test "subnormal gradients are flushed to zero inside the kernel; the calling thread keeps its mode" {
            // a linear SimpleRnn whose recurrent weights are 0.05·I: the gradient of the last step's output shrinks
            // 20-fold per step back, below float32's smallest normal (1.2e-38) about 30 steps back. Unflushed, such
            // values are subnormal (each costing Intel CPUs a microcode assist); flushed, they are 0.
            if not Denormals.Available then skiptest "the CPU's flush mode cannot be set here (x86-64 Linux with glibc only)"
            let input = InputSpec(Features = 4)
            use net = compile (Model.SimpleRnn(16, Activation.Linear, kernel = Kernel.Simd)) input Convention.Torch 9L
            do
                use _ = torch.no_grad()
                for n in paramNames net do
                    let p = param net n
                    if n.Contains "weight_hh" then p.copy_(torch.eye(16L).mul(torch.tensor 0.05f)) |> ignore
                    elif n.Contains "bias" then p.zero_() |> ignore
            torch.manual_seed 5L |> ignore
            use x = torch.randn(24L, 48L, 4L)
            let subnormal (v: float32) = v <> 0.0f && abs v < 1.17549435e-38f
            let inputGradient flush =
                let before = Denormals.Enabled
                Denormals.Enabled <- flush
                try
                    let _, g, _ = run net x None
                    values g
                finally Denormals.Enabled <- before
            let threads = torch.get_num_threads()
            try
                for n in [ 1; 2 ] do
                    torch.set_num_threads n
                    Expect.isFalse (Denormals.FlushingNow()) "the test thread does not flush before"
                    let flushed = inputGradient true
                    Expect.isFalse (Denormals.FlushingNow()) $"{n} threads: the calling thread's mode is put back"
                    Expect.equal (flushed |> Array.filter subnormal |> Array.length) 0 $"{n} threads: no subnormal in the input gradient"
                    Expect.isGreaterThan (flushed |> Array.filter (fun v -> v = 0.0f) |> Array.length) 0 $"{n} threads: the early steps' gradients are 0"
                    Expect.isGreaterThan (flushed |> Array.filter (fun v -> abs v > 1e-30f) |> Array.length) 0 $"{n} threads: the late steps' are not"
                    // the same layer unflushed: subnormals there (what the flush removes)
                    let kept = inputGradient false
                    Expect.isGreaterThan (kept |> Array.filter subnormal |> Array.length) 0 $"{n} threads: unflushed, some are subnormal"
                    // a flushed product or sum moves a result by at most about the smallest normal per term (16 here)
                    for a, b in Array.zip flushed kept do
                        Expect.isLessThanOrEqual (float (abs (a - b))) (64.0 * 1.17549435e-38) "flushing changes a value by < 64 × 1.2e-38"
                    Expect.isGreaterThan (Array.zip flushed kept |> Array.filter (fun (a, b) -> a = b && abs a > 1e-30f) |> Array.length) 0 "larger values the same"
            finally torch.set_num_threads threads
        }

        test "threads started inside a flush scope do not keep it: the team's threads and the thread-pool fallback" {
            if not Denormals.Available then skiptest "the CPU's flush mode cannot be set here (x86-64 Linux with glibc only)"
            let caller = System.Environment.CurrentManagedThreadId
            let seen = System.Collections.Concurrent.ConcurrentBag<int * bool>()
            do
                use _ = Denormals.Flush()
                // eight jobs: up to seven team threads, those not started yet started now, inside the scope
                Team.Run(8, fun _ ->
                    seen.Add((System.Environment.CurrentManagedThreadId, Denormals.FlushingNow()))
                    System.Threading.Thread.Sleep 5)
            let others = seen |> Seq.filter (fun (t, _) -> t <> caller) |> List.ofSeq
            Expect.isNonEmpty others "some jobs ran on other threads"
            Expect.isFalse (others |> List.exists snd) "no other thread flushes (a new thread takes its creator's mode)"
            Expect.isFalse (Denormals.FlushingNow()) "the caller's mode put back"
        }

        test "Denormals.Flush sets the flush mode until its scope ends, also on an exception; nested scopes" {
            if not Denormals.Available then skiptest "the CPU's flush mode cannot be set here (x86-64 Linux with glibc only)"
            Expect.isFalse (Denormals.FlushingNow()) "not flushing before"
            do
                use _ = Denormals.Flush()
                Expect.isTrue (Denormals.FlushingNow()) "flushing inside"
                do
                    use _ = Denormals.Flush()
                    Expect.isTrue (Denormals.FlushingNow()) "flushing in a nested scope"
                Expect.isTrue (Denormals.FlushingNow()) "still flushing after the nested scope"
            Expect.isFalse (Denormals.FlushingNow()) "not flushing after"
            Expect.throws (fun () ->
                use _ = Denormals.Flush()
                failwith "boom") "the exception passes through"
            Expect.isFalse (Denormals.FlushingNow()) "not flushing after an exception"
            // a float operation in the scope: the smallest normal halved is 0 there, subnormal outside
            let half (x: float32) = x * 0.5f
            let tiny = System.Single.Parse "1.17549435e-38"
            Expect.isGreaterThan (half tiny) 0.0f "outside: subnormal"
            do
                use _ = Denormals.Flush()
                Expect.equal (half tiny) 0.0f "inside: flushed to zero"
        }

        test "two threads split the batch and agree with one" {
            let input = InputSpec(Features = 4)
            use x = torch.randn(41L, 6L, 4L)
            use net = compile (Model.Lstm(20, returnSequences = true, kernel = Kernel.Simd).Stack(2)) input Convention.Torch 8L
            let threads = torch.get_num_threads()
            try
                torch.set_num_threads 1
                let one = run net x None
                torch.set_num_threads 2
                let two = run net x None
                // each block sums its rows' weight gradient and the blocks are added after: another order of the
                // same float32 sums than one thread's (outputs and the input gradient do not change)
                agree "2 threads vs 1" 1e-6 two one
                let y1, g1, _ = one
                let y2, g2, _ = two
                Expect.equal (relErr y2 y1) 0.0 "outputs: bit for bit"
                Expect.equal (relErr g2 g1) 0.0 "input gradient: bit for bit"
                // the same thread count gives the same sums, run after run (the partials are added in block order)
                agree "2 threads, again" 0.0 (run net x None) two
            finally torch.set_num_threads threads
        }

        test "switches that keep the floats: GRU bias gradients summed in the per-unit passes; the input's gradient as the input lies" {
            // each pair runs the same network twice, the switch on and off: outputs and every gradient bit for bit
            let input = InputSpec(Features = 5)
            torch.manual_seed 21L |> ignore
            use x = torch.randn(19L, 7L, 5L)
            use lens = torch.tensor([| for i in 0 .. 18 -> int64 (1 + (i * 5) % 7) |])
            let bothWays (get: unit -> bool) (set: bool -> unit) (f: unit -> 'a) =
                let before = get ()
                try
                    set true
                    let on = f ()
                    set false
                    on, f ()
                finally set before
            // (148 units: the weight gradient after the loop), on every instruction-set path
            for name, spec in [ "gru reset-after", Model.Gru(12, returnSequences = true, kernel = Kernel.Simd)
                                "gru reset-before", Model.Gru(12, resetAfter = false, returnSequences = true, kernel = Kernel.Simd)
                                "gru reset-after 148", Model.Gru(148, returnSequences = true, kernel = Kernel.Simd)
                                "gru reset-before 148", Model.Gru(148, resetAfter = false, returnSequences = true, kernel = Kernel.Simd) ] do
                for w in widths do
                    withWidth w (fun () ->
                        use net = compile spec input Convention.Torch 5L
                        let inPass, after =
                            bothWays (fun () -> RecurrentKernels.GruBiasInPass) (fun v -> RecurrentKernels.GruBiasInPass <- v)
                                (fun () -> run net x (Some lens))
                        agree $"{name}, {w}: bias gradients in the pass = after the products" 0.0 inPass after)
            // a batch-major leaf input, and (the second layer's) a time-major one handed up by the first; the values
            // only (autograd makes the leaf's .grad lie as the input does either way: that the copy is gone is timed by
            // `bench phases --input-grad-ab`)
            use net = compile (Model.Lstm(9, returnSequences = true, kernel = Kernel.Simd).Stack(2)) input Convention.Torch 5L
            let asInput, timeMajor =
                bothWays (fun () -> SimdRecurrence.InputGradientAsInput) (fun v -> SimdRecurrence.InputGradientAsInput <- v)
                    (fun () -> run net x (Some lens))
            agree "the input's gradient as the input lies = time-major" 0.0 asInput timeMajor
        }

        test "more rows than one sub-block (B 261: 128 + 128 + 5 at one thread): every cell = float64 reference, lengths" {
            let input = InputSpec(Features = 3)
            torch.manual_seed 12L |> ignore
            use x = torch.randn(261L, 4L, 3L)
            // lengths 1–4, so that each sub-block has rows that stop early
            use lens = torch.tensor([| for i in 0 .. 260 -> int64 (1 + (i * 5) % 4) |])
            againstFloat64 cells input x lens
        }

        test "two blocks: block-major buffers = time-major, bit for bit; a backward at another thread count reads the forward's blocks" {
            let input = InputSpec(Features = 3)
            torch.manual_seed 13L |> ignore
            use x = torch.randn(45L, 7L, 3L)
            use lens = torch.tensor([| for i in 0 .. 44 -> int64 (1 + (i * 3) % 7) |])
            let threads = torch.get_num_threads()
            try
                for name, build in cells do
                    use net = compile (build Kernel.Simd) input Convention.Torch 6L
                    for lengths in [ None; Some lens ] do
                        torch.set_num_threads 2
                        let blockMajor = run net x lengths
                        SimdRecurrence.BlockMajor <- false
                        let timeMajor = try run net x lengths finally SimdRecurrence.BlockMajor <- true
                        agree $"{name}, lengths {lengths.IsSome}: block-major vs time-major" 0.0 blockMajor timeMajor
                        // forward at two threads (two blocks), backward at one: the backward must take the forward's
                        // two blocks and layout, not split the rows anew
                        net.zero_grad()
                        let xg = x.detach().requires_grad_(true)
                        let y = match lengths with Some l -> net.Forward(xg, l) | None -> net.Forward(xg, (null: torch.Tensor))
                        torch.set_num_threads 1
                        y.square().sum().backward()
                        let mixed = y.detach(), xg.grad.detach().clone(), [ for n in paramNames net -> n, (param net n).grad.detach().clone() ]
                        agree $"{name}, lengths {lengths.IsSome}: backward at one thread after a forward at two" 0.0 mixed blockMajor
            finally
                SimdRecurrence.BlockMajor <- true
                torch.set_num_threads threads
        }

        test "the blocks' weight-gradient partials are added element by element in block order, ((p0 + p1) + p2) + …" {
            torch.manual_seed 9L |> ignore
            for n in [ 2L; 3L; 5L ] do
                // 7 × 13: whole vectors and a scalar tail; values of mixed sign, columns of sizes 1e-3 … 1e3, so another
                // order would round differently somewhere
                use p = torch.randn(n, 7L, 13L) * torch.logspace(-3.0, 3.0, 13L)
                use sum = SimdRecurrence.SumPartials p
                let pv = values p
                let expected =
                    Array.init (7 * 13) (fun e -> Seq.fold (fun (s: float32) j -> s + pv.[j * 7 * 13 + e]) pv.[e] (seq { 1 .. int n - 1 }))
                Expect.equal (sum.shape) [| 7L; 13L |] "shape"
                Expect.equal (values sum) expected $"{n} partials: bit for bit"
        }

        test "the step product C = C0 + A·B = float64 sums: packed and not, narrow and wide last strips, a bias row, every path" {
            // m on both sides of the 6- and 12-row tiles (remainders on the 4- and 8-row ones: 1, 5, 7, 8, 13); n with
            // no last strip, one of 1..8 columns (the narrow tile) and of 9..15 (the wide one through a scratch tile); C0 absent, one bias row (row stride 0), a full
            // matrix, and C itself (GRU reset-before adds its n product in place); row strides wider than the rows,
            // and C's padding columns left untouched
            let rng = System.Random 6
            // (m 9, 10, 11 with n ≥ 32: the 6 × 32 AVX-512 tile's last tile of 3, 4 and 5 rows; m 12, 24, 25, 19, 20: whole
            // 12 × 32 tiles, then none, a 6-row one of 1 row, an 8-row one of 7 or 8; m 16: two 8-row ones; m 8, 7: one)
            for m, n, k in [ 1, 1, 1; 5, 8, 7; 12, 50, 200; 8, 200, 82; 13, 2, 9; 30, 20, 33; 12, 31, 16; 7, 16, 64; 25, 148, 5
                             9, 64, 12; 10, 40, 7; 11, 96, 33; 24, 64, 17; 19, 32, 20; 16, 64, 9; 20, 40, 11; 7, 33, 5; 13, 64, 0 ] do
                let lda, ldb, ldc = k + 3, n + 5, n + 2
                let a = Array.init (m * lda) (fun _ -> float32 (rng.NextDouble() - 0.5))
                let b = Array.init (k * ldb) (fun _ -> float32 (rng.NextDouble() - 0.5))
                let full = Array.init (m * ldc) (fun _ -> float32 (rng.NextDouble() - 0.5))
                for c0, ldc0 in [ None, 0; Some (Array.sub full 0 n), 0; Some full, ldc ] do
                    let expected =
                        Array.init (m * ldc) (fun idx ->
                            let i, j = idx / ldc, idx % ldc
                            if j >= n then -7.0
                            else (match c0 with Some c -> float c.[i * ldc0 + j] | None -> 0.0)
                                 + Seq.sum (seq { for p in 0 .. k - 1 -> float a.[i * lda + p] * float b.[p * ldb + j] }))
                    for w in widths do
                      for tall in (if w = SimdWidth.Avx512 then [ true; false ] else [ true ]) do
                      for packed in [ false; true ] do
                        for inPlace in (if ldc0 = ldc then [ false; true ] else [ false ]) do
                            withTallTiles tall (fun () ->
                            withWidth w (fun () ->
                                // in place: C starts as C0 (its padding columns too, which must stay as they were)
                                let c = if inPlace then Array.init (m * ldc) (fun idx -> if idx % ldc >= n then -7.0f else full.[idx])
                                        else Array.create (m * ldc) -7.0f
                                smallGemm m n k a lda b ldb c0 ldc0 c ldc packed inPlace
                                for idx in 0 .. c.Length - 1 do
                                    let tol = if idx % ldc >= n then 0.0 else 1e-5 * max 1.0 (abs expected.[idx])
                                    Expect.isLessThanOrEqual (abs (float c.[idx] - expected.[idx])) tol
                                        $"{w}, tall tiles {tall}, packed {packed}, C0 {c0.IsSome} stride {ldc0}, in place {inPlace}: m {m}, n {n}, k {k}, C[{idx / ldc}, {idx % ldc}]"
                                // the AVX2 and AVX-512 paths to the bit (the same floats, whatever the tiles' heights):
                                // packed, whole 16-column strips (and 32-column pairs of them) chain their FMAs from C0, a
                                // narrower last strip (narrow tile or scratch tile) from zero and adds C0 after; unpacked,
                                // every whole 8 columns chain from C0 (the last few columns are plain scalar sums)
                                if w <> SimdWidth.Scalar && SmallGemm.UsesPacked then
                                    let whole = if packed then n / 16 * 16 else n / 8 * 8
                                    for i in 0 .. m - 1 do
                                        for j in 0 .. (if packed then n else whole) - 1 do
                                            let init = match c0 with Some c -> c.[i * ldc0 + j] | None -> 0.0f
                                            let mutable acc = if j < whole then init else 0.0f
                                            for p in 0 .. k - 1 do acc <- System.MathF.FusedMultiplyAdd(a.[i * lda + p], b.[p * ldb + j], acc)
                                            let exact = if j < whole || c0.IsNone then acc else init + acc
                                            Expect.equal c.[i * ldc + j] exact $"{w}, tall tiles {tall}, packed {packed}, C0 {c0.IsSome} stride {ldc0}, in place {inPlace}: m {m}, n {n}, k {k}, C[{i}, {j}] bit for bit"))
        }

        test "the weight-gradient product C += AᵀB = float64 sums: tile edges, masked strips, strides, every path" {
            // m not a multiple of 6 (the edge tiles: 4-row ones for 1, 7, 8 rows left, 8-row narrow ones; on AVX-512 whole
            // 12 × 32 tiles first: m 24, 19, 32, 50, 200; 8 × 32 for 16, 20, 7; 12 × 16 strips: m 50, 200), n with and
            // without a strip narrower than 16 (1..4 columns down C's rows, 5..8 the narrow tile, 9..15 masked lanes),
            // row strides wider than the rows, and C's padding columns left untouched
            let rng = System.Random 5
            for rows, m, n in [ 1, 1, 1; 7, 6, 16; 13, 32, 64; 40, 50, 82; 9, 200, 82; 5, 7, 3; 3, 12, 24; 17, 1, 31; 6, 13, 22; 4, 57, 5
                                5, 9, 64; 6, 10, 40; 7, 11, 96; 5, 24, 32; 3, 19, 64; 4, 16, 32; 3, 20, 64; 5, 7, 40 ] do
                let lda, ldb, ldc = m + 3, n + 5, n + 2
                let a = Array.init (rows * lda) (fun _ -> float32 (rng.NextDouble() - 0.5))
                let b = Array.init (rows * ldb) (fun _ -> float32 (rng.NextDouble() - 0.5))
                let c0 = Array.init (m * ldc) (fun _ -> float32 (rng.NextDouble() - 0.5))
                let expected =
                    Array.init (m * ldc) (fun k ->
                        let i, j = k / ldc, k % ldc
                        if j >= n then float c0.[k]
                        else float c0.[k] + Seq.sum (seq { for r in 0 .. rows - 1 -> float a.[r * lda + i] * float b.[r * ldb + j] }))
                for w in widths do
                  for tall in (if w = SimdWidth.Avx512 then [ true; false ] else [ true ]) do
                    withTallTiles tall (fun () ->
                    withWidth w (fun () ->
                        let c = Array.copy c0
                        accumulateAtB rows m n a lda b ldb c ldc
                        for k in 0 .. c.Length - 1 do
                            let tol = if k % ldc >= n then 0.0 else 1e-5 * max 1.0 (abs expected.[k])
                            Expect.isLessThanOrEqual (abs (float c.[k] - expected.[k])) tol $"{w}: rows {rows}, m {m}, n {n}, C[{k / ldc}, {k % ldc}]"
                        // the AVX2 and AVX-512 tiles (wide, masked, narrow) to the bit: one FMA chain per element from C, rows in order
                        if w <> SimdWidth.Scalar && System.Runtime.Intrinsics.X86.Fma.IsSupported then
                            for i in 0 .. m - 1 do
                                for j in 0 .. n - 1 do
                                    let mutable acc = c0.[i * ldc + j]
                                    for r in 0 .. rows - 1 do acc <- System.MathF.FusedMultiplyAdd(a.[r * lda + i], b.[r * ldb + j], acc)
                                    Expect.equal c.[i * ldc + j] acc $"{w}, tall tiles {tall}: rows {rows}, m {m}, n {n}, C[{i}, {j}] bit for bit"))
        }

        test "the weight gradient over groups of steps: bit for bit the one-product-per-step sums, every cell, one and two threads" {
            // B 12 at one thread (12 rows: groups of 8 steps, the last of 3 at t = 0), B 40 (groups of 3); at two
            // threads B 20 (blocks of 12 and 8 rows: groups of 8) and B 41 (24 and 17: groups of 5); 8 inputs, so
            // [h | x] of H 10 leaves a 2-column strip (Aᵀ·B down C's rows) and H 50 a 10-column one; lengths included
            for build in [ (fun () -> Model.Lstm(50, returnSequences = true, kernel = Kernel.Simd))
                           (fun () -> Model.Gru(10, returnSequences = true, kernel = Kernel.Simd))
                           (fun () -> Model.Gru(10, resetAfter = false, returnSequences = true, kernel = Kernel.Simd))
                           (fun () -> Model.SimpleRnn(10, returnSequences = true, kernel = Kernel.Simd)) ] do
                for b, threads in [ 12, 1; 40, 1; 20, 2; 41, 2 ] do
                    use net = compile (build ()) (InputSpec(Features = 8)) Convention.Torch 3L
                    use x = torch.randn(int64 b, 11L, 8L)
                    use lengths = torch.tensor(Array.init b (fun i -> int64 (11 - i % 4)))
                    let before = torch.get_num_threads()
                    torch.set_num_threads threads
                    try
                        if threads = 2 then
                            let count, per = match SimdRecurrence.Split b with struct (c, p) -> c, p
                            Expect.equal count 2 $"B {b} at two threads: two blocks of {per} rows"
                        let grouped = run net x (Some lengths)
                        RecurrentKernels.MaxGroupSteps <- System.Nullable 1
                        let perStep =
                            try
                                Expect.equal (RecurrentKernels.GroupSteps 12) 1 "the override holds"
                                run net x (Some lengths)
                            finally RecurrentKernels.MaxGroupSteps <- System.Nullable()
                        let _, _, pg = grouped
                        let _, _, ps = perStep
                        for (n, g), (_, h) in List.zip pg ps do
                            let bits (t: torch.Tensor) = values t |> Array.map System.BitConverter.SingleToInt32Bits
                            Expect.sequenceEqual (bits g) (bits h) $"{net.Spec}, B {b}, {threads} threads: gradient of {n}"
                    finally torch.set_num_threads before
        }

        test "finite differences: every parameter and the input, tiny LSTM, GRU (both forms) and RNN" {
            for build in [ (fun k -> Model.Lstm(3, returnSequences = true, kernel = k))
                           (fun k -> Model.Gru(3, returnSequences = true, kernel = k))
                           (fun k -> Model.Gru(3, resetAfter = false, returnSequences = true, kernel = k))
                           (fun k -> Model.SimpleRnn(3, returnSequences = true, kernel = k)) ] do
                use net = compile (build Kernel.Simd) (InputSpec(Features = 2)) Convention.Torch 9L
                use x = torch.randn(2L, 4L, 2L)
                let loss () =
                    use _ = torch.no_grad()
                    net.Forward(x, (null: torch.Tensor)).square().sum().item<float32>() |> float
                let _, _, grads = run net x None
                for n, g in grads do
                    let p = param net n
                    let analytic = values g
                    for i in 0 .. int (p.numel()) - 1 do
                        let flat = p.detach().view(-1L)
                        let v = flat.[int64 i].item<float32>()
                        let eps = 1e-2f
                        let set (value: float32) =
                            use _ = torch.no_grad()
                            flat.[int64 i] <- torch.tensor value
                        set (v + eps)
                        let up = loss ()
                        set (v - eps)
                        let down = loss ()
                        set v
                        let numeric = (up - down) / (2.0 * float eps)
                        Expect.isLessThan (abs (numeric - float analytic.[i])) (2e-3 * max 1.0 (abs numeric)) $"{net.Spec} ∂/∂{n}[{i}]"
        }

        test "NaN in the input stays NaN on every path, as on libtorch's kernels (the trainer's non-finite stop needs it)" {
            for name, build in cells do
                for w in widths do
                    withWidth w (fun () ->
                        use net = compile (build Kernel.Simd) (InputSpec(Features = 5)) Convention.Torch 4L
                        use x = torch.randn(3L, 4L, 5L)
                        poison x
                        use y = net.Forward(x, (null: torch.Tensor))
                        let rows = values y
                        let perRow = rows.Length / 3
                        Expect.isTrue (rows.[0 .. perRow - 1] |> Array.exists System.Single.IsNaN) $"{name}, {w}: row 0 carries the NaN"
                        Expect.isTrue (rows.[perRow ..] |> Array.forall System.Single.IsFinite) $"{name}, {w}: other rows stay finite")
        }

        test "the gate functions against float64: tanh, sigmoid and exp within their ulp bounds, odd, bounded, NaN kept" {
            // every 97th float32 bit pattern from 1e-30 up to the end of each function's range, both signs; the
            // distance in ulps is the difference of the float32 bit patterns (same sign) from the rounded exact value
            if not SimdMath.UseAvx2 then skiptest "the vectorised gate functions need AVX2 and FMA (the plain path uses MathF)"
            let lane (v: System.Runtime.Intrinsics.Vector256<float32>) (k: int) = System.Runtime.Intrinsics.Vector256.GetElement(v, k)
            let sweep limit f exact = sweepGates 97 limit (on8 f) exact [] (fun _ _ -> ())
            let tanhUlps, tanhAt = sweep 12f SimdMath.Tanh tanh
            Expect.isLessThanOrEqual tanhUlps 6L $"tanh: {tanhUlps} ulps at {tanhAt}"
            let sigmoidUlps, sigmoidAt = sweep 80f SimdMath.Sigmoid (fun x -> 1.0 / (1.0 + exp -x))
            // (sigmoid's reciprocal starts from the CPU's 12-bit estimate, which differs between CPU makers: one
            // ulp more than the 3 measured on an AMD EPYC)
            Expect.isLessThanOrEqual sigmoidUlps 4L $"sigmoid: {sigmoidUlps} ulps at {sigmoidAt}"
            let expUlps, expAt = sweep 80f SimdMath.Exp exp
            Expect.isLessThanOrEqual expUlps 3L $"exp: {expUlps} ulps at {expAt}"
            let special = System.Runtime.Intrinsics.Vector256.Create(nanf, -0f, 0f, 1e-40f, -1e-40f, 30f, -1e30f, infinityf)
            let t = SimdMath.Tanh special
            Expect.isTrue (System.Single.IsNaN(lane t 0)) "tanh(NaN) is NaN"
            Expect.equal (System.BitConverter.SingleToInt32Bits(lane t 1)) (System.BitConverter.SingleToInt32Bits -0f) "tanh(−0) = −0"
            Expect.equal [ for k in 2 .. 4 -> lane t k ] [ 0f; 1e-40f; -1e-40f ] "tanh(x) = x for tiny x"
            for k in 5 .. 7 do
                Expect.isLessThanOrEqual (abs (float (lane t k)) - 1.0) 0.0 $"|tanh({lane special k})| ≤ 1"
                Expect.isGreaterThan (abs (float (lane t k))) 0.9999999 $"tanh({lane special k}) ≈ ±1"
            Expect.isTrue (System.Single.IsNaN(lane (SimdMath.Sigmoid special) 0)) "sigmoid(NaN) is NaN"
            // |tanh| ≤ 1 everywhere (the rational form rounds above 1 beyond x ≈ 8.18 unless clamped), and odd
            let mutable x = 0f
            while x < 12f do
                let v = SimdMath.Tanh(System.Runtime.Intrinsics.Vector256.Create(x))
                let w = SimdMath.Tanh(System.Runtime.Intrinsics.Vector256.Create(-x))
                Expect.isLessThanOrEqual (lane v 0) 1f $"tanh({x}) ≤ 1"
                Expect.equal (lane w 0) (-(lane v 0)) $"tanh(−{x}) = −tanh({x})"
                x <- x + 0.0007f
        }

        test "the gate functions on 16 lanes (AVX-512): exp and tanh = the 8-lane ones bit for bit, sigmoid within its bound" {
            if not SimdMath.UseAvx2 || not System.Runtime.Intrinsics.X86.Avx512F.IsSupported then
                skiptest "the 16-lane gate functions need AVX-512F (this CPU's products and gates run on 8 lanes)"
            // every 89th bit pattern from 1e-30 up to the limit, both signs, the special values, then a NaN in each lane
            let special = [| nanf; -0f; 0f; 1e-40f; -1e-40f; 30f; -1e30f; infinityf; -infinityf; 88f; -88f; 9f; -9f; 1f; -1f; 0.5f |]
            let nanInEachLane = [ for k in 0 .. 15 -> [| for j in 0 .. 15 -> if j = k then nanf else float32 (j - 8) * 0.7f |] ]
            let check name limit f16 f8 exact bound same =
                // the first lane that differs from the 8-lane result or loses a NaN (messages built only for it)
                let mutable failure = None
                let compare (xs: float32[]) (ys: float32[]) =
                    let y8 = on8 f8 xs
                    for k in 0 .. 15 do
                        if failure.IsNone then
                            if System.Single.IsNaN xs.[k] then
                                if not (System.Single.IsNaN ys.[k]) then failure <- Some $"{name}(NaN) is {ys.[k]} in lane {k}"
                            elif same && System.BitConverter.SingleToInt32Bits ys.[k] <> System.BitConverter.SingleToInt32Bits y8.[k] then
                                failure <- Some $"{name}({xs.[k]}), lane {k}: 16 lanes {ys.[k]}, 8 lanes {y8.[k]}"
                let worst, at = sweepGates 89 limit (on16 f16) exact (special :: nanInEachLane) compare
                Expect.isNone failure (defaultArg failure "")
                Expect.isLessThanOrEqual worst bound $"{name} on 16 lanes: {worst} ulps at {at}"
            check "exp" 80f SimdMath.Exp SimdMath.Exp exp 3L true
            check "tanh" 12f SimdMath.Tanh SimdMath.Tanh tanh 6L true
            // AVX-512's reciprocal estimate has 14 bits, AVX2's 12: not the same floats
            check "sigmoid" 80f SimdMath.Sigmoid SimdMath.Sigmoid (fun x -> 1.0 / (1.0 + exp -x)) 4L false
        }

        test "no steps (T = 0): a training step runs on both weight-gradient paths, zero weight gradients" {
            for build in [ (fun () -> Model.Lstm(8, returnSequences = true, kernel = Kernel.Simd))
                           (fun () -> Model.Lstm(128, kernel = Kernel.Simd))
                           (fun () -> Model.Gru(148, kernel = Kernel.Simd)) ] do
                use net = compile (build ()) (InputSpec(Features = 3)) Convention.Torch 2L
                use x = torch.randn(4L, 0L, 3L)
                let y, _, grads = run net x None
                Expect.equal y.shape.[0] 4L $"{net.Spec}: the batch"
                for n, g in grads do
                    if n.Contains "weight" then
                        Expect.isTrue (values g |> Array.forall ((=) 0.0f)) $"{net.Spec}: {n} has a zero gradient"
        }

        test "an empty batch, and a network moved to float64, run (the latter on the loop's ops)" {
            use net = compile (Model.Lstm(8, returnSequences = true, kernel = Kernel.Simd)) (InputSpec(Features = 3)) Convention.Torch 2L
            use empty = net.Forward(torch.zeros(0L, 5L, 3L), (null: torch.Tensor))
            Expect.equal empty.shape [| 0L; 5L; 8L |] "empty batch"
            use x = torch.randn(2L, 5L, 3L)
            use y32 = net.Forward(x, (null: torch.Tensor))
            net.``to``(torch.ScalarType.Float64) |> ignore
            use y64 = net.Forward(x.to_type torch.ScalarType.Float64, (null: torch.Tensor))
            Expect.isLessThan (relErr y32 y64) 1e-5 "float64 forward agrees"
        }

        test "the embedding's one-pass backward = libtorch's embedding gradient (repeated ids, the padding row, every path)" {
            // a table with a padding row, ids that repeat within and across rows and hit the padding id, D not a
            // multiple of 8 (the scalar tail) and one that is; (B, T) ids (time-major underneath) and flat ids; the
            // gradient batch-major or a (B, T, D) view of time-major memory, as the recurrent kernel hands it back
            for d in [ 5L; 16L ] do
              for flatIds in [ false; true ] do
                for gradTimeMajor in [ false; true ] do
                  for w in widths do
                    withWidth w (fun () ->
                        torch.manual_seed 7L |> ignore
                        use ours = torch.nn.Embedding(11L, d, padding_idx = 2L)
                        use theirs = torch.nn.Embedding(11L, d, padding_idx = 2L)
                        (use _ng = torch.no_grad() in theirs.weight.copy_(ours.weight) |> ignore)
                        use ids2 = torch.tensor([| 1L; 2L; 3L; 3L; 10L; 0L; 2L; 3L; 1L; 9L; 9L; 9L |]).reshape(3L, 4L)
                        use ids = if flatIds then ids2.reshape(-1L) else ids2.alias()
                        use g =
                            match flatIds, gradTimeMajor with
                            | true, _ -> torch.randn(12L, d)
                            | false, true -> torch.randn(4L, 3L, d).transpose(0L, 1L)
                            | false, false -> torch.randn(3L, 4L, d)
                        Expect.equal (SimdEmbedding.Applies(ours.weight, ids)) SimdEmbedding.Enabled "applies to a float32 CPU table in training"
                        use y = SimdEmbedding.Lookup(ours.weight, ids, System.Nullable 2L)
                        use yRef = theirs.call ids
                        Expect.equal y.shape yRef.shape "the same shape"
                        Expect.equal (values (y.contiguous())) (values yRef) $"D {d}, {w}: the same rows"
                        if not flatIds then Expect.isTrue (y.transpose(0L, 1L).is_contiguous()) "(B, T) ids give time-major rows"
                        y.backward(ResizeArray [ g ])
                        yRef.backward(ResizeArray [ g ])
                        Expect.isLessThan (relErr ours.weight.grad theirs.weight.grad) 1e-6 $"D {d}, flat {flatIds}, time-major gradient {gradTimeMajor}, {w}: the same gradient"
                        Expect.isTrue (values (ours.weight.grad.[2L]) |> Array.forall ((=) 0.0f)) "the padding row's gradient is zero"
                        Expect.isTrue (values (ours.weight.grad.[3L]) |> Array.exists ((<>) 0.0f)) "a used row has a gradient")
            use frozen = torch.nn.Embedding(4L, 3L)
            use someIds = torch.tensor([| 1L; 2L |])
            frozen.weight.requires_grad_(false) |> ignore
            Expect.isFalse (SimdEmbedding.Applies(frozen.weight, someIds)) "a frozen table takes libtorch's lookup"
            use live = torch.nn.Embedding(4L, 3L)
            use intIds = torch.tensor([| 1; 2 |])
            Expect.isFalse (SimdEmbedding.Applies(live.weight, intIds)) "int32 ids take libtorch's lookup"
            use _ = torch.no_grad()
            Expect.isFalse (SimdEmbedding.Applies(live.weight, someIds)) "no_grad takes libtorch's lookup"
        }

        test "the embedding with a SpatialDropout's channel scale = libtorch's lookup times the mask, rows and gradient" {
            // (B, T) ids, a (B, D) scale with dropped (zero) and kept (1 / (1 − p)) channels per row, the padding row;
            // D with and without a scalar tail; the gradient batch-major and time-major
            for d in [ 5L; 16L ] do
              for gradTimeMajor in [ false; true ] do
                for w in widths do
                    withWidth w (fun () ->
                        torch.manual_seed 8L |> ignore
                        use ours = torch.nn.Embedding(11L, d, padding_idx = 2L)
                        use theirs = torch.nn.Embedding(11L, d, padding_idx = 2L)
                        (use _ng = torch.no_grad() in theirs.weight.copy_(ours.weight) |> ignore)
                        use ids = torch.tensor([| 1L; 2L; 3L; 3L; 10L; 0L; 2L; 3L; 1L; 9L; 9L; 9L |]).reshape(3L, 4L)
                        use scale = torch.empty(3L, d).bernoulli_(0.6).div_(torch.tensor 0.6f)
                        use g = if gradTimeMajor then torch.randn(4L, 3L, d).transpose(0L, 1L) else torch.randn(3L, 4L, d)
                        use y = SimdEmbedding.Lookup(ours.weight, ids, System.Nullable 2L, scale)
                        use yRef = theirs.call(ids) * scale.unsqueeze(1L)
                        Expect.isLessThan (relErr (y.contiguous()) yRef) 1e-7 $"D {d}, {w}: the scaled rows"
                        Expect.isTrue (y.transpose(0L, 1L).is_contiguous()) "time-major rows"
                        y.backward(ResizeArray [ g ])
                        yRef.backward(ResizeArray [ g ])
                        Expect.isLessThan (relErr ours.weight.grad theirs.weight.grad) 1e-6 $"D {d}, time-major gradient {gradTimeMajor}, {w}: the same gradient"
                        Expect.isTrue (values (ours.weight.grad.[2L]) |> Array.forall ((=) 0.0f)) "the padding row's gradient is zero")
            use table = torch.nn.Embedding(4L, 3L)
            use bad = torch.tensor([| 1L; 4L |]).reshape(1L, 2L)
            Expect.throws (fun () -> SimdEmbedding.Lookup(table.weight, bad, System.Nullable(), torch.ones(1L, 3L)) |> ignore) "an id outside the table is refused"
            Expect.throws (fun () -> SimdEmbedding.Lookup(table.weight, bad, System.Nullable()) |> ignore) "… without a scale too"
            use negative = torch.tensor([| -1L; 1L |])
            Expect.throws (fun () -> SimdEmbedding.Lookup(table.weight, negative, System.Nullable()) |> ignore) "… and a negative one"
        }

        test "an embedding looked up inside the SIMD kernel = the separate lookup, bit for bit: outputs and every gradient" {
            // Embed (a padding row; a SpatialDropout after it or not) into a SIMD-kernel layer: the kernel copies the
            // table's rows (times the dropout's mask) itself and adds the table's gradient from its input gradient;
            // the same floats as the lookup apart, in training, with lengths, stacked, the last step only. A
            // bidirectional layer keeps the lookup apart.
            let models =
                [ "Embed(16, padding: 0).SpatialDropout(0.3).Lstm(12, kernel: Simd).Dense(1, Sigmoid)", true
                  "Embed(8, padding: 0).Gru(11, returnSequences: true, kernel: Simd).Dense(3)", true
                  "Embed(9).SpatialDropout(0.5).Gru(10, resetAfter: false, kernel: Simd).Dense(1)", true
                  "Embed(33).SimpleRnn(7, kernel: Simd).Stack(2).Dense(2)", true
                  "Embed(8).SpatialDropout(0.2).Lstm(6, kernel: Simd).Bidirectional().Dense(1)", false ]
            for text, fused in models do
              for withLengths in [ false; true ] do
                use net = compile (ModelSyntax.Parse text) (InputSpec(Vocab = 40)) Convention.Torch 4L
                net.train()
                torch.manual_seed 5L |> ignore
                use ids = torch.randint(0L, 40L, [| 5L; 9L |])
                use lengths = torch.tensor([| 9L; 3L; 7L; 1L; 9L |])
                let pass inKernel =
                    let before = SimdRecurrence.EmbeddedRuns
                    let result = trainStep net ids (if withLengths then lengths else null) 6L inKernel
                    Expect.equal (SimdRecurrence.EmbeddedRuns > before) (inKernel && fused) $"{text}: the lookup in the kernel when it can"
                    result
                let yIn, gIn = pass true
                let yApart, gApart = pass false
                Expect.sequenceEqual yIn yApart $"{text}, lengths {withLengths}: the same outputs"
                for (n, a), (_, b) in List.zip gIn gApart do
                    Expect.sequenceEqual a b $"{text}, lengths {withLengths}: the same gradient of {n}"
                Expect.isTrue (gIn |> List.exists (fun (n, g) -> n.Contains "embed" && g |> Array.exists ((<>) 0.0f))) "the table has a gradient"
            // ids cut from a longer batch (the trainer trims each batch to its longest row): one step, strided
            use lstm = compile (ModelSyntax.Parse "Embed(6).SpatialDropout(0.3).Lstm(5, kernel: Simd).Dense(1)") (InputSpec(Vocab = 40)) Convention.Torch 2L
            lstm.train()
            use wide = torch.randint(0L, 40L, [| 4L; 7L |])
            use first = wide.narrow(1L, 0L, 1L)
            Expect.isFalse (first.t().reshape(-1L).is_contiguous()) "a strided step"
            Expect.equal (trainStep lstm first null 3L true) (trainStep lstm first null 3L false) "one strided step: the same outputs and gradients"
            // an id outside the table is refused in the kernel too
            use net = compile (ModelSyntax.Parse "Embed(4).SimpleRnn(3, kernel: Simd).Dense(1)") (InputSpec(Vocab = 6)) Convention.Torch 1L
            net.train()
            use bad = torch.tensor([| 1L; 6L |]).reshape(1L, 2L)
            Expect.throws (fun () -> net.Forward(bad, (null: torch.Tensor)) |> ignore) "an id outside the table"
        }

        test "the kernel's thread team runs every index once, passes on exceptions, and takes nested and concurrent calls" {
            // jobs back to back (a team thread arriving late must not run an old job's body on a new job's index), with
            // pauses longer than the team's spin (its threads asleep, then woken)
            for round in 0 .. 3000 do
                let count = 2 + round % 3
                let hits = Array.zeroCreate<int> count
                Team.Run(count, fun i -> System.Threading.Interlocked.Increment(&hits.[i]) |> ignore)
                Expect.isTrue (hits |> Array.forall ((=) 1)) $"round {round}: every index once"
                if round % 1000 = 999 then System.Threading.Thread.Sleep(5)
            Expect.throwsT<System.InvalidOperationException> (fun () ->
                Team.Run(3, fun i -> if i = 1 then raise (System.InvalidOperationException "index 1"))) "an index's exception reaches the caller"
            let after = Array.zeroCreate<int> 2
            Team.Run(2, fun i -> after.[i] <- 1)
            Expect.equal after [| 1; 1 |] "the team runs again after an exception"
            // a body that calls Run itself, and two callers at once: the inner and the second go to the thread pool
            let inner = Array.zeroCreate<int> 6
            Team.Run(2, fun i -> Team.Run(3, fun j -> System.Threading.Interlocked.Increment(&inner.[3 * i + j]) |> ignore))
            Expect.isTrue (inner |> Array.forall ((=) 1)) "nested calls"
            let sums = Array.zeroCreate<int64> 2
            let callers =
                [| for c in 0 .. 1 ->
                    System.Threading.Tasks.Task.Run(fun () ->
                        for _ in 1 .. 500 do
                            Team.Run(2, fun i -> System.Threading.Interlocked.Add(&sums.[c], int64 (i + 1)) |> ignore)) |]
            System.Threading.Tasks.Task.WaitAll callers
            Expect.equal sums [| 1500L; 1500L |] "two callers at once"
            // the caller's execution context goes with the job (a test's narrowed SIMD path reaches every team thread)
            for w in widths do
                withWidth w (fun () ->
                    let seen = Array.zeroCreate<SimdWidth> 3
                    Team.Run(3, fun i -> System.Threading.Thread.Sleep 1; seen.[i] <- SimdMath.Width)
                    Expect.isTrue (seen |> Array.forall ((=) w)) $"{w} on every thread")
        }

        test "the embedding's gradient through autograd.grad, and accumulated over two backward passes" {
            // the table enters the function through a view (so libtorch keeps the gradient instead of copying it):
            // a functional gradient must still come back and leave .grad alone, and .grad must add up
            torch.manual_seed 10L |> ignore
            use table = torch.nn.Embedding(50L, 8L)
            use ids = torch.tensor([| 1L; 2L; 3L; 1L |]).reshape(2L, 2L)
            use scale = torch.full(2L, 8L, 2.0f)
            let loss () = SimdEmbedding.Lookup(table.weight, ids, System.Nullable(), scale).square().sum()
            use y = loss ()
            use g = torch.autograd.grad(ResizeArray [ y ], ResizeArray<torch.Tensor> [ table.weight :> torch.Tensor ]).[0]
            Expect.isTrue (isNull table.weight.grad) "a functional gradient leaves .grad alone"
            // d/dw Σ (2 w_id)² = 8 w_id per occurrence: row 1 twice, rows 2 and 3 once, the rest zero
            use counts = torch.tensor([| for i in 0 .. 49 -> match i with
                                                              | 1 -> 2.0f
                                                              | 2 | 3 -> 1.0f
                                                              | _ -> 0.0f |]).reshape(50L, 1L)
            use expected = table.weight.detach() * counts * 8.0f
            Expect.isLessThan (relErr g expected) 1e-6 "autograd.grad's gradient"
            for _ in 1 .. 2 do
                use a = loss ()
                a.backward()
            use twice = expected * 2.0f
            Expect.isLessThan (relErr table.weight.grad twice) 1e-6 "two backward passes add up in .grad"
        }

        test "the embedding split across threads: rows and gradient bit for bit as one thread's, float64's within 1e-5" {
            // past Chunked's split both ways (6,001 × 24 table, 40 × 140 ids: over 2 × Chunked.MinChunk floats): two
            // threads split the lookup by tokens and the gradient by table rows; ids repeat within and across the
            // halves of the table (around row 3,000, where two threads divide it), hit the first and last rows and
            // the padding row
            let V, d, T = 6001L, 24L, 140L
            Expect.isGreaterThanOrEqual (V * d) (2L * Chunked.MinChunk) "the table's gradient is split"
            Expect.isGreaterThanOrEqual (40L * T * d) (2L * Chunked.MinChunk) "the lookup is split"
            let idOf i =
                match i % 7L with
                | 0L -> 0L
                | 1L -> V - 1L
                | 2L -> 5L
                | _ -> 2990L + (i * 13L) % 21L
            use ids = torch.tensor([| for i in 0L .. 40L * T - 1L -> idOf i |]).reshape(40L, T)
            let threads = torch.get_num_threads()
            try
                for scaled in [ false; true ] do
                    torch.manual_seed 9L |> ignore
                    use scale = torch.empty(40L, d).bernoulli_(0.6).div_(torch.tensor 0.6f)
                    use g = torch.randn(T, 40L, d).transpose(0L, 1L)
                    // the reference in float64: the sums of a few hundred float32 rows differ by order in the 5th digit
                    use theirs = torch.nn.Embedding(V, d, padding_idx = 5L)
                    use weight64 = theirs.weight.detach().to_type(torch.ScalarType.Float64).requires_grad_(true)
                    use rows64 = weight64.index_select(0L, ids.reshape(-1L)).reshape(40L, T, d)
                    use yRef = if scaled then rows64 * scale.to_type(torch.ScalarType.Float64).unsqueeze(1L) else rows64.alias()
                    yRef.backward(ResizeArray [ g.to_type(torch.ScalarType.Float64) ])
                    let run n =
                        torch.set_num_threads n
                        use ours = torch.nn.Embedding(V, d, padding_idx = 5L)
                        (use _ng = torch.no_grad() in ours.weight.copy_(theirs.weight) |> ignore)
                        use y = SimdEmbedding.Lookup(ours.weight, ids, System.Nullable 5L, (if scaled then scale else null))
                        y.backward(ResizeArray [ g ])
                        values (y.contiguous()), values ours.weight.grad
                    let y1, g1 = run 1
                    let y2, g2 = run 2
                    Expect.equal y2 y1 $"scaled {scaled}: two threads' rows = one thread's, bit for bit"
                    Expect.equal g2 g1 $"scaled {scaled}: two threads' gradient = one thread's, bit for bit"
                    Expect.isLessThan (relErr (torch.tensor(y1).reshape(yRef.shape)) (yRef.contiguous())) 1e-7 $"scaled {scaled}: the float64 rows"
                    use grad64 = weight64.grad.index_fill(0L, torch.tensor [| 5L |], 0.0)      // the padding row: no gradient
                    Expect.isLessThan (relErr (torch.tensor(g1).reshape(V, d)) grad64) 1e-5 $"scaled {scaled}: the float64 gradient"
                    Expect.isTrue (g1.[int (5L * d) .. int (6L * d) - 1] |> Array.forall ((=) 0.0f)) "the padding row's gradient is zero"
                    Expect.isTrue (g1.[int ((V - 1L) * d) ..] |> Array.exists ((<>) 0.0f)) "the last row has its gradient"
                // a table of fewer rows than threads, wide enough to be split: no thread gets an empty range
                torch.set_num_threads 16
                use wide = torch.nn.Embedding(3L, 50000L)
                use few = torch.tensor([| 2L; 0L; 2L; 1L |]).reshape(2L, 2L)
                use y = SimdEmbedding.Lookup(wide.weight, few, System.Nullable(), torch.ones(2L, 50000L))
                y.sum().backward()
                Expect.equal (values (wide.weight.grad.sum(1L))) [| 50000.0f; 50000.0f; 100000.0f |] "each row's gradient counts its tokens"
            finally torch.set_num_threads threads
        }

        test "Embed → SpatialDropout → recurrent layer: the SIMD kernel's gradients (embedding table included) = the loop kernel's" {
            // the time-major hand-off between the lookup, dropout and the kernel, forward and back; the dropout masks
            // are the same draws on both sides (same seed, same order of random ops)
            for name, layer in [ "lstm", (fun k -> Model.Embed(12).SpatialDropout(0.3).Lstm(16, kernel = k).Dense(1))
                                 "stacked gru", (fun k -> Model.Embed(12).SpatialDropout(0.3).Gru(9, kernel = k).Stack(2).Dense(1))
                                 "rnn sequences", (fun k -> Model.Embed(12).SimpleRnn(8, returnSequences = true, kernel = k).Dense(1)) ] do
                use ids = torch.tensor([| for i in 0L .. 41L -> 1L + (i * 7L) % 19L |]).reshape(6L, 7L)
                let run (k: Kernel) =
                    use net = compile (layer k) (InputSpec(Vocab = 20)) Convention.Torch 11L
                    net.train()
                    torch.manual_seed 5L |> ignore
                    use y = net.Forward(ids, (null: torch.Tensor))
                    y.square().sum().backward()
                    values y, [ for n in paramNames net -> n, (param net n).grad.detach().clone() ]
                let ys, gs = run Kernel.Simd
                let yl, gl = run Kernel.Loop
                Expect.isLessThan (Array.map2 (fun (a: float32) b -> float (abs (a - b)) / max 1.0 (abs (float b))) ys yl |> Array.max) 1e-5 $"{name}: outputs"
                for (n, a), (_, b) in List.zip gs gl do
                    Expect.isLessThan (relErr a b) 1e-5 $"{name}: gradient of {n}"
        }

        test "kernel: Simd is refused for cells it cannot run, naming the layer and the reason" {
            let e = Support.expectSeqDslError "peephole" (fun () -> Model.Lstm(4, peephole = true, kernel = Kernel.Simd).Summary(InputSpec(Features = 2)))
            Expect.stringContains e.Message "kernel: Simd cannot be honoured" "message"
            Expect.stringContains e.Message "peephole" "reason"
        }
    ]
