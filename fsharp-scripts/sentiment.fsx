// Sentiment classification, both ways of declaring it.
//   dotnet fsi fsharp-scripts/sentiment.fsx            generated negation grammar (seconds)
//   dotnet fsi fsharp-scripts/sentiment.fsx imdb [PATH] IMDB, seed 002's pipeline (E4)
//   dotnet fsi fsharp-scripts/sentiment.fsx imdb-seed000 [PATH] IMDB, seed 000's LSTM (E3) on embeddings
//                                                         trained here (the book's GloVe vectors are not available)
#load "SeqDsl.fsx"
open SeqDsl.Workflows
open SeqDsl.FSharp

let experiment =
    match SeqDsl.scriptArgs with
    | "imdb" :: _ ->
        // regex tokenizer, full vocabulary, post-padding with lengths, Embedding 32, LSTM 50, Dense 32, Adam 3e-3
        Experiment.create "Embed(32, padding: 0).Lstm(50).Dense(32, Relu).Dense(1, Sigmoid)"
                          ("imdb:" + SeqDsl.realData "aclImdb_v1_labeled.tar.gz")
        // shuffled batches, each padded to its longest review, as the book's DataLoader
        |> Experiment.withTraining (TrainingSpec(Epochs = 10, BatchSize = 32, LearningRate = 0.003, ValidationSplit = 0.0,
                                                 BucketByLength = false, Seed = 1))
    | "imdb-seed000" :: _ ->
        // 100-d embeddings learned from scratch, LSTM 256, the logits into BCE with logits, Adam; batches of
        // similar lengths as torchtext's BucketIterator
        Experiment.create "Embed(100, padding: 0).Lstm(256).Dense(1)" ("imdb:" + SeqDsl.realData "aclImdb_v1_labeled.tar.gz")
        |> Experiment.withPreprocessing (PreprocessingSpec(Tokenizer = "seed002", NumWords = 25000))
        |> Experiment.withTraining (TrainingSpec(Epochs = 5, BatchSize = 64, ValidationSplit = 0.0, Seed = 1))
    | _ ->
        // the first two words decide the label ("not good" = 0); 15–25 neutral words follow
        Experiment.create "Embed(16).Lstm(32, forgetBias: 1).Dense(1, Sigmoid)" "synthetic:negation"
        |> Experiment.withTraining (TrainingSpec(Epochs = 6, LearningRate = 0.005, Seed = 1))

let result = Experiment.run experiment
let test = Experiment.metrics "test" result
printfn "test accuracy: %.4f" test.["accuracy"]
if test.["accuracy"] < 0.8 then failwith "the classifier did not learn"
