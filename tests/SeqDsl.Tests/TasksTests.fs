/// Each task as a value: prepare → train → evaluate → use, on data the project makes; SeqTask.For picks them; the
/// one training loop serves rows and corpora alike; TrainedModel dispatches to its task once.
module SeqDsl.Tests.TasksTests

open System
open System.IO
open Expecto
open SeqDsl.Spec
open SeqDsl.Workflows
open SeqDsl.Tests.Support

let private spec model data (training: TrainingSpec) = ExperimentSpec(Model = model, Data = data, Training = training)
let private quick = TrainingSpec(Epochs = 1, BatchSize = 64, Threads = Nullable 1)

/// Prepares with the task For picks, trains one epoch, and checks that Evaluate on the prepared data repeats the
/// metrics training reported for the same rows.
let private roundTrip (e: ExperimentSpec) split =
    let task = SeqTask.For(DataSource.Parse e.Data, e.Preprocessing)
    let model = Experiment.ParseModel e.Model
    let data = task.Prepare(e, model, null, null)
    use net = SeqDsl.Engine.Network.Compile(model, SeqDsl.Engine.CompileOptions(Input = data.Input, Seed = 1L))
    let outcome = task.Train(net, data, e, null, Threading.CancellationToken.None)
    Expect.equal outcome.History.Epochs.Count 1 "one epoch"
    let again = task.Evaluate(net, data, e)
    for KeyValue(k, v) in outcome.Metrics.[split] do
        Expect.floatClose Accuracy.high again.[k] v (sprintf "%s: Evaluate repeats the %s metrics" k split)
    task, data, outcome

