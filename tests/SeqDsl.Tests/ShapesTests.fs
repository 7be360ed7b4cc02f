/// Validation and shape inference on the spec alone.
module SeqDsl.Tests.ShapesTests

open Expecto
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Tests.Support

let private shapes (m: ModelSpec) (input: InputSpec) =
    m.Summary(input, Convention.Torch).Rows |> Seq.map (fun r -> string r.Output) |> List.ofSeq

[<Tests>]
let tests =
    testList "Shapes" [
        test "many-to-one: the last recurrent layer returns its last step" {
            Expect.equal (shapes (Model.Embed(32).Lstm(64).Dense(1)) (InputSpec(Vocab = 100, SeqLen = 200)))
                [ "(None, 200, 32)"; "(None, 64)"; "(None, 1)" ] "shapes"
        }

        test "a Dense after a sequence output applies per time step (many-to-many)" {
            Expect.equal (shapes (Model.Embed(16).Gru(32, returnSequences = true).Dense(50, Activation.Softmax)) (InputSpec(Vocab = 50)))
                [ "(None, None, 16)"; "(None, None, 32)"; "(None, None, 50)" ] "shapes"
        }

        test "bidirectional widths: concat doubles, sum/mul/ave keep H" {
            for merge, width in [ Merge.Concat, 2 * 8; Merge.Sum, 8; Merge.Mul, 8; Merge.Ave, 8 ] do
                let s = Model.Lstm(8).Bidirectional(merge).Summary(InputSpec(Features = 3), Convention.Torch)
                Expect.equal s.Output.Features (int64 width) (string merge)
        }

        test "stacked layers below another recurrent layer return sequences; attention pools" {
            let m = Model.Embed(8).Lstm(16).Bidirectional().Attention().Dense(2)
            Expect.equal (shapes m (InputSpec(Vocab = 10, SeqLen = 7)))
                [ "(None, 7, 8)"; "(None, 7, 32)"; "(None, 32)"; "(None, 2)" ] "attention sees the bidirectional sequence"
        }

        test "numeric input needs a feature count, and the error says so" {
            let e = expectSeqDslError "no features" (fun () -> Model.Lstm(8).Summary(InputSpec(), Convention.Torch))
            Expect.equal e.LayerIndex (System.Nullable 0) "layer 0"
            Expect.stringContains e.Message "--features" "hint"
        }

        test "Embed needs a vocabulary from the layer or the data" {
            let e = expectSeqDslError "no vocab" (fun () -> Model.Embed(8).Lstm(4).Summary(InputSpec(), Convention.Torch))
            Expect.stringContains e.Message "vocabulary size" "reason"
            let fromLayer = Model.Embed(8, vocab = 10).Lstm(4).Summary(InputSpec(), Convention.Torch)
            Expect.equal fromLayer.Rows.[0].Params 80L "vocab from the layer"
            let fromData = Model.Embed(8).Lstm(4).Summary(InputSpec(Vocab = 20), Convention.Torch)
            Expect.equal fromData.Rows.[0].Params 160L "vocab from the data"
        }

        testList "structural errors" [
            test "a recurrent layer after the time axis was collapsed" {
                let e = expectSeqDslError "collapsed" (fun () -> Model.Embed(8).Lstm(4, returnSequences = false).Gru(4))
                Expect.equal e.LayerIndex (System.Nullable 2) "the GRU is at fault"
                Expect.equal e.Kind ErrorKind.Shape "shape error"
                Expect.stringContains e.Message "layer 1 (Lstm) already collapsed the time axis" "names the collapsing layer"
                Expect.stringContains e.Message "Set returnSequences: true on layer 1" "says the fix"
                Expect.equal e.Received "(batch, features)" "received"
                Expect.equal e.Expected "(batch, time, features)" "expected"
            }
            test "a recurrent layer after attention" {
                let e = expectSeqDslError "after attention" (fun () -> Model.Lstm(4).Attention().Lstm(2))
                Expect.stringContains e.Message "layer 1 (Attention) already collapsed" "names attention"
            }
            test "Embed anywhere but first" {
                let e = expectSeqDslError "embed second" (fun () -> Model.Lstm(4).Add(EmbedLayer(8)))
                Expect.equal e.LayerIndex (System.Nullable 1) "index"
                Expect.equal e.LayerKind "Embed" "kind"
                Expect.stringContains e.Message "must be the first layer" "reason"
            }
            test "Attention not preceded by a sequence output" {
                let e = expectSeqDslError "attention on vector" (fun () -> Model.Embed(8).Lstm(4, returnSequences = false).Attention())
                Expect.equal e.LayerKind "Attention" "kind"
                Expect.stringContains e.Message "needs a sequence" "reason"
            }
            test "SpatialDropout after the time axis is gone" {
                let e = expectSeqDslError "spatial on vector" (fun () -> Model.Embed(8).Lstm(4).SpatialDropout(0.2))
                Expect.equal e.LayerKind "SpatialDropout" "kind"
            }
            test "an empty model has no summary" {
                let e = expectSeqDslError "empty" (fun () -> Model.Empty.Summary(InputSpec(Features = 1), Convention.Torch))
                Expect.stringContains e.Message "no layers" "reason"
            }
        ]

        test "kernel plan: Auto takes the SIMD kernel up to 64 units, libtorch's fused kernel or the loop beyond" {
            let plan (m: ModelSpec) = (m.Summary(InputSpec(Features = 2), Convention.Keras).Rows.[0].Kernel).ToString()
            Expect.stringStarts (plan (Model.Lstm(64))) "simd (auto: 64 units ≤ 64" "small lstm"
            Expect.equal (plan (Model.Lstm(65))) "fused (oneDNN in training if verified)" "lstm beyond 64 units"
            Expect.equal (plan (Model.Gru(128))) "fused" "gru reset-after beyond 64 units"
            Expect.stringStarts (plan (Model.Gru(64, resetAfter = false))) "simd (auto: libtorch's GRU kernel is reset-after" "gru reset-before up to 64 units"
            Expect.stringStarts (plan (Model.Gru(128, resetAfter = false))) "loop: libtorch's GRU kernel is reset-after" "gru reset-before beyond: the loop (not measured)"
            Expect.stringStarts (plan (Model.SimpleRnn(4, Activation.Linear))) "simd (auto: libtorch's RNN kernel has no Linear" "linear rnn"
            Expect.stringStarts (plan (Model.Lstm(4, peephole = true))) "loop: libtorch's LSTM kernel has no peephole" "peephole"
            Expect.equal (plan (Model.Lstm(4, kernel = Kernel.Loop))) "loop: requested" "explicit loop"
            Expect.equal (plan (Model.Lstm(4, kernel = Kernel.Fused))) "fused (oneDNN in training if verified)" "explicit fused"
            Expect.equal (plan (Model.Lstm(400, kernel = Kernel.Simd))) "simd" "explicit simd"
        }
    ]
