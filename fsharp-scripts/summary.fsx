// Declares seed 003's models with the F# pipeline functions and prints their summaries.
// Run after building:  dotnet build src/SeqDsl.FSharp && dotnet fsi fsharp-scripts/summary.fsx
#r "../src/SeqDsl.FSharp/bin/Debug/net10.0/SeqDsl.Core.dll"
#r "../src/SeqDsl.FSharp/bin/Debug/net10.0/SeqDsl.dll"
#r "../src/SeqDsl.FSharp/bin/Debug/net10.0/SeqDsl.FSharp.dll"

open SeqDsl.Spec
open SeqDsl.FSharp

let head = Model.embed 32 |> Model.spatialDropout 0.4
let tail m = m |> Model.dropout 0.4 |> Model.dense 1 Activation.Sigmoid

let models =
    [ "SimpleRNN", head |> Model.simpleRnn 32
      "LSTM", head |> Model.lstm 32
      "GRU (reset_after=False)", head |> Model.gruWith 32 false
      "Bidirectional LSTM", head |> Model.lstm 32 |> Model.bidirectional Merge.Concat
      "Stacked LSTM", head |> Model.lstm 32 |> Model.stack 2 ]

for name, body in models do
    let model = tail body
    printfn "== %s: %O" name model
    printfn "%O\n" (model |> Model.summary (InputSpec(Vocab = 8000, SeqLen = 200)) Convention.Keras)
