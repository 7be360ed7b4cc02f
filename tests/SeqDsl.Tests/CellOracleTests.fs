/// Cells without a libtorch kernel against a plain-array float64 reference of their equations:
/// forward outputs, and gradients by finite differences.
module SeqDsl.Tests.CellOracleTests

open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Training
open SeqDsl.Tests.TorchSupport

let private sigmoid x = 1.0 / (1.0 + exp -x)

/// Reference GRU, reset-before (d2l; Keras reset_after=False), one bias vector, gate order r, z, n:
/// r = σ(x W_ir + h W_hr + b_r), z = σ(x W_iz + h W_hz + b_z), n = tanh(x W_in + (r ⊙ h) W_hn + b_n),
/// h' = z ⊙ h + (1 − z) ⊙ n. Weights as libtorch lays them out: W_ih (3H × I), W_hh (3H × H).
let private gruResetBefore (wih: float[,]) (whh: float[,]) (b: float[]) (xs: float[][]) (hidden: int) =
    let mutable h = Array.zeroCreate<float> hidden
    let outputs = ResizeArray()
    for x in xs do
        let gate g (hv: float[]) k = // row g·H + k of W_ih x + W_hh hv + b
            let row = g * hidden + k
            let mutable s = b.[row]
            for j in 0 .. x.Length - 1 do s <- s + wih.[row, j] * x.[j]
            for j in 0 .. hidden - 1 do s <- s + whh.[row, j] * hv.[j]
            s
        let r = Array.init hidden (fun k -> sigmoid (gate 0 h k))
        let z = Array.init hidden (fun k -> sigmoid (gate 1 h k))
        let rh = Array.init hidden (fun k -> r.[k] * h.[k])
        let n = Array.init hidden (fun k -> tanh (gate 2 rh k))
        h <- Array.init hidden (fun k -> z.[k] * h.[k] + (1.0 - z.[k]) * n.[k])
        outputs.Add(Array.copy h)
    outputs.ToArray()

/// Reference LSTM (gate order i, f, g, o; biases b_ih + b_hh), optionally with peepholes (w_ci, w_cf on c_{t−1},
/// w_co on c_t) and layer norm (LN of x W_x and of h W_h over 4H, of c_t over H; population variance, ε 1e-5).
type private LstmWeights =
    { Wih: float[,]; Whh: float[,]; B: float[]; Peep: float[] option
      Ln: (float[] * float[] * float[] * float[] * float[] * float[]) option }

let private layerNorm (v: float[]) (g: float[]) (b: float[]) =
    let m = Array.average v
    let var = v |> Array.averageBy (fun a -> (a - m) * (a - m))
    Array.init v.Length (fun k -> (v.[k] - m) / sqrt (var + 1e-5) * g.[k] + b.[k])

let private lstmReference (w: LstmWeights) (xs: float[][]) (hidden: int) =
    let mutable h = Array.zeroCreate<float> hidden
    let mutable c = Array.zeroCreate<float> hidden
    let outputs = ResizeArray()
    let rows = 4 * hidden
    for x in xs do
        let xw = Array.init rows (fun r -> Seq.sum (seq { for j in 0 .. x.Length - 1 -> w.Wih.[r, j] * x.[j] }))
        let hw = Array.init rows (fun r -> Seq.sum (seq { for j in 0 .. hidden - 1 -> w.Whh.[r, j] * h.[j] }))
        let xw, hw =
            match w.Ln with
            | Some(gx, bx, gh, bh, _, _) -> layerNorm xw gx bx, layerNorm hw gh bh
            | None -> xw, hw
        let pre = Array.init rows (fun r -> xw.[r] + hw.[r] + w.B.[r])
        let peep k = match w.Peep with Some p -> p.[k] | None -> 0.0
        let i = Array.init hidden (fun k -> sigmoid (pre.[k] + peep k * c.[k]))
        let f = Array.init hidden (fun k -> sigmoid (pre.[hidden + k] + peep (hidden + k) * c.[k]))
        let g = Array.init hidden (fun k -> tanh pre.[2 * hidden + k])
        let cNew = Array.init hidden (fun k -> f.[k] * c.[k] + i.[k] * g.[k])
        let o = Array.init hidden (fun k -> sigmoid (pre.[3 * hidden + k] + peep (2 * hidden + k) * cNew.[k]))
        let cOut = match w.Ln with Some(_, _, _, _, gc, bc) -> layerNorm cNew gc bc | None -> cNew
        h <- Array.init hidden (fun k -> o.[k] * tanh cOut.[k])
        c <- cNew
        outputs.Add(Array.copy h)
    outputs.ToArray()

