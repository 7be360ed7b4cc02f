/// The fluent builder and the model records: new values per call, value equality, builder errors.
module SeqDsl.Tests.ModelSpecTests

open Expecto
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Tests.Support

[<Tests>]
let tests =
    testList "ModelSpec" [
        test "the card's example builds and prints itself" {
            let m = Model.Embed(32).Lstm(64).Stack(2).Dense(1)
            Expect.equal (string m) "Embed(32).Lstm(64).Stack(2).Dense(1)" "ToString is the fluent text"
            Expect.equal m.Layers.Length 3 "Stack modifies the LSTM rather than adding a layer"
            let r = m.Layers.[1] :?> RecurrentLayer
            Expect.equal r.Layers 2 "two stacked layers"
        }

        test "every call returns a new value and leaves the old one unchanged" {
            let a = Model.Embed(16)
            let b = a.Gru(8)
            let c = a.Lstm(8)
            Expect.equal a.Layers.Length 1 "a unchanged"
            Expect.equal (string b) "Embed(16).Gru(8)" "b"
            Expect.equal (string c) "Embed(16).Lstm(8)" "c"
            let d = b.Bidirectional(Merge.Sum)
            Expect.isNull (box (b.Layers.[1] :?> RecurrentLayer).Bidirectional) "b still unidirectional"
            Expect.equal (d.Layers.[1] :?> RecurrentLayer).Bidirectional (System.Nullable Merge.Sum) "d bidirectional"
        }

        test "records have value equality, including the layer list" {
            let a = Model.Embed(32, vocab = 8000).Gru(32, resetAfter = false).Dense(1, Activation.Sigmoid)
            let b = Model.Embed(32, vocab = 8000).Gru(32, resetAfter = false).Dense(1, Activation.Sigmoid)
            Expect.equal a b "equal models"
            Expect.equal (a.GetHashCode()) (b.GetHashCode()) "equal hashes"
            Expect.notEqual a (Model.Embed(32, vocab = 8000).Gru(32).Dense(1, Activation.Sigmoid)) "resetAfter differs"
            Expect.notEqual a (Model.Embed(32, vocab = 8000).Gru(32, resetAfter = false).Dense(1)) "activation differs"
        }

        test "mixed kinds stack layer by layer" {
            let m = Model.Embed(32).Gru(256).Lstm(256)
            Expect.equal (string m) "Embed(32).Gru(256).Lstm(256)" "text"
            Expect.isTrue (Shapes.ReturnsSequences(m, 1)) "GRU below another recurrent layer returns sequences"
            Expect.isFalse (Shapes.ReturnsSequences(m, 2)) "top LSTM returns its last step"
        }

        test "Stack and Bidirectional commute and print in one canonical order" {
            let a = Model.Embed(8).Lstm(4).Stack(2).Bidirectional()
            let b = Model.Embed(8).Lstm(4).Bidirectional().Stack(2)
            Expect.equal a b "same value"
            Expect.equal (string b) "Embed(8).Lstm(4).Stack(2).Bidirectional()" "canonical text"
        }

        testList "builder errors name the layer, what was received and what was expected" [
            test "Stack on a non-recurrent layer" {
                let e = expectSeqDslError "Stack on Dense" (fun () -> Model.Embed(8).Lstm(4).Dense(2).Stack(2))
                Expect.equal e.LayerIndex (System.Nullable 2) "layer index"
                Expect.equal e.LayerKind "Dense" "layer kind"
                Expect.stringContains e.Message "Stack applies to a recurrent layer" "reason"
                Expect.stringContains e.Message "Received: Dense" "received"
            }
            test "Stack on an empty model" {
                let e = expectSeqDslError "Stack on empty" (fun () -> Model.Empty.Stack(2))
                Expect.stringContains e.Message "empty" "says the model is empty"
            }
            test "Bidirectional twice" {
                let e = expectSeqDslError "Bidirectional twice" (fun () -> Model.Lstm(4).Bidirectional().Bidirectional(Merge.Sum))
                Expect.stringContains e.Message "Bidirectional applied twice" "reason"
                Expect.equal e.LayerKind "Lstm" "kind"
            }
            test "Stack twice" {
                let e = expectSeqDslError "Stack twice" (fun () -> Model.Lstm(4).Stack(2).Stack(3))
                Expect.stringContains e.Message "Stack applied twice" "reason"
            }
            for (name, f, fragment) in
                [ "units 0", (fun () -> Model.Lstm(0)), "Lstm units must be positive"
                  "negative embed dim", (fun () -> Model.Embed(-3)), "Embed dim must be positive"
                  "dense 0", (fun () -> Model.Lstm(3).Dense(0)), "Dense units must be positive"
                  "stack 0", (fun () -> Model.Lstm(3).Stack(0)), "Stack count must be positive"
                  "dropout 1", (fun () -> Model.Lstm(3).Dropout(1.0)), "Dropout must lie in [0, 1)"
                  "dropout negative", (fun () -> Model.Lstm(3).SpatialDropout(-0.1)), "SpatialDropout must lie in [0, 1)"
                  "stack dropout on one layer", (fun () -> Model.Lstm(3).Stack(1, 0.2)), "needs Stack(n) with n ≥ 2"
                  "padding outside vocab", (fun () -> Model.Embed(3, vocab = 10, padding = 10)), "padding index"
                  "attention units 0", (fun () -> Model.Lstm(3, returnSequences = true).Attention(0)), "Attention units must be positive"
                  "non-finite forget bias", (fun () -> Model.Lstm(3, forgetBias = nan)), "finite"
                  "Fused impossible", (fun () -> Model.Gru(3, resetAfter = false, kernel = Kernel.Fused)), "Fused cannot be honoured" ] do
                test name {
                    let e = expectSeqDslError name f
                    Expect.stringContains e.Message fragment "message"
                    Expect.isNotNull e.Expected "says what was expected"
                    Expect.isNotNull e.Received "says what was received"
                }
        ]
    ]
