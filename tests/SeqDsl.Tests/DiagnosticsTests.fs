/// Gradient flow through time (against the closed form of a linear RNN) and attention weights and plots.
module SeqDsl.Tests.DiagnosticsTests

open System
open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Data
open SeqDsl.Diagnostics
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

[<Tests>]
let tests =
    testList "Diagnostics" [
        test "gradient flow of a linear RNN: ∂L/∂h_t = W^(T−t) · ∂L/∂h_T exactly" {
            use net = compile (Model.SimpleRnn(1, Activation.Linear, Bias.None)) (InputSpec(Features = 1)) Convention.Torch 0L
            let u, w = 0.7, 1.3
            net.Assign("layers.0.rnn.weight_ih_l0", float32 u)
            net.Assign("layers.0.rnn.weight_hh_l0", float32 w)
            let bits = "0110100111"
            let data = SequenceData.From(Synthetic.OneSequence bits)
            let flow = GradientFlow.Measure(net, data, Loss.Mse)
            Expect.equal flow.Count 1 "one layer, one direction"
            let norms = flow.[0].Norms
            Expect.equal norms.Length 10 "one norm per step"
            // h_T by hand, then dL/dh_T = 2 (h_T − y)
            let mutable h = 0.0
            for c in bits do h <- (if c = '1' then u else 0.0) + h * w
            let y = float (bits |> Seq.filter ((=) '1') |> Seq.length)
            let last = abs (2.0 * (h - y))
            for t in 1 .. 10 do
                Expect.floatClose { absolute = 1e-3; relative = 1e-4 } norms.[t - 1] (last * (abs w ** float (10 - t))) $"step {t}"
            Expect.equal (values (param net "layers.0.rnn.weight_hh_l0")) [| float32 w |] "weights untouched"
        }

        test "gradient flow covers every stacked layer and direction of fused layers (via the loop twin)" {
            use net = compile (Model.Embed(4).Lstm(5).Stack(2).Bidirectional().Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 9)) Convention.Torch 1L
            let x = torch.randint(1L, 9L, [| 3L; 6L |], dtype = torch.ScalarType.Int64)
            let flow = GradientFlow.Measure(net, SequenceData(x, torch.ones(3L, 1L)), Loss.Bce)
            Expect.equal [ for g in flow -> g.Stacked, g.Direction ] [ 0, 0; 0, 1; 1, 0; 1, 1 ] "stacked × direction"
            Expect.isTrue (flow |> Seq.forall (fun g -> g.Norms.Length = 6 && g.Norms |> Array.forall (fun v -> v > 0.0))) "a gradient at every step"
            let png = Path.Combine(tempFolder "gf", "flow.png")
            GradientFlow.Plot(flow, png, "test")
            Expect.isGreaterThan (FileInfo(png).Length) 1000L "PNG written"
        }

        test "attention: weights sum to one, padding gets zero weight, output is the weighted sum" {
            use net = compile (Model.Embed(4).Gru(3, returnSequences = true).Attention(5)) (InputSpec(Vocab = 9)) Convention.Torch 2L
            let x = torch.randint(1L, 9L, [| 2L; 5L |], dtype = torch.ScalarType.Int64)
            let lengths = torch.tensor([| 5L; 3L |])
            let ctx = ForwardContext(Lengths = lengths)
            use y = net.Forward(x, ctx)
            let a = values ctx.AttentionWeights
            Expect.floatClose Accuracy.medium (float (Array.sum a.[0..4])) 1.0 "row 0 sums to 1"
            Expect.floatClose Accuracy.medium (float (Array.sum a.[5..7])) 1.0 "row 1 sums to 1 over its 3 real steps"
            Expect.equal a.[8..9] [| 0.0f; 0.0f |] "padding steps get zero weight"
            let ctx2 = ForwardContext(Lengths = lengths)
            use seqNet = compile (Model.Embed(4).Gru(3, returnSequences = true)) (InputSpec(Vocab = 9)) Convention.Torch 2L
            copyWeights net seqNet
            use h = seqNet.Forward(x, ctx2)                                        // (2, 5, 3)
            use expected = (ctx.AttentionWeights.unsqueeze(-1L) * h).sum(1L)
            Expect.isLessThan (maxDiff y expected) 1e-5f "Σ α_t h_t"
        }

        test "attention heat map over the tokens" {
            let png = Path.Combine(tempFolder "att", "att.png")
            Plots.AttentionHeatmap([| "not"; "good"; "film" |], [| 0.7; 0.2; 0.1 |], png)
            Expect.isGreaterThan (FileInfo(png).Length) 1000L "PNG written"
            let e = expectSeqDslError "counts" (fun () -> Plots.AttentionHeatmap([| "a" |], [| 0.5; 0.5 |], png))
            Expect.stringContains e.Message "One weight per token" "message"
        }
    ]
