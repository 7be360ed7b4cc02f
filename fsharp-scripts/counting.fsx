// Seed 000's counting task with the F# pipeline: an LSTM(20) regresses the number of ones in
// binary sequences of 20 steps; accuracy = rounded prediction equals the count.
//   dotnet fsi fsharp-scripts/counting.fsx            (5,000 sequences, 6 epochs, seconds)
#load "SeqDsl.fsx"
open SeqDsl.FSharp // the only open: the F# surface re-exports the library types a script needs

let train = Synthetic.CountingOnes(5000, 20, 1) |> SequenceData.From
let test = Synthetic.CountingOnes(500, 20, 2) |> SequenceData.From
let counter =
    model {
        lstm 20
        dense 1 Linear
    }
let net = counter |> Train.compile (InputSpec(Features = 1)) 2L
// the book's LSTMCell draws its weights from U(−√(3/H), √(3/H))
net.Initialize("layers.0.*", Init.Uniform(-sqrt (3.0 / 20.0), sqrt (3.0 / 20.0))) |> ignore
let config = { Train.defaults with Epochs = 6; BatchSize = 16; Optimizer = Adam 5e-3; Metrics = [ Metric.Accuracy ]; OnEpoch = Some(printfn "%O") }
net |> Train.fit config train |> ignore
let m = net |> Train.evaluate LossKind.MeanSquaredError [ Metric.Accuracy ] test
printfn "test accuracy: %.4f" m.["accuracy"]
if m.["accuracy"] < 0.5 then failwith "the LSTM did not learn to count"