/// Reference simple RNN h' = φ(x W_ih + h W_hh + b) and reset-after GRU (libtorch's equations, two bias vectors).
let private rnnReference (act: float -> float) (wih: float[,]) (whh: float[,]) (b: float[]) (xs: float[][]) (hidden: int) =
    let mutable h = Array.zeroCreate<float> hidden
    [| for x in xs do
         h <- Array.init hidden (fun k ->
             act (b.[k] + Seq.sum (seq { for j in 0 .. x.Length - 1 -> wih.[k, j] * x.[j] }) + Seq.sum (seq { for j in 0 .. hidden - 1 -> whh.[k, j] * h.[j] })))
         yield Array.copy h |]

let private gruResetAfter (wih: float[,]) (whh: float[,]) (bih: float[]) (bhh: float[]) (xs: float[][]) (hidden: int) =
    let mutable h = Array.zeroCreate<float> hidden
    [| for x in xs do
         let xp r = bih.[r] + Seq.sum (seq { for j in 0 .. x.Length - 1 -> wih.[r, j] * x.[j] })
         let hp r = bhh.[r] + Seq.sum (seq { for j in 0 .. hidden - 1 -> whh.[r, j] * h.[j] })
         h <- Array.init hidden (fun k ->
             let r = sigmoid (xp k + hp k)
             let z = sigmoid (xp (hidden + k) + hp (hidden + k))
             let n = tanh (xp (2 * hidden + k) + r * hp (2 * hidden + k))
             (1.0 - z) * n + z * h.[k])
         yield Array.copy h |]

let private matrix (t: torch.Tensor) =
    let v = values t |> Array.map float
    let cols = int t.shape.[1]
    Array2D.init (int t.shape.[0]) cols (fun i j -> v.[i * cols + j])