[<Tests>]
let tests =
    testSequenced <| testList "Tasks" [
        test "SeqTask.For: one task per source and per saved task description" {
            let p = PreprocessingSpec()
            let kind (s: string) = (SeqTask.For(DataSource.Parse s, p)).GetType().Name
            Expect.equal (kind "synthetic:negation") "TextClassificationTask" "negation"
            Expect.equal (kind "imdb:x") "TextClassificationTask" "imdb"
            Expect.equal (kind "csv:x") "TextClassificationTask" "csv without feature columns"
            Expect.equal ((SeqTask.For(DataSource.Parse "csv:x", PreprocessingSpec(FeatureColumns = [| "a" |]))).GetType().Name) "SeriesTask" "csv with features"
            Expect.equal (kind "synthetic:counting") "CountingTask" "counting"
            Expect.equal (kind "synthetic:seasonal") "SeriesTask" "seasonal"
            Expect.equal (kind "text:x") "LanguageModelTask" "corpus"
            let saved k d = (SeqTask.For(TaskInfo(Kind = k, Data = d))).GetType().Name
            Expect.equal (saved TaskKind.Regression "synthetic:counting") "CountingTask" "a saved counting model"
            Expect.equal (saved TaskKind.Regression "series:x.csv") "SeriesTask" "a saved series model"
            Expect.equal (saved TaskKind.LanguageModel "text:x") "LanguageModelTask" "a saved language model"
        }

        test "text classification: texts → ids with lengths, BCE, accuracy; predictions are probabilities" {
            let e = spec "Embed(8).Gru(8).Dense(1, Sigmoid)" "synthetic:negation" quick
            let _, data, outcome = roundTrip e "test"
            Expect.equal data.Info.Loss SeqDsl.Training.LossKind.BinaryCrossEntropy "Dense(1, Sigmoid) → BCE"
            Expect.equal (int data.Test.Count) 1000 "20 % of 5,000 texts"
            Expect.isNotNull data.Train.Lengths "post-padded per batch with lengths"
            Expect.containsAll outcome.Metrics.Keys [ "train"; "validation"; "test" ] "every split measured"
        }

        test "Keras tokenizer with an out-of-vocabulary token: rare words become its index instead of vanishing" {
            let prep oov = PreprocessingSpec(Tokenizer = "keras", NumWords = Nullable 6, Maxlen = Nullable 30, OovToken = oov)
            let e oov = ExperimentSpec(Model = "Embed(4).Lstm(4).Dense(1, Sigmoid)", Data = "synthetic:negation", Preprocessing = prep oov, Training = quick)
            let task = SeqTask.For(DataSource.Parse "synthetic:negation", prep "<oov>")
            let model = Experiment.ParseModel "Embed(4).Lstm(4).Dense(1, Sigmoid)"
            let withOov = task.Prepare(e "<oov>", model, null, null)
            let without = task.Prepare(e null, model, null, null)
            Expect.equal withOov.Text.Vocabulary.Size 6 "num_words still bounds the vocabulary"
            let oovId = withOov.Text.Vocabulary.Index.["<oov>"]
            let ids (d: PreparedData) = d.Test.Inputs.data<int64>().ToArray()
            Expect.isGreaterThan (ids withOov |> Array.filter (fun i -> i = int64 oovId) |> Array.length) 1000 "rare words are marked"
            let nonPad (d: PreparedData) = ids d |> Array.filter (fun i -> i <> 0L) |> Array.length
            Expect.isGreaterThan (nonPad withOov) (nonPad without) "without the token they are dropped"
        }

        test "a start token: every text begins with its reserved index, also after saving and reading back" {
            let prep = PreprocessingSpec(Tokenizer = "keras", NumWords = Nullable 6, Maxlen = Nullable 30, OovToken = "<oov>", StartToken = "<start>")
            let e = ExperimentSpec(Model = "Embed(4).Lstm(4).Dense(1, Sigmoid)", Data = "synthetic:negation", Preprocessing = prep, Training = quick)
            let task = SeqTask.For(DataSource.Parse "synthetic:negation", prep)
            let d = task.Prepare(e, Experiment.ParseModel "Embed(4).Lstm(4).Dense(1, Sigmoid)", null, null)
            Expect.equal d.Text.Vocabulary.Index.["<start>"] 2 "reserved after padding (0) and <oov> (1)"
            Expect.equal d.Text.Vocabulary.Size 6 "num_words bounds the vocabulary, the reserved entries included"
            let rows (x: TorchSharp.torch.Tensor) = let v = x.data<int64>().ToArray() in Array.chunkBySize (int x.shape.[1]) v
            for row in rows d.Test.Inputs do
                let real = row |> Array.filter (fun i -> i <> 0L)
                Expect.equal real.[0] 2L "the first id after the pre-padding is the start token's"
                Expect.equal (real |> Array.filter ((=) 2L) |> Array.length) 1 "once per text"
            let back = SeqDsl.Data.TextPreprocessing.FromJson(d.Text.ToJson())
            Expect.equal back.StartToken "<start>" "saved and read back"
            let again = back.Encode([ "not good" ])
            Expect.equal (again.Row 0 |> Array.filter (fun i -> i <> 0L) |> Array.head) 2L "encoding at prediction starts the same way"
            // a preprocessing.json written before the start token existed reads as none
            let old = System.Text.Json.Nodes.JsonNode.Parse(d.Text.ToJson()).AsObject()
            old.Remove "StartToken" |> ignore
            Expect.isNull (SeqDsl.Data.TextPreprocessing.FromJson(old.ToJsonString()).StartToken) "older files: no start token"
            let none = SeqDsl.Data.TextPreprocessing(d.Text.Tokenizer, d.Text.Vocabulary)
            Expect.isFalse (none.ToJson().Contains "StartToken") "written only when set: files without one are as before"
        }

        test "counting: binary sequences → their number of ones; MSE, rounded accuracy" {
            let e = spec "Lstm(4).Dense(1)" "synthetic:counting" quick
            let _, data, outcome = roundTrip e "test"
            Expect.equal (List.ofArray data.Train.Inputs.shape) [ 9000L; 20L; 1L ] "the last 10 % of 10,000 sequences validate"
            Expect.containsAll outcome.Metrics.["test"].Keys [ "loss"; "accuracy"; "mae" ] "metrics"
        }

        test "series: scaled lagged features in windows; the same windowing at prediction" {
            let e = spec "Lstm(8).Dense(1)" "synthetic:seasonal" quick
            let _, data, _ = roundTrip e "test"
            Expect.equal (List.ofArray data.Test.Inputs.shape |> List.tail) [ 5L; 1L ] "windows of 5 rows of one lagged feature"
            Expect.isNotNull data.Info.Scaler "the scaler is part of the task description"
        }

        test "series: the target is learnt scaled by the training period's mean and std; scaleTarget false learns it as it is" {
            let e scale = ExperimentSpec(Model = "Lstm(8).Dense(1)", Data = "synthetic:seasonal", Training = quick, Preprocessing = PreprocessingSpec(ScaleTarget = scale))
            let _, scaled, _ = roundTrip (e true) "test"
            let task = SeqTask.For(DataSource.Parse "synthetic:seasonal", PreprocessingSpec())
            let raw = task.Prepare(e false, Experiment.ParseModel "Lstm(8).Dense(1)", null, null)
            Expect.isNull raw.Info.TargetScaler "no target scaler when it is off"
            let ts = scaled.Info.TargetScaler
            Expect.isNotNull ts "the target scaler is part of the task description"
            Expect.isGreaterThan ts.Std.[0] 1.0 "the seasonal series is not already scaled"
            let values (d: SeqDsl.Training.SequenceData) = d.Targets.data<float32>().ToArray()
            for part, (a, b) in [ "train", (scaled.Train, raw.Train); "test", (scaled.Test, raw.Test) ] do
                let z, y = values a, values b
                Expect.equal z.Length y.Length $"{part}: the same windows"
                for i in 0 .. z.Length - 1 do
                    // float32 targets: y carries its own rounding (≈ 1e-6 at 11), z is computed from the exact value
                    Expect.isLessThan (abs (float z.[i] - (float y.[i] - ts.Mean.[0]) / ts.Std.[0])) 1e-5 $"{part} target {i} is (y − mean) / std"
            // the training targets are z-scores of the training period: near mean 0 and std 1
            let z = values scaled.Train
            Expect.isLessThan (abs (Array.average z)) 0.2f "mean near 0"
            // the features are unchanged by the target's scaling
            Expect.sequenceEqual (scaled.Test.Inputs.data<float32>().ToArray()) (raw.Test.Inputs.data<float32>().ToArray()) "same inputs"
            // the metrics after training are in the target's units: the network's own (scaled) ones × std² and × std
            let model = Experiment.ParseModel "Lstm(8).Dense(1)"
            use net = SeqDsl.Engine.Network.Compile(model, SeqDsl.Engine.CompileOptions(Input = scaled.Input, Seed = 1L))
            let trained = task.Train(net, scaled, e true, null, Threading.CancellationToken.None)
            let inScaled = SeqDsl.Training.Trainer.Evaluate(net, scaled.Test, SeqDsl.Training.Loss.Mse, [| SeqDsl.Training.Metric.Mae; SeqDsl.Training.Metric.R2 |])
            let reported = trained.Metrics.["test"]
            Expect.floatClose Accuracy.high reported.["loss"] (inScaled.["loss"] * ts.Std.[0] * ts.Std.[0]) "MSE × std²"
            Expect.floatClose Accuracy.high reported.["mae"] (inScaled.["mae"] * ts.Std.[0]) "MAE × std"
            Expect.floatClose Accuracy.high reported.["r2"] inScaled.["r2"] "R² unchanged"
            Expect.floatClose Accuracy.high (task.Evaluate(net, scaled, e true)).["mae"] reported.["mae"] "Evaluate reports the same"
            Expect.isGreaterThan ts.Std.[0] 2.0 "a std far enough from 1 that the two units differ"
        }

        test "predictions read a model's outputs: a scaled target back in its units, class names beside the labels" {
            let series = TaskInfo(Kind = TaskKind.Regression, TargetScaler = SeqDsl.Data.StandardScaler([| "close" |], [| 100.0 |], [| 10.0 |]))
            let p = Predictions.FromOutputs([| "a"; "b" |], ReadOnlySpan<float32>([| 0.5f; -1.0f |]), 1, series, Activation.Linear)
            Expect.equal [ p.[0].Value; p.[1].Value ] [ 105.0; 90.0 ] "z · std + mean"
            let unscaled = Predictions.FromOutputs([| "a" |], ReadOnlySpan<float32>([| 0.5f |]), 1, TaskInfo(Kind = TaskKind.Regression), Activation.Linear)
            Expect.equal unscaled.[0].Value 0.5 "no scaler: the output itself"
            let named = TaskInfo(Kind = TaskKind.Classification, Loss = SeqDsl.Training.LossKind.BinaryCrossEntropy, ClassNames = [| "neg"; "pos" |])
            let b = Predictions.FromOutputs([| "x"; "y" |], ReadOnlySpan<float32>([| 0.9f; 0.2f |]), 1, named, Activation.Sigmoid)
            Expect.equal [ b.[0].Label; b.[1].Label ] [ Nullable 1; Nullable 0 ] "labels stay indices"
            Expect.equal [ b.[0].ClassName; b.[1].ClassName ] [ "pos"; "neg" ] "and carry their names"
            Expect.stringStarts (string b.[0]) "pos (0.9000)" "printed by name"
            let three = TaskInfo(Kind = TaskKind.Classification, Loss = SeqDsl.Training.LossKind.CrossEntropy, ClassNames = [| "a"; "b" |])
            let m = Predictions.FromOutputs([| "x" |], ReadOnlySpan<float32>([| 0.0f; 0.0f; 5.0f |]), 3, three, Activation.Linear)
            Expect.equal m.[0].Label (Nullable 2) "class 2"
            Expect.isNull m.[0].ClassName "a class no training label named has no name"
            let plain = Predictions.FromOutputs([| "x" |], ReadOnlySpan<float32>([| 0.9f |]), 1, TaskInfo(Kind = TaskKind.Classification, Loss = SeqDsl.Training.LossKind.BinaryCrossEntropy), Activation.Sigmoid)
            Expect.isNull plain.[0].ClassName "index labels have no names"
            Expect.stringStarts (string plain.[0]) "1 (0.9000)" "printed by index"
        }

        test "text classification: a CSV label column of words is a set of class names, numbered in order; integers stay indices" {
            let dir = tempFolder "task-names"
            let csv = Path.Combine(dir, "named.csv")
            File.WriteAllLines(csv, [| yield "text,label"; for i in 1 .. 40 -> if i % 2 = 0 then "a good film,positive" else "a bad film,negative" |])
            let e file model = ExperimentSpec(Model = model, Data = "csv:" + file, Training = quick)
            let prepare (x: ExperimentSpec) fitted = (SeqTask.For(DataSource.Parse x.Data, x.Preprocessing)).Prepare(x, Experiment.ParseModel x.Model, fitted, null)
            let d = prepare (e csv "Embed(4).Gru(4).Dense(1, Sigmoid)") null
            Expect.equal (List.ofSeq d.Info.ClassNames) [ "negative"; "positive" ] "names in ordinal order"
            // every text says its class: "good" rows are class 1 (positive)
            let ids = d.Test.Inputs.data<int64>().ToArray()
            let width = int d.Test.Inputs.shape.[1]
            let goodId = int64 d.Text.Vocabulary.Index.["good"]
            let y = d.Test.Targets.data<float32>().ToArray()
            for r in 0 .. y.Length - 1 do
                let good = ids.[r * width .. r * width + width - 1] |> Array.contains goodId
                Expect.equal y.[r] (if good then 1.0f else 0.0f) $"row {r}: the label of its name"
            // a saved model measures data with its own numbering; a name it does not know is a data error naming it
            let other = Path.Combine(dir, "other.csv")
            File.WriteAllLines(other, [| "text,label"; "a good film,positive"; "a fine film,great" |])
            let err = expectSeqDslError "unknown name" (fun () -> prepare (e other "Embed(4).Gru(4).Dense(1, Sigmoid)") d.Info)
            Expect.stringContains err.Message "Label 'great' in column 'label'" "names the label"
            // integer labels: indices, no names; a word after an integer is the loader's error with its line
            let ints = Path.Combine(dir, "ints.csv")
            File.WriteAllLines(ints, [| yield "text,label"; for i in 1 .. 20 -> if i % 2 = 0 then "a good film,1" else "a bad film,0" |])
            Expect.isNull (prepare (e ints "Embed(4).Gru(4).Dense(1, Sigmoid)") null).Info.ClassNames "indices"
            File.AppendAllLines(ints, [| "a fine film,great" |])
            let err = expectSeqDslError "mixed" (fun () -> prepare (e ints "Embed(4).Gru(4).Dense(1, Sigmoid)") null)
            Expect.stringContains err.Message "line 22, column 'label': 'great' is not an integer" "the line"
            // more names than the model has classes
            let three = Path.Combine(dir, "three.csv")
            File.WriteAllLines(three, [| "text,label"; "a,x"; "b,y"; "c,z"; "d,x"; "e,y" |])
            let err = expectSeqDslError "three names, binary model" (fun () -> prepare (e three "Embed(4).Gru(4).Dense(1, Sigmoid)") null)
            Expect.stringContains err.Message "names 3 classes (x, y, z), more than the model's 2" "says so"
            Expect.equal err.Expected "Dense(3) as the last layer" "and what fits"
            Expect.equal (List.ofSeq (prepare (e three "Embed(4).Gru(4).Dense(3)") null).Info.ClassNames) [ "x"; "y"; "z" ] "three classes"
        }

        test "language model: one loop with a corpus batch source; evaluation predicts every character once" {
            let dir = Path.Combine(Path.GetTempPath(), "seqdsl-task-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            let corpus = Path.Combine(dir, "rhymes.txt")
            File.WriteAllText(corpus, String.replicate 60 "the cat sat on the mat. ")
            let distinct = (File.ReadAllText corpus |> Seq.distinct |> Seq.length)
            let e =
                ExperimentSpec(Model = sprintf "Embed(8).Gru(16, returnSequences: true).Dense(%d)" distinct, Data = "text:" + corpus,
                               Preprocessing = PreprocessingSpec(Steps = 10, Sampling = "consecutive"),
                               Training = TrainingSpec(Epochs = 2, BatchSize = 4, Threads = Nullable 1, LearningRate = Nullable 0.01))
            let task = SeqTask.For(DataSource.Parse e.Data, e.Preprocessing)
            let data = task.Prepare(e, Experiment.ParseModel e.Model, null, null)
            use net = SeqDsl.Engine.Network.Compile(Experiment.ParseModel e.Model, SeqDsl.Engine.CompileOptions(Input = data.Input, Seed = 1L))
            let outcome = task.Train(net, data, e, null, Threading.CancellationToken.None)
            Expect.equal outcome.History.Epochs.Count 2 "two epochs through the shared loop"
            Expect.isLessThan outcome.History.Epochs.[1].["perplexity"] outcome.History.Epochs.[0].["perplexity"] "it learns"
            Expect.equal outcome.Samples.Count 1 "one greedy sample"
            let m = task.Evaluate(net, data, e)
            Expect.isTrue (Double.IsFinite m.["perplexity"] && m.["perplexity"] >= 1.0) "perplexity of the whole corpus"
        }

        testList "a language model resumes through the shared loop: 2 epochs, then 2 more, equal 4 at once" [
            for sampling in [ SeqDsl.Training.Sampling.Random; SeqDsl.Training.Sampling.Consecutive; SeqDsl.Training.Sampling.Chunks ] ->
                test (string sampling) {
                    let corpus = [| for i in 0 .. 399 -> (i * i + i / 7) % 5 |]
                    let spec = SeqDsl.Model.Embed(4).Gru(8, returnSequences = true).Dense(5)
                    let compileNet () = SeqDsl.Engine.Network.Compile(spec, SeqDsl.Engine.CompileOptions(Input = InputSpec(Vocab = 5), Seed = 1L))
                    let options epochs dir =
                        SeqDsl.Training.LanguageModelOptions(Epochs = epochs, BatchSize = 4, Steps = 5, Sampling = sampling,
                                                             Seed = 3, Optimizer = SeqDsl.Training.OptimizerSpec.Adam(0.01), StateDirectory = dir)
                    use once = compileNet ()
                    let h = SeqDsl.Training.LanguageModelTrainer.Fit(once, corpus, options 4 null)
                    let dir = Path.Combine(Path.GetTempPath(), "seqdsl-lm-resume-" + Guid.NewGuid().ToString("N"))
                    use first = compileNet ()
                    SeqDsl.Training.LanguageModelTrainer.Fit(first, corpus, options 2 dir) |> ignore
                    use resumed = compileNet ()
                    let h2 = SeqDsl.Training.LanguageModelTrainer.Fit(resumed, corpus, options 4 dir)
                    Expect.equal (h2.Series "loss" |> List.ofSeq) (h.Series "loss" |> List.ofSeq) "the same four epochs, bit for bit (the sampler replays its draws)"
                    let weights (net: SeqDsl.Engine.Network) = [ for struct (n, p) in net.named_parameters() -> n, SeqDsl.Tests.TorchSupport.values p ]
                    Expect.equal (weights resumed) (weights once) "the same weights"
                    // the state names the sampler settings that wrote it: other settings are refused, not silently resumed
                    use other = compileNet ()
                    let err = expectSeqDslError "other steps" (fun () ->
                        SeqDsl.Training.LanguageModelTrainer.Fit(other, corpus,
                            SeqDsl.Training.LanguageModelOptions(Epochs = 6, BatchSize = 4, Steps = 4, Sampling = sampling, Seed = 3, StateDirectory = dir)))
                    Expect.stringContains err.Message "other corpus or sampler settings" "says why"
                }
        ]

        test "a resume on a changed data file is refused (its SHA-256 is part of the state)" {
            let dir = Path.Combine(Path.GetTempPath(), "seqdsl-task-fp-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            let csv = Path.Combine(dir, "r.csv")
            File.WriteAllLines(csv, [| yield "text,label"; for i in 1 .. 40 -> if i % 2 = 0 then "a good film,1" else "a bad film,0" |])
            let e epochs = ExperimentSpec(Model = "Embed(4).Gru(4).Dense(1, Sigmoid)", Data = "csv:" + csv, Training = TrainingSpec(Epochs = epochs, Threads = Nullable 1))
            let state = Path.Combine(dir, "state")
            (Experiment.Run(e 1, stateDirectory = state)).Dispose()
            Expect.isTrue (Experiment.HasTrainingState state) "a generation was saved"
            File.WriteAllLines(csv, [| yield "text,label"; for i in 1 .. 40 -> if i % 2 = 0 then "a good film,0" else "a bad film,1" |])
            let err = expectSeqDslError "changed data" (fun () -> Experiment.Run(e 2, stateDirectory = state))
            Expect.stringContains err.Message "changed since the interrupted run" "says why"
            Directory.Delete(dir, true)
        }

        test "TrainedModel uses its task: a classifier refuses binary strings and series rows" {
            let e = spec "Embed(8).Gru(8).Dense(1, Sigmoid)" "synthetic:negation" quick
            use result = Experiment.Run e
            let dir = Path.Combine(Path.GetTempPath(), "seqdsl-task-" + Guid.NewGuid().ToString("N"))
            result.Save dir
            use loaded = TrainedModel.Load dir
            Expect.equal (loaded.Task.GetType().Name) "TextClassificationTask" "the saved task"
            let p = loaded.PredictTexts [| "not good the movie was long" |]
            Expect.isTrue (p.[0].Value >= 0.0 && p.[0].Value <= 1.0) "a probability"
            let err = expectSeqDslError "counting input to a classifier" (fun () -> loaded.PredictCounts [| "0101" |])
            Expect.stringContains err.Message "synthetic:counting" "names the model the input belongs to"
            let err2 = expectSeqDslError "series rows to a classifier" (fun () -> loaded.PredictSeries "rows.csv")
            Expect.stringContains err2.Message "series model" "names the model the input belongs to"
            let again = loaded.Evaluate e
            Expect.floatClose Accuracy.high again.["accuracy"] result.Metrics.["test"].["accuracy"] "Evaluate on the source repeats the test accuracy"
        }
    ]
