namespace SeqDsl.FSharp

open SeqDsl.Data
open SeqDsl.Generation
open SeqDsl.Workflows

/// Data helpers returning F# values.
[<RequireQualifiedAccess>]
module Text =

    /// Reads a corpus (file, .gz or .zip member) with line breaks normalised.
    let load (path: string) (zipMember: string option) =
        TextCorpus.Load(path, TextOptions(ZipMember = Option.toObj zipMember, NormalizeNewlines = true))

    /// Tokens of a text with a named tokenizer (keras, seed002, chars, whitespace).
    let tokenize (tokenizer: string) (text: string) = (Tokenizer.FromName tokenizer).Tokenize text |> List.ofSeq

    /// The sorted character vocabulary of a text and the text as ids.
    let characters (text: string) =
        let v = Vocabulary.Characters text
        v, v.EncodeStrict(Tokenizer.Characters.Tokenize text)

    /// Ids → text with a character vocabulary.
    let decode (v: Vocabulary) (ids: int seq) = System.String.Concat(v.Decode ids)

    /// Generates `length` characters after `prefix` (greedy, or sampled with a temperature and seed).
    let generate (net: SeqDsl.Engine.Network) (v: Vocabulary) (temperature: float option) (seed: int) (length: int) (prefix: string) =
        let options = match temperature with Some t -> DecodeOptions.Sample(t, seed = seed) | None -> DecodeOptions.ArgMax
        let ids = v.EncodeStrict(Tokenizer.Characters.Tokenize prefix)
        decode v (Decoding.Generate(net, ids, length, options))

/// Experiments (model text + data source + options) as F# functions.
[<RequireQualifiedAccess>]
module Experiment =

    /// An experiment with default preprocessing and training options.
    let create (model: string) (data: string) = ExperimentSpec(Model = model, Data = data)

    /// The same experiment with other training options.
    let withTraining (training: TrainingSpec) (e: ExperimentSpec) = e.WithTraining training

    /// The same experiment with other preprocessing options.
    let withPreprocessing (preprocessing: PreprocessingSpec) (e: ExperimentSpec) = e.WithPreprocessing preprocessing

    /// Runs it, printing one line per epoch; the result owns the trained network (dispose it).
    let run (e: ExperimentSpec) =
        let progress = SeqDsl.Training.TrainingProgress.OnEpoch(fun r -> printfn "%O" r)
        Experiment.Run(e, progress, System.Threading.CancellationToken.None, fun line -> printfn "%s" line)

    /// Metrics of a split (train, validation, test) as an F# map.
    let metrics (split: string) (r: ExperimentResult) =
        match r.Metrics.TryGetValue split with
        | true, m -> m |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        | _ -> Map.empty
