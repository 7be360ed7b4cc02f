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

/// A history with one record per epoch; each column is (key, value per epoch).
let private historyOf (columns: (string * float[]) list) =
    let h = History()
    let epochs = columns |> List.map (snd >> Array.length) |> List.max
    for e in 0 .. epochs - 1 do
        let values = readOnlyDict [ for key, vs in columns do if e < vs.Length then key, vs.[e] ]
        h.Add(EpochRecord(e + 1, 0.5, 0.001, values))
    h

/// n values from a to b, evenly spaced on a log scale (a and b positive) or a linear one.
let private geometric n (a: float) (b: float) = Array.init n (fun i -> a * (b / a) ** (float i / float (n - 1)))
let private linear n (a: float) (b: float) = Array.init n (fun i -> a + (b - a) * float i / float (n - 1))

let private classifier () =
    historyOf [ "loss", linear 12 0.69 0.30; "accuracy", linear 12 0.5 0.93
                "val_loss", linear 12 0.70 0.35; "val_accuracy", linear 12 0.5 0.90 ]

/// Width and height from a PNG's IHDR chunk, after checking the signature.
let private pngSize (bytes: byte[]) =
    Expect.equal bytes.[0..7] [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |] "PNG signature"
    Expect.equal (Text.Encoding.ASCII.GetString(bytes, 12, 4)) "IHDR" "IHDR first"
    let be (o: int) = (int bytes.[o] <<< 24) ||| (int bytes.[o + 1] <<< 16) ||| (int bytes.[o + 2] <<< 8) ||| int bytes.[o + 3]
    be 16, be 20

