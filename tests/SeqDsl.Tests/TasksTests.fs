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
