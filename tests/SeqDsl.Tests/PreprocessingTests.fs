/// Text preprocessing as a value saved with the model: inference repeats training exactly.
module SeqDsl.Tests.PreprocessingTests

open Expecto
open Microsoft.Data.Analysis
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Data
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

[<Tests>]
let tests =
    testList "Preprocessing" [
        test "Keras-style fixed length and seed-002-style lengths" {
            let texts = [ "a good movie"; "bad"; "a a a good bad movie" ]
            let k = TextPreprocessing.Fit(texts, Tokenizer.Keras, VocabularyOptions.Keras(), maxlen = 4)
            let p = k.Encode [ "good movie" ]
            // a ×4 → 1; good, movie, bad ×2 each, in order of first appearance → 2, 3, 4
            Expect.equal (p.Ids |> Array.map int) [| 0; 0; 2; 3 |] "pre-padded to 4"
            Expect.isNull (box p.Lengths) "no lengths with a fixed maxlen"
            let s = TextPreprocessing.Fit(texts, Tokenizer.Seed002, VocabularyOptions.Seed002())
            let p2 = s.Encode [ "good movie"; "unknownword" ]
            Expect.equal (p2.Rows, p2.Columns) (2, 2) "post-padded to the longest"
            Expect.equal (p2.Lengths |> Array.map int) [| 2; 1 |] "lengths"
        }

        test "saved with a model and read back, it encodes identically" {
            let frame = DataFrame(StringDataFrameColumn("text", [ "fun film"; "dull film"; "fun fun" ]), Int32DataFrameColumn("label", [ 1; 0; 1 ]))
            let p = TextPreprocessing.Fit(frame.Columns.["text"] :?> StringDataFrameColumn, Tokenizer.Seed002, VocabularyOptions.Seed002())
            use net = compile (Model.Embed(4, padding = 0).Lstm(3).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = p.Vocabulary.Size)) Convention.Torch 1L
            let dir = tempFolder "prep"
            ModelStore.Save(net, dir, p.Files())
            let back = TextPreprocessing.FromJson(ModelStore.ReadExtra(dir, TextPreprocessing.FileName))
            let a = p.Encode [ "fun film unknown" ]
            let b = back.Encode [ "fun film unknown" ]
            Expect.equal b.Ids a.Ids "ids"
            Expect.equal b.Lengths a.Lengths "lengths"
            Expect.equal back.Tokenizer "seed002" "tokenizer by name"
        }

        test "a corrupt preprocessing file is a clear error" {
            let e = expectSeqDslError "json" (fun () -> TextPreprocessing.FromJson "{\"Format\":1,\"Kind\":\"series\"}")
            Expect.stringContains e.Message "preprocessing.json" "names the file"
            // found by the long fuzz run: a file without a vocabulary, or with a vocabulary without tokens
            let e2 = expectSeqDslError "no vocabulary" (fun () -> TextPreprocessing.FromJson "{\"Format\":1,\"Kind\":\"text\",\"Tokenizer\":\"keras\"}")
            Expect.stringContains e2.Message "holds no vocabulary" "says what is missing"
            expectSeqDslError "no tokens" (fun () ->
                TextPreprocessing.FromJson "{\"Format\":1,\"Kind\":\"text\",\"Tokenizer\":\"keras\",\"Vocabulary\":{\"Format\":1}}") |> ignore
        }
    ]
