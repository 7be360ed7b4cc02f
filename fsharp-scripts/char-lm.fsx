// A character language model with generation, d2l style (seed 004).
//   dotnet fsi fsharp-scripts/char-lm.fsx                    a generated rhyme corpus (seconds)
//   dotnet fsi fsharp-scripts/char-lm.fsx jaychou [PATH]     Jay Chou lyrics, GRU 256, Adam 1e-2, 80 epochs (E11; ~1 min)
//   dotnet fsi fsharp-scripts/char-lm.fsx warpeace [PATH]    War and Peace, seed 002's LSTM 512 (E6; ~1 hour on one core)
//   dotnet fsi fsharp-scripts/char-lm.fsx shakespeare [PATH] Tiny Shakespeare, a GRU layer under an LSTM layer (E12)
#load "SeqDsl.fsx"
open SeqDsl.Spec
open SeqDsl.Training
open SeqDsl.Workflows
open SeqDsl.FSharp

match SeqDsl.scriptArgs with
| ("warpeace" | "shakespeare") as book :: _ ->
    // through an experiment over the whole text; then 500 characters sampled after a prefix, as seed 002 does
    let experiment, prefix =
        if book = "warpeace" then
            Experiment.create "Embed(256).Lstm(512, returnSequences: true).Dense(56)" ("text:" + SeqDsl.realData "warpeace_input.txt.gz")
            |> Experiment.withPreprocessing (PreprocessingSpec(Lowercase = true, Steps = 40, Sampling = "chunks"))
            |> Experiment.withTraining (TrainingSpec(Epochs = 8, BatchSize = 64, LearningRate = 0.003, Seed = 1)), "the emperor"
        else
            Experiment.create "Embed(64).Gru(256, returnSequences: true).Lstm(256, returnSequences: true).Dense(65)"
                              ("text:" + SeqDsl.realData "tinyshakespeare_input.txt")
            |> Experiment.withPreprocessing (PreprocessingSpec(Steps = 64, Sampling = "chunks"))
            |> Experiment.withTraining (TrainingSpec(Epochs = 2, BatchSize = 64, LearningRate = 0.003, ClipNorm = 5.0, Seed = 1)), "ROMEO:"
    use result = Experiment.run experiment
    printfn "%s" (SeqDsl.Workflows.Experiment.Generate(result.Network, result.Text, prefix, 500, SeqDsl.Generation.DecodeOptions.Sample(seed = 1)))
| _ ->
    let corpus, prefixes, epochs =
        match SeqDsl.scriptArgs with
        | "jaychou" :: _ ->
            let text = (Text.load (SeqDsl.realData "jaychou_lyrics.txt.zip") None).Replace('\n', ' ')
            text.Substring(0, 10000), [ "分开"; "不分开" ], 80
        | _ ->
            String.replicate 40 "twinkle twinkle little star how i wonder what you are ", [ "twinkle"; "how" ], 30

    let vocab, ids = Text.characters corpus
    printfn "%d characters, %d distinct" ids.Length vocab.Size
    // one-hot input of the vocabulary's width, as d2l feeds its RNN
    let net =
        Model.gru 256 Model.empty |> Model.returnSequences true |> Model.dense vocab.Size Activation.Linear
        |> Train.compile (InputSpec(Features = vocab.Size)) 1L
    let options =
        LanguageModelOptions(Epochs = epochs, BatchSize = 32, Steps = 35, Sampling = Sampling.Consecutive,
                             Optimizer = OptimizerSpec.Adam(1e-2), Clip = Clip.ByNorm(0.01), Seed = 1,
                             Progress = { new System.IProgress<TrainingProgress> with
                                            member _.Report p =
                                                match p.EpochEnd with
                                                | null -> ()
                                                | e when e.Epoch % 10 = 0 -> printfn "epoch %d, perplexity %.3f, time %.2f sec" e.Epoch e.["perplexity"] e.Seconds
                                                | _ -> () })
    let history = LanguageModelTrainer.Fit(net, ids, options)
    for p in prefixes do printfn " - %s" (Text.generate net vocab None 0 50 p)
    let ppl = history.Epochs.[history.Epochs.Count - 1].["perplexity"]
    if ppl > 2.0 then failwithf "perplexity %.2f: the model did not learn the corpus" ppl