[<Tests>]
let tests =
    testList "CellOracle" [
        test "GRU reset-before (Keras single bias): the loop kernel equals the float64 reference" {
            use net = compile (Model.Gru(3, resetAfter = false, returnSequences = true)) (InputSpec(Features = 2)) Convention.Keras 4L
            Expect.equal (paramNames net) [ "layers.0.rnn.weight_ih_l0"; "layers.0.rnn.weight_hh_l0"; "layers.0.rnn.bias_ih_l0" ] "one bias vector"
            net.Initialize("layers.0.rnn.bias_ih_l0", SeqDsl.Engine.Init.Uniform(-0.5, 0.5)) |> ignore
            use x = torch.randn(1L, 5L, 2L)
            use y = net.forward x
            let xs = values x |> Array.map float |> Array.chunkBySize 2
            let expected = gruResetBefore (matrix (param net "layers.0.rnn.weight_ih_l0")) (matrix (param net "layers.0.rnn.weight_hh_l0"))
                                          (values (param net "layers.0.rnn.bias_ih_l0") |> Array.map float) xs 3
            let actual = values y |> Array.map float |> Array.chunkBySize 3
            for t in 0 .. 4 do
                for k in 0 .. 2 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } actual.[t].[k] expected.[t].[k] $"h[{t}][{k}]"
        }

        test "GRU reset-before gradients match central finite differences of the float64 reference" {
            use net = compile (Model.Gru(3, resetAfter = false)) (InputSpec(Features = 2)) Convention.Keras 6L
            use x = torch.randn(1L, 4L, 2L)
            use y = net.forward x
            y.sum().backward()
            let xs = values x |> Array.map float |> Array.chunkBySize 2
            let wih = matrix (param net "layers.0.rnn.weight_ih_l0")
            let whh = matrix (param net "layers.0.rnn.weight_hh_l0")
            let b = values (param net "layers.0.rnn.bias_ih_l0") |> Array.map float
            let loss (wih: float[,]) (whh: float[,]) (b: float[]) = gruResetBefore wih whh b xs 3 |> Array.last |> Array.sum
            let eps = 1e-6
            let gradWhh = matrix (param net "layers.0.rnn.weight_hh_l0").grad
            for (i, j) in [ 0, 0; 4, 2; 8, 1 ] do // one entry of each gate block: r, z, n
                let plus, minus = Array2D.copy whh, Array2D.copy whh
                plus.[i, j] <- plus.[i, j] + eps
                minus.[i, j] <- minus.[i, j] - eps
                let numeric = (loss wih plus b - loss wih minus b) / (2.0 * eps)
                Expect.floatClose { absolute = 1e-4; relative = 1e-3 } gradWhh.[i, j] numeric $"∂/∂W_hh[{i},{j}]"
            let gradB = values (param net "layers.0.rnn.bias_ih_l0").grad |> Array.map float
            for k in [ 1; 5; 7 ] do
                let plus, minus = Array.copy b, Array.copy b
                plus.[k] <- plus.[k] + eps
                minus.[k] <- minus.[k] - eps
                Expect.floatClose { absolute = 1e-4; relative = 1e-3 } gradB.[k] ((loss wih whh plus - loss wih whh minus) / (2.0 * eps)) $"∂/∂b[{k}]"
        }
    
        test "peephole LSTM with zero peephole weights is the plain LSTM; non-zero ones change it and learn" {
            use peep = compile (Model.Lstm(4, peephole = true, returnSequences = true)) (InputSpec(Features = 3)) Convention.Torch 2L
            use plain = compile (Model.Lstm(4, returnSequences = true, kernel = Kernel.Loop)) (InputSpec(Features = 3)) Convention.Torch 2L
            do
                use _ = torch.no_grad()
                for n in paramNames plain do (param peep n).copy_(param plain n) |> ignore
                (param peep "layers.0.rnn.weight_peephole_l0").zero_() |> ignore
            use x = torch.randn(2L, 5L, 3L)
            Expect.isLessThan (maxDiff (peep.forward x) (plain.forward x)) 1e-6f "zero peepholes"
            peep.Assign("layers.0.rnn.weight_peephole_l0", Array.create 12 0.5f)
            Expect.isGreaterThan (maxDiff (peep.forward x) (plain.forward x)) 1e-3f "peepholes act"
            use y = peep.forward x
            y.sum().backward()
            Expect.isGreaterThan (values (param peep "layers.0.rnn.weight_peephole_l0").grad |> Array.map abs |> Array.max) 0.0f "peepholes get gradients"
        }

        test "layer-norm LSTM is invariant to the scale of its input and recurrent weights" {
            use net = compile (Model.Lstm(4, layerNorm = true, returnSequences = true)) (InputSpec(Features = 3)) Convention.Torch 3L
            use x = torch.randn(2L, 6L, 3L)
            use before = net.forward x
            do
                use _ = torch.no_grad()
                (param net "layers.0.rnn.weight_ih_l0").mul_(torch.tensor 3.0f) |> ignore
                (param net "layers.0.rnn.weight_hh_l0").mul_(torch.tensor 5.0f) |> ignore
            use after = net.forward x
            Expect.isLessThan (maxDiff before after) 1e-3f "LN(a·xW) = LN(xW) up to LN's ε"
            Expect.equal (net.ParameterCount) net.Summary.Total "18H extra parameters counted"
        }
    
        for name, peephole, layerNormed in [ "plain (loop)", false, false; "peephole", true, false; "layer norm", false, true; "peephole + layer norm", true, true ] do
            test $"LSTM {name}: forward equals the float64 reference, gradients equal finite differences" {
                let model = Model.Lstm(3, peephole = peephole, layerNorm = layerNormed, returnSequences = true, kernel = Kernel.Loop)
                use net = compile model (InputSpec(Features = 2)) Convention.Torch 8L
                // move the layer-norm gains and shifts off 1 and 0 so that they matter
                for n in paramNames net do
                    if n.Contains "ln_" then net.Initialize(n, SeqDsl.Engine.Init.Uniform(0.5, 1.5)) |> ignore
                use x = torch.randn(1L, 4L, 2L)
                let xs = values x |> Array.map float |> Array.chunkBySize 2
                let vec n = values (param net n) |> Array.map float
                let weights () =
                    { Wih = matrix (param net "layers.0.rnn.weight_ih_l0"); Whh = matrix (param net "layers.0.rnn.weight_hh_l0")
                      B = Array.map2 (+) (vec "layers.0.rnn.bias_ih_l0") (vec "layers.0.rnn.bias_hh_l0")
                      Peep = (if peephole then Some(vec "layers.0.rnn.weight_peephole_l0") else None)
                      Ln = (if layerNormed then
                              Some(vec "layers.0.rnn.ln_ih_weight_l0", vec "layers.0.rnn.ln_ih_bias_l0", vec "layers.0.rnn.ln_hh_weight_l0",
                                   vec "layers.0.rnn.ln_hh_bias_l0", vec "layers.0.rnn.ln_c_weight_l0", vec "layers.0.rnn.ln_c_bias_l0")
                            else None) }
                let w0 = weights ()
                use y = net.forward x
                let expected = lstmReference w0 xs 3 |> Array.concat
                Array.iteri2 (fun k (a: float32) e -> Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float a) e $"output {k}") (values y) expected
                y.sum().backward()
                let loss w = lstmReference w xs 3 |> Array.sumBy Array.sum
                let eps = 1e-6
                let check (paramName: string) (index: int) (bump: LstmWeights -> float -> LstmWeights) =
                    let numeric = (loss (bump w0 eps) - loss (bump w0 -eps)) / (2.0 * eps)
                    let analytic = float (values (param net paramName).grad).[index]
                    Expect.floatClose { absolute = 1e-4; relative = 1e-3 } analytic numeric $"∂/∂{paramName}[{index}]"
                check "layers.0.rnn.weight_hh_l0" 7 (fun w d -> let m = Array2D.copy w.Whh in m.[2, 1] <- m.[2, 1] + d; { w with Whh = m })
                check "layers.0.rnn.bias_ih_l0" 4 (fun w d -> let b = Array.copy w.B in b.[4] <- b.[4] + d; { w with B = b })
                if peephole then
                    check "layers.0.rnn.weight_peephole_l0" 7 (fun w d -> let p = Array.copy w.Peep.Value in p.[7] <- p.[7] + d; { w with Peep = Some p })
                if layerNormed then
                    check "layers.0.rnn.ln_hh_weight_l0" 9 (fun w d ->
                        let (gx, bx, gh, bh, gc, bc) = w.Ln.Value
                        let g = Array.copy gh in g.[9] <- g.[9] + d
                        { w with Ln = Some(gx, bx, g, bh, gc, bc) })
                    check "layers.0.rnn.ln_c_bias_l0" 1 (fun w d ->
                        let (gx, bx, gh, bh, gc, bc) = w.Ln.Value
                        let b = Array.copy bc in b.[1] <- b.[1] + d
                        { w with Ln = Some(gx, bx, gh, bh, gc, b) })
            }
    
        for name, activation, act, bias in
            [ "tanh", Activation.Tanh, tanh, Bias.Auto; "relu", Activation.Relu, (fun v -> max v 0.0), Bias.Auto
              "linear without bias", Activation.Linear, id, Bias.None ] do
            test $"SimpleRnn {name} (loop kernel): forward and gradients against the float64 reference" {
                use net = compile (Model.SimpleRnn(3, activation, bias, returnSequences = true, kernel = Kernel.Loop)) (InputSpec(Features = 2)) Convention.Torch 9L
                use x = torch.randn(1L, 5L, 2L)
                let xs = values x |> Array.map float |> Array.chunkBySize 2
                let vec n = if (paramNames net) |> List.contains n then values (param net n) |> Array.map float else Array.zeroCreate 3
                let b = Array.map2 (+) (vec "layers.0.rnn.bias_ih_l0") (vec "layers.0.rnn.bias_hh_l0")
                let wih, whh = matrix (param net "layers.0.rnn.weight_ih_l0"), matrix (param net "layers.0.rnn.weight_hh_l0")
                use y = net.forward x
                let expected = rnnReference act wih whh b xs 3 |> Array.concat
                Array.iteri2 (fun k (a: float32) e -> Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float a) e $"output {k}") (values y) expected
                y.sum().backward()
                let loss (m: float[,]) = rnnReference act wih m b xs 3 |> Array.sumBy Array.sum
                let plus, minus = Array2D.copy whh, Array2D.copy whh
                plus.[1, 2] <- plus.[1, 2] + 1e-6
                minus.[1, 2] <- minus.[1, 2] - 1e-6
                Expect.floatClose { absolute = 1e-4; relative = 1e-3 } (float (values (param net "layers.0.rnn.weight_hh_l0").grad).[5])
                    ((loss plus - loss minus) / 2e-6) "∂/∂W_hh[1,2]"
            }

        test "GRU reset-after (loop kernel): forward and gradients against the float64 reference" {
            use net = compile (Model.Gru(3, returnSequences = true, kernel = Kernel.Loop)) (InputSpec(Features = 2)) Convention.Torch 10L
            use x = torch.randn(1L, 5L, 2L)
            let xs = values x |> Array.map float |> Array.chunkBySize 2
            let vec n = values (param net n) |> Array.map float
            let wih, whh = matrix (param net "layers.0.rnn.weight_ih_l0"), matrix (param net "layers.0.rnn.weight_hh_l0")
            let bih, bhh = vec "layers.0.rnn.bias_ih_l0", vec "layers.0.rnn.bias_hh_l0"
            use y = net.forward x
            let expected = gruResetAfter wih whh bih bhh xs 3 |> Array.concat
            Array.iteri2 (fun k (a: float32) e -> Expect.floatClose { absolute = 1e-5; relative = 1e-4 } (float a) e $"output {k}") (values y) expected
            y.sum().backward()
            let loss (b: float[]) = gruResetAfter wih whh bih b xs 3 |> Array.sumBy Array.sum
            for k in [ 1; 4; 8 ] do // r, z and the reset-scaled n bias
                let plus, minus = Array.copy bhh, Array.copy bhh
                plus.[k] <- plus.[k] + 1e-6
                minus.[k] <- minus.[k] - 1e-6
                Expect.floatClose { absolute = 1e-4; relative = 1e-3 } (float (values (param net "layers.0.rnn.bias_hh_l0").grad).[k])
                    ((loss plus - loss minus) / 2e-6) $"∂/∂b_hh[{k}]"
        }
    ]
