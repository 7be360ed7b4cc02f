/// The F# module functions build the same values as the C# builder.
module SeqDsl.Tests.FSharpSurfaceTests

open Expecto
open SeqDsl.Spec
module M = SeqDsl.FSharp.Model

[<Tests>]
let tests =
    testList "FSharp.Model" [
        test "the design card's pipeline, with short option names" {
            let card = M.embed 32 |> M.lstm 64 |> M.stack 2 |> M.dense 1 SeqDsl.FSharp.Options.Sigmoid
            Expect.equal (string card) "Embed(32).Lstm(64).Stack(2).Dense(1, Sigmoid)" "text"
            Expect.equal (M.lstm 4 M.empty |> M.bidirectional SeqDsl.FSharp.Options.Sum |> string) "Lstm(4).Bidirectional(Sum)" "merge"
        }

        test "pipeline equals the fluent C# value" {
            let piped = M.embed 32 |> M.lstm 64 |> M.stack 2 |> M.dense 1 Activation.Sigmoid
            Expect.equal piped (SeqDsl.Model.Embed(32).Lstm(64).Stack(2).Dense(1, Activation.Sigmoid)) "same value"
            Expect.equal (string piped) "Embed(32).Lstm(64).Stack(2).Dense(1, Sigmoid)" "text"
        }

        test "returnSequences sets the flag on the preceding recurrent layer only" {
            let m = M.embed 8 |> M.gruWith 4 false |> M.returnSequences true |> M.stackWithDropout 2 0.5 |> M.bidirectional Merge.Concat
            Expect.equal (string m) "Embed(8).Gru(4, resetAfter: false, returnSequences: true).Stack(2, dropout: 0.5).Bidirectional()" "text"
        }

        test "embedWith takes options, not nulls" {
            let m = M.embedWith 16 (Some 1000) None (Some "vectors.txt") false
            Expect.equal (string m) "Embed(16, vocab: 1000, pretrained: \"vectors.txt\", trainable: false)" "text"
        }
    ]
