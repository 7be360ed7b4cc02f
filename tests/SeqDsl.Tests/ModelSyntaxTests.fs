/// The model text: parse, print, round-trip, and errors that point at the column.
module SeqDsl.Tests.ModelSyntaxTests

open Expecto
open FsCheck
open FsCheck.FSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Tests.Support

let private parseError text = expectSeqDslError text (fun () -> ModelSyntax.Parse text)

[<Tests>]
let tests =
    testList "ModelSyntax" [
        test "parses the card's model" {
            Expect.equal (ModelSyntax.Parse "Embed(32).Lstm(64).Stack(2).Dense(1, Sigmoid)")
                (Model.Embed(32).Lstm(64).Stack(2).Dense(1, Activation.Sigmoid)) "same value as the C# builder"
        }

        test "positional and named arguments, qualified and lower-case enums, Model. prefix, newlines" {
            let text = "Model.Embed(32, vocab: 8000, padding: 0)\n  .Gru(32, resetAfter: false)\n  .Bidirectional(Merge.Sum)\n  .Dense(1, activation: sigmoid)"
            let expected = Model.Embed(32, vocab = 8000, padding = 0).Gru(32, resetAfter = false).Bidirectional(Merge.Sum).Dense(1, Activation.Sigmoid)
            Expect.equal (ModelSyntax.Parse text) expected "parsed"
            Expect.equal (string expected) "Embed(32, vocab: 8000, padding: 0).Gru(32, resetAfter: false).Bidirectional(Sum).Dense(1, Sigmoid)" "printed"
        }

        test "every option prints and reads back" {
            let m =
                Model.Embed(8, vocab = 100, padding = 0, pretrained = "glove \"6B\"\\100d.txt", trainable = false)
                    .SimpleRnn(4, Activation.Relu, Bias.None, returnSequences = true)
                    .Lstm(5, Bias.Keras, forgetBias = 1.5, peephole = true, layerNorm = true, returnSequences = true, kernel = Kernel.Loop)
                    .Stack(2, 0.25)
                    .Gru(3, resetAfter = false, bias = Bias.Torch, returnSequences = true)
                    .Bidirectional(Merge.Ave)
                    .SpatialDropout(0.1).Attention(6).Dropout(1e-5).Dense(2, Activation.Softmax)
            let text = string m
            Expect.equal (ModelSyntax.Parse text) m text
        }

        testList "errors carry line, column and a caret excerpt" [
            test "unknown layer, with a suggestion" {
                let e = parseError "Embed(32).Lstmm(64)"
                Expect.equal (e.Line, e.Column) (System.Nullable 1, System.Nullable 11) "position"
                Expect.stringContains e.Message "did you mean Lstm?" "suggestion"
                Expect.stringContains e.Message "  Embed(32).Lstmm(64)\n            ^" "caret under the L"
            }
            test "position on a later line" {
                let e = parseError "Embed(32)\n  .Lstm(64,)"
                Expect.equal (e.Line, e.Column) (System.Nullable 2, System.Nullable 12) "position of ')'"
            }
            test "unknown argument name lists the valid ones" {
                let e = parseError "Gru(32, reset_after: false)"
                Expect.equal e.Column (System.Nullable 9) "column of the name"
                Expect.stringContains e.Message "Gru has no argument 'reset_after'" "reason"
                Expect.stringContains e.Message "resetAfter" "lists resetAfter"
            }
            test "wrong value type" {
                let e = parseError "Lstm(3.5)"
                Expect.equal e.Column (System.Nullable 6) "column of the value"
                Expect.equal e.Expected "an integer" "expected"
                Expect.equal e.Received "'3.5'" "received"
            }
            test "bad enum value" {
                let e = parseError "Lstm(4).Dense(1, Sigmoidal)"
                Expect.stringContains e.Message "one of Linear, Relu, Sigmoid, Tanh, Softmax" "choices"
            }
            test "missing required argument" {
                let e = parseError "Embed(32).Dense()"
                Expect.stringContains e.Message "Dense needs its 'units' argument" "reason"
            }
            test "too many positional arguments" {
                let e = parseError "Dropout(0.1, 0.2)"
                Expect.equal e.Column (System.Nullable 14) "column of the extra"
            }
            test "positional after named" {
                let e = parseError "Dense(units: 3, Relu)"
                Expect.stringContains e.Message "positional argument cannot follow a named one" "reason"
            }
            test "duplicate argument" {
                let e = parseError "Dense(3, units: 4)"
                Expect.stringContains e.Message "given twice" "reason"
            }
            test "missing dot between calls" {
                let e = parseError "Embed(32) Lstm(4)"
                Expect.equal e.Column (System.Nullable 11) "column"
            }
            test "unexpected character" {
                let e = parseError "Embed(32);Lstm(4)"
                Expect.equal e.Column (System.Nullable 10) "column of ';'"
            }
            test "unterminated string" {
                let e = parseError "Embed(8, pretrained: \"abc"
                Expect.stringContains e.Message "Unterminated string" "reason"
            }
            test "empty text" {
                let e = parseError "   "
                Expect.stringContains e.Message "empty" "reason"
            }
            test "a spec error from the builder points at the call" {
                let e = parseError "Embed(8).Lstm(4, returnSequences: false).Gru(3)"
                Expect.equal e.Column (System.Nullable 42) "column of Gru"
                Expect.equal e.LayerIndex (System.Nullable 2) "layer index kept"
                Expect.equal e.Kind ErrorKind.Shape "kind kept"
            }
            test "a value error from the builder points at the call" {
                let e = parseError "Embed(8).Dropout(1.5)"
                Expect.equal e.Column (System.Nullable 10) "column of Dropout"
                Expect.stringContains e.Message "Dropout must lie in [0, 1)" "reason"
            }
        ]

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 500 }
            "Parse(ToString(m)) = m for generated valid models"
            (Prop.forAll Generators.validModelArb (fun m -> ModelSyntax.Parse(string m) = m))
    ]