[<Tests>]
let plotTests =
    testList "Plots" [
        test "learning curves: one panel per quantity, the loss first, its training and validation series together" {
            let panels (h: History) = [ for p in Plots.CurvePanels h -> p.Quantity, List.ofSeq p.Keys ]
            Expect.equal (panels (classifier ()))
                [ "loss", [ "loss"; "val_loss" ]; "accuracy", [ "accuracy"; "val_accuracy" ] ] "classifier"
            let lm = historyOf [ "loss", linear 5 2.0 1.2; "perplexity", linear 5 7.4 3.3 ]
            Expect.equal (panels lm) [ "loss", [ "loss" ]; "perplexity", [ "perplexity" ] ] "language model: no validation"
            let series = historyOf [ "mse", linear 4 3.0 1.0; "loss", linear 4 3.0 1.0; "mae", linear 4 1.5 0.7; "r2", linear 4 -0.2 0.8
                                     "speed", linear 4 1.0 2.0; "val_loss", linear 4 3.1 1.2; "val_r2", linear 4 -0.3 0.7 ]
            Expect.equal (panels series)
                [ "loss", [ "loss"; "val_loss" ]; "r2", [ "r2"; "val_r2" ]; "mae", [ "mae" ]; "mse", [ "mse" ]; "speed", [ "speed" ] ]
                "regression: loss, then the metrics in their order, then anything else"
        }

        test "log y axis when a positive series spans more than 20×, linear otherwise" {
            Expect.isTrue (Plots.NeedsLogScale(geometric 60 2.6e7 5e3)) "a loss from 2.6e7 to 5e3"
            Expect.isFalse (Plots.NeedsLogScale(linear 60 0.69 0.3)) "a loss from 0.69 to 0.3"
            Expect.isFalse (Plots.NeedsLogScale(linear 10 -0.4 0.9)) "R² crossing zero cannot be logarithmic"
            Expect.isFalse (Plots.NeedsLogScale([| 0.0; 10.0; 5000.0 |])) "a zero cannot be drawn on a log axis"
            Expect.isFalse (Plots.NeedsLogScale([| 1.0; 20.0 |])) "exactly 20× stays linear"
            Expect.isTrue (Plots.NeedsLogScale([| 1.0; 20.5 |])) "just over 20× is logarithmic"
            Expect.isTrue (Plots.NeedsLogScale(geometric 40 4000.0 60.0)) "an MAE from 4000 to 60: the tail would look like zero"
            Expect.isFalse (Plots.NeedsLogScale(linear 30 0.5 0.97)) "accuracy"
            Expect.isTrue (Plots.NeedsLogScale([| nan; 2000.0; infinity; 5.0 |])) "non-finite values are ignored"
            Expect.isFalse (Plots.NeedsLogScale([| nan |])) "nothing finite: linear"
            let h = historyOf [ "loss", geometric 60 2.6e7 5e3; "accuracy", linear 60 0.5 0.95; "val_loss", linear 60 40.0 0.3 ]
            Expect.equal [ for p in Plots.CurvePanels h -> p.Quantity, p.LogScale ] [ "loss", true; "accuracy", false ]
                "a panel is logarithmic over both of its series"
        }

        test "log ticks: labelled with the values, decades only over many decades, also 2 and 5 over few" {
            let labels (ticks: ScottPlot.Tick[]) = [ for x in ticks do if x.IsMajor then x.Label ]
            let wide = labels (Plots.LogTicks(5e3, 2.6e7))
            Expect.containsAll wide [ "1e4"; "1e5"; "1e6"; "1e7" ] "every decade from 1e4 to 1e7"
            Expect.isFalse (wide |> List.exists (fun l -> l.StartsWith "2" || l.StartsWith "5")) "no 2 or 5 over four decades"
            Expect.containsAll (labels (Plots.LogTicks(2.7e-4, 0.69))) [ "0.001"; "0.01"; "0.1"; "1" ] "a classifier's loss in plain numbers"
            let few = labels (Plots.LogTicks(0.05, 0.9))
            Expect.containsAll few [ "0.05"; "0.1"; "0.2"; "0.5"; "1" ] "1, 2 and 5 × each decade, plain numbers"
            let huge = labels (Plots.LogTicks(1e-12, 1e12))
            Expect.isLessThanOrEqual huge.Length 14 "not a label per decade over 24 decades"
            Expect.contains huge "1e0" "decades on a common step"
            let positions = [ for x in Plots.LogTicks(5e3, 2.6e7) -> x.Position ]
            Expect.contains positions (log10 2e5) "a minor tick at 2 × 1e5 (log10 positions)"
        }

        test "every series on its panel's one (left) y axis, log values on a log panel, the legend outside the data area" {
            let h = historyOf [ "loss", geometric 30 2.6e7 5e3; "accuracy", linear 30 0.5 0.95
                                "val_loss", geometric 30 3e7 8e3; "val_accuracy", linear 30 0.5 0.9 ]
            let figure = Plots.LearningCurvesFigure(h, "model\ndata")
            use _ = ScottPlot.IMultiplotExtensions.Render(figure.Plots, figure.Width, figure.Height)
            let plots = ScottPlot.IMultiplotExtensions.GetPlots figure.Plots
            Expect.equal plots.Length 2 "one plot per panel"
            for p, panel in Array.zip plots (Array.ofSeq figure.Panels) do
                let lines = p.GetPlottables<ScottPlot.Plottables.Scatter>() |> Array.ofSeq
                Expect.equal [ for s in lines -> s.LegendText ] [ "training"; "validation" ] $"{panel.Quantity}: both series, named"
                for s in lines do
                    Expect.isTrue (obj.ReferenceEquals(s.Axes.YAxis, p.Axes.Left)) $"{panel.Quantity}/{s.LegendText} on the left axis"
                Expect.equal p.Axes.Right.Label.Text "" $"{panel.Quantity}: no second y axis in use"
                Expect.isFalse p.Legend.IsVisible $"{panel.Quantity}: no legend inside the data area"
                Expect.isTrue (p.Axes.GetPanels() |> Seq.exists (fun x -> x :? ScottPlot.Panels.LegendPanel)) $"{panel.Quantity}: legend beside it"
                Expect.equal (p.Axes.Left.Label.Text.Contains "log scale") panel.LogScale $"{panel.Quantity}: the axis says whether it is logarithmic"
            let top = plots.[0].GetPlottables<ScottPlot.Plottables.Scatter>() |> Seq.head
            let ys = [ for c in top.Data.GetScatterPoints() -> c.Y ]
            Expect.floatClose Accuracy.high ys.Head (log10 2.6e7) "log10 drawn on the log panel (first epoch)"
            Expect.floatClose Accuracy.high (List.last ys) (log10 5e3) "log10 drawn on the log panel (last epoch)"
        }

        test "learning-curves PNG: valid, Plots.Width wide, PanelHeight taller per panel, replaced in one rename" {
            let dir = tempFolder "curves"
            let two = Path.Combine(dir, "two.png")
            File.WriteAllText(two, "an older file")
            Plots.LearningCurves(classifier (), two, "Embed(16).Lstm(32).Dense(1, Sigmoid)\nsynthetic:negation")
            let four = Path.Combine(dir, "four.png")
            let regression = historyOf [ "loss", geometric 25 2.6e7 5e3; "r2", linear 25 -0.5 0.9; "mae", linear 25 900.0 40.0; "mse", geometric 25 2.6e7 5e3 ]
            Plots.LearningCurves(regression, four, "Embed(16).Lstm(32).Dense(1, Sigmoid)\nsynthetic:negation")
            let w2, h2 = pngSize (File.ReadAllBytes two)
            let w4, h4 = pngSize (File.ReadAllBytes four)
            Expect.equal (w2, w4) (Plots.Width, Plots.Width) "width"
            Expect.equal (h4 - h2) (2 * Plots.PanelHeight) "two more panels, two more panel heights"
            use decoded = new ScottPlot.Image(File.ReadAllBytes two)
            Expect.equal (decoded.Width, decoded.Height) (w2, h2) "the PNG decodes to the size its header gives"
            Expect.equal (Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort) [| "four.png"; "two.png" |] "no temporary file left"
            let e = expectSeqDslError "empty" (fun () -> Plots.LearningCurves(History(), Path.Combine(dir, "none.png")))
            Expect.stringContains e.Message "at least one value" "an empty history is refused"
        }
    ]
