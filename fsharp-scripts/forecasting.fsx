// Forecasting a series from windows of past rows (seed 002's E5 setup on real prices).
//   dotnet fsi fsharp-scripts/forecasting.fsx              a generated noisy seasonal series (seconds)
//   dotnet fsi fsharp-scripts/forecasting.fsx nasdaq [PATH] NASDAQ, 37 features, train to 2022, test 2023-H1 (E5)
#load "SeqDsl.fsx"
open SeqDsl.Workflows
open SeqDsl.FSharp

let experiment =
    match SeqDsl.scriptArgs with
    | "nasdaq" :: _ ->
        Experiment.create "Lstm(16).Stack(2).Dense(16, Relu).Dense(1)" ("series:" + SeqDsl.realData "19900101_20230630.csv")
        |> Experiment.withPreprocessing (PreprocessingSpec(FeatureSet = "seed002", Window = 5, TrainEnd = System.DateTime(2022, 12, 31),
                                                           TestStart = System.DateTime(2023, 1, 1), TestEnd = System.DateTime(2023, 6, 30),
                                                           ScaleTarget = false)) // the book learns the close price unscaled
        |> Experiment.withTraining (TrainingSpec(Epochs = 1000, BatchSize = 128, LearningRate = 0.01, ValidationSplit = 0.0, Seed = 1))
    | _ ->
        // the value of the last 14 days predicts today's
        Experiment.create "Lstm(32).Dense(1)" "synthetic:seasonal"
        |> Experiment.withPreprocessing (PreprocessingSpec(Window = 14))
        |> Experiment.withTraining (TrainingSpec(Epochs = 30, LearningRate = 0.01, Seed = 1))

let result = Experiment.run experiment
let test = Experiment.metrics "test" result
printfn "test R²: %.4f, MAE: %.4f" test.["r2"] test.["mae"]
if test.["r2"] < 0.5 then failwith "the forecaster did not learn"
