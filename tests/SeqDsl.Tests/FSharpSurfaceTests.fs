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

        test "model { } builds the pipeline's value" {
            let built =
                SeqDsl.FSharp.ModelExpression.model {
                    embed 32
                    lstm 64
                    stack 2
                    dropout 0.2
                    dense 1 Activation.Sigmoid
                }
            let piped = M.embed 32 |> M.lstm 64 |> M.stack 2 |> M.dropout 0.2 |> M.dense 1 Activation.Sigmoid
            Expect.equal built piped "same value"
        }

        test "returnSequences keeps the layer's other options" {
            let before = SeqDsl.Model.Lstm(4, peephole = true, kernel = Kernel.Loop).Stack(2, 0.25)
            let after = before |> M.returnSequences true
            Expect.equal after (SeqDsl.Model.Lstm(4, peephole = true, returnSequences = true, kernel = Kernel.Loop).Stack(2, 0.25))
                "peephole, kernel, stack and dropout kept"
        }

        test "Experiment.withTraining and withPreprocessing keep every other field" {
            let e = SeqDsl.Workflows.ExperimentSpec(Model = "Lstm(4).Dense(1)", Data = "synthetic:counting",
                                                    Preprocessing = SeqDsl.Workflows.PreprocessingSpec(Window = 9))
            let t = e |> SeqDsl.FSharp.Experiment.withTraining (SeqDsl.Workflows.TrainingSpec(Epochs = 3))
            Expect.equal t (SeqDsl.Workflows.ExperimentSpec(Model = e.Model, Data = e.Data, Preprocessing = e.Preprocessing,
                                                            Training = SeqDsl.Workflows.TrainingSpec(Epochs = 3))) "only the training options changed"
            let p = e |> SeqDsl.FSharp.Experiment.withPreprocessing (SeqDsl.Workflows.PreprocessingSpec(Window = 2))
            Expect.equal p.Training e.Training "training kept"
            Expect.equal p.Preprocessing.Window 2 "preprocessing replaced"
        }

        test "the F# surface covers every call of the argument table" {
            let camel (name: string) = string (System.Char.ToLowerInvariant name.[0]) + name.Substring 1
            let calls = [ for c in LayerArguments.Calls -> camel c.Name ]
            let moduleType = typeof<SeqDsl.FSharp.ModelBuilder>.Assembly.GetType("SeqDsl.FSharp.Model")
            let functions = set [ for m in moduleType.GetMethods() -> m.Name ]
            let operations =
                set [ for m in typeof<SeqDsl.FSharp.ModelBuilder>.GetMethods() do
                        for a in m.GetCustomAttributes(typeof<CustomOperationAttribute>, false) -> (a :?> CustomOperationAttribute).Name ]
            Expect.isEmpty [ for c in calls do if not (functions.Contains c) then c ] "a Model function per call"
            Expect.isEmpty [ for c in calls do if not (operations.Contains c) then c ] "a model { } operation per call"
        }

        test "embedWith takes options, not nulls" {
            let m = M.embedWith 16 (Some 1000) None (Some "vectors.txt") false
            Expect.equal (string m) "Embed(16, vocab: 1000, pretrained: \"vectors.txt\", trainable: false)" "text"
        }
    ]
