/// Seed 000's counting experiments E1 and E2, through the DSL.
module SeqDsl.Tests.CountingOnesTests

open Expecto
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Data
open SeqDsl.Tests.TorchSupport

[<Tests>]
let tests =
    testSequenced <| testList "CountingOnes" [
        test "E1: a 2-parameter linear RNN from U = −2, W = 0 learns 0000101010 → 3: loss 9 → about 1e-3 in 150 epochs" {
            use net = compile (Model.SimpleRnn(1, Activation.Linear, Bias.None)) (InputSpec(Features = 1)) Convention.Torch 0L
            Expect.equal net.ParameterCount 2L "two parameters"
            net.Assign("layers.0.rnn.weight_ih_l0", -2.0f)
            net.Assign("layers.0.rnn.weight_hh_l0", 0.0f)
            let h = Trainer.Fit(net, SequenceData.From(Synthetic.OneSequence "0000101010"),
                                FitOptions(Epochs = 150, BatchSize = 1, Shuffle = false, Optimizer = OptimizerSpec.Sgd(5e-4), Loss = Loss.Mse))
            Expect.floatClose Accuracy.high h.Epochs.[0].["loss"] 9.0 "first loss"
            Expect.isLessThan h.Epochs.[149].["loss"] 2e-3 "final loss"
        }

        test "E2: an LSTM(20) counts the ones of 10,000 length-20 sequences (Adam 5e-3, MSE, batch 16)" {
            let train = SequenceData.From(Synthetic.CountingOnes(10000, 20, 1))
            let test = SequenceData.From(Synthetic.CountingOnes(1000, 20, 2))
            use net = compile (Model.Lstm(20).Dense(1)) (InputSpec(Features = 1)) Convention.Torch 2L
            // seed 000's LSTMCell initialises every weight from U(−√(3/H), √(3/H))
            net.Initialize("layers.0.*", Init.Uniform(-sqrt (3.0 / 20.0), sqrt (3.0 / 20.0))) |> ignore
            let h = Trainer.Fit(net, train, FitOptions(Epochs = 8, BatchSize = 16, Loss = Loss.Mse, Metrics = [| Metric.Accuracy |],
                                                      Optimizer = OptimizerSpec.Adam(5e-3), Seed = 1L), test)
            let acc = h.Series "val_accuracy" |> List.ofSeq
            // the book reports 100 % within 5–6 epochs; here 99.9 % at epoch 4, 100 % from epoch 8 (docs/RESULTS.md)
            Expect.isGreaterThanOrEqual (List.max acc.[.. 5]) 0.999 $"rounded test accuracy within 6 epochs: {acc}"
            Expect.equal acc.[7] 1.0 $"100 %% rounded test accuracy at epoch 8: {acc}"
        }
    ]
