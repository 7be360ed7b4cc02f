/// Seeded fuzzers over every input SeqDsl reads: model text, experiment files, CSV files and model directories.
/// The standard: no exception other than SeqDsl's own (a SeqDslException with a message), whatever the input.
/// Counts are bounded for the suite; SEQDSL_FUZZ_SCALE=N multiplies them for a longer run.
module SeqDsl.Tests.FuzzTests

open System
open System.IO
open System.Text
open Expecto
open SeqDsl.Spec
open SeqDsl.Data
open SeqDsl.Workflows
open SeqDsl.Training
open SeqDsl.Tests.Support

let private scale =
    match Environment.GetEnvironmentVariable "SEQDSL_FUZZ_SCALE" with
    | null -> 1
    | s -> max 1 (int s)

/// Runs f on every case; returns (cases, SeqDsl errors, accepted) and fails listing the first foreign exceptions.
let private fuzz (name: string) (cases: seq<'a>) (f: 'a -> unit) =
    let foreign = Collections.Generic.List<string>()
    let mutable n, rejected = 0, 0
    for c in cases do
        n <- n + 1
        try f c with
        | :? SeqDslException as e ->
            rejected <- rejected + 1
            if String.IsNullOrWhiteSpace e.Message then foreign.Add(sprintf "%A: an empty SeqDslException message" c)
        | e ->
            if foreign.Count < 5 then
                let at = (string e.StackTrace).Split('\n') |> Array.truncate 3 |> String.concat " / "
                foreign.Add(sprintf "%A → %s: %s (at %s)" c (e.GetType().Name) e.Message at)
    Expect.isEmpty foreign (sprintf "%s: %d cases, exceptions other than SeqDsl's: %s" name n (String.Join("\n", foreign)))
    printfn "fuzz %s: %d cases, %d rejected with a SeqDsl error, %d accepted, 0 other exceptions" name n rejected (n - rejected)
    n, rejected

/// Mutations of a text: delete, insert, replace or duplicate a span, with characters the syntax cares about.
let private mutate (rng: Random) (alphabet: string) (s: string) =
    let b = StringBuilder s
    for _ in 1 .. 1 + rng.Next 3 do
        let at = if b.Length = 0 then 0 else rng.Next(b.Length + 1)
        match rng.Next 4 with
        | 0 when b.Length > 0 -> b.Remove(min at (b.Length - 1), 1 + rng.Next(min 4 (b.Length - min at (b.Length - 1)))) |> ignore
        | 1 -> b.Insert(at, alphabet.[rng.Next alphabet.Length]) |> ignore
        | 2 when b.Length > 0 -> b.[min at (b.Length - 1)] <- alphabet.[rng.Next alphabet.Length]
        | _ when s.Length > 0 ->
            let from = rng.Next s.Length
            b.Insert(at, s.Substring(from, min 6 (s.Length - from))) |> ignore
        | _ -> ()
    b.ToString()

[<Tests>]
let tests =
    testList "Fuzz" [
        test "model text: mutated valid texts and random tokens" {
            let rng = Random 11
            let seeds =
                [ "Embed(32, vocab: 8000, padding: 0).Lstm(64, forgetBias: 1).Stack(2, dropout: 0.5).Bidirectional(Sum).Dense(1, Sigmoid)"
                  "SimpleRnn(4, activation: Linear, bias: None, returnSequences: true).Attention(8).Dense(3, Softmax)"
                  "Gru(16, resetAfter: false, kernel: Loop).Dropout(0.2).Dense(1)" ]
            let alphabet = "().,:\"-0123456789eE aZ_!\u00e9\n\t\\" + String.Join("", LayerArguments.Calls |> Seq.map (fun c -> c.Name))
            let cases = seq {
                for i in 1 .. 3000 * scale -> mutate rng alphabet seeds.[i % seeds.Length]
                for _ in 1 .. 1000 * scale -> String(Array.init (rng.Next 40) (fun _ -> alphabet.[rng.Next alphabet.Length])) }
            let n, _ =
                fuzz "model text" cases (fun text ->
                    let m = ModelSyntax.Parse text
                    let again = ModelSyntax.Parse(string m)
                    if again <> m then failwithf "printed as %O, which parses to another model %O" m again)
            Expect.equal n (4000 * scale) "every case ran"
        }

        test "experiment files: mutated JSON, checked as the CLI checks it" {
            let rng = Random 12
            let valid =
                """{ "model": "Embed(8).Lstm(8).Dense(1, Sigmoid)", "data": "synthetic:negation",
  "preprocessing": { "tokenizer": "keras", "numWords": 100, "maxlen": 20, "padding": "pre", "window": 5, "chars": 100,
                     "steps": 10, "sampling": "random", "testSplit": 0.2, "trainEnd": "2020-01-01", "featureColumns": ["a"] },
  "training": { "epochs": 2, "batchSize": 16, "optimizer": "adam", "learningRate": 0.01, "momentum": 0, "clipNorm": 1,
                "seed": 1, "threads": 1, "validationSplit": 0.1, "earlyStopping": 2, "device": "cpu", "convention": "keras" } }"""
            let alphabet = "{}[]\":,-.0123456789 nulltrefasNaInfinity\\u0000"
            let dir = Path.Combine(Path.GetTempPath(), "seqdsl-fuzz-exp-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            let file = Path.Combine(dir, "e.json")
            let n, _ =
                fuzz "experiment JSON" (Seq.init (2400 * scale) (fun _ -> mutate rng alphabet valid)) (fun text ->
                    File.WriteAllText(file, text)
                    let e = ExperimentSpec.Load file
                    e.Training.Validate(fun () -> false)
                    e.Preprocessing.Validate()
                    Experiment.ParseModel e.Model |> ignore
                    DataSource.Parse e.Data |> ignore)
            Directory.Delete(dir, true)
            Expect.equal n (2400 * scale) "every case ran"
        }

        test "CSV files: random quoting, separators, line ends, bytes and types" {
            let rng = Random 13
            let dir = Path.Combine(Path.GetTempPath(), "seqdsl-fuzz-csv-" + Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            let file = Path.Combine(dir, "f.csv")
            let pieces = [| ","; "\""; "\"\""; "\n"; "\r\n"; "1"; "-2.5e3"; "2020-01-31"; "x"; ""; " "; "NaN"; "\u00e9"; "label"; "text"; "Date"; "Close" |]
            let cases = seq {
                for _ in 1 .. 2400 * scale ->
                    let header = if rng.Next 5 = 0 then "" else [ "Date,Close"; "text,label"; "a,a"; "Date,Close,Close"; "x" ].[rng.Next 5]
                    let body = String.Join("", Array.init (rng.Next 30) (fun _ -> pieces.[rng.Next pieces.Length]))
                    let bytes = Encoding.UTF8.GetBytes(header + "\n" + body)
                    if rng.Next 10 = 0 && bytes.Length > 0 then bytes.[rng.Next bytes.Length] <- byte (0x80 + rng.Next 0x40)
                    bytes }
            let n, _ =
                fuzz "CSV" cases (fun bytes ->
                    File.WriteAllBytes(file, bytes)
                    for options in [ CsvOptions(); CsvOptions(Types = readOnlyDict [ "Date", ColumnType.Date; "Close", ColumnType.Double ], Required = [| "Close" |])
                                     CsvOptions(Columns = [| "text"; "label" |], Types = readOnlyDict [ "label", ColumnType.Int64 ], SkipBadRows = true) ] do
                        Csv.Load(file, options) |> ignore)
            Directory.Delete(dir, true)
            Expect.equal n (2400 * scale) "every case ran"
        }

        test "model directories: damaged, truncated, deleted and replaced files" {
            let rng = Random 14
            let root = Path.Combine(Path.GetTempPath(), "seqdsl-fuzz-dir-" + Guid.NewGuid().ToString("N"))
            let good = Path.Combine(root, "good")
            use result = Experiment.Run(ExperimentSpec(Model = "Embed(4).Gru(4).Dense(1, Sigmoid)", Data = "synthetic:negation",
                                                       Training = TrainingSpec(Epochs = 1, BatchSize = 256, Threads = Nullable 1)))
            result.Save good
            let files = Directory.GetFiles good |> Array.map Path.GetFileName |> Array.filter (fun f -> f <> "learning-curves.png")
            let damaged = Path.Combine(root, "damaged")
            let accepted = Collections.Generic.List<string>()
            let cases = seq { for i in 1 .. 300 * scale -> i }
            let n, rejected =
                fuzz "model directory" cases (fun i ->
                    if Directory.Exists damaged then Directory.Delete(damaged, true)
                    Directory.CreateDirectory damaged |> ignore
                    for f in Directory.GetFiles good do File.Copy(f, Path.Combine(damaged, Path.GetFileName f))
                    let f = Path.Combine(damaged, files.[rng.Next files.Length])
                    let bytes = File.ReadAllBytes f
                    let kind = rng.Next 5
                    match kind with
                    | 0 -> File.Delete f
                    | 1 -> File.WriteAllBytes(f, bytes.[.. rng.Next bytes.Length - 1])
                    | 2 -> File.WriteAllBytes(f, Array.init (rng.Next 200) (fun _ -> byte (rng.Next 256)))
                    | 3 -> File.WriteAllText(f, [| "{}"; "null"; "[]"; "{\"format\": 1}"; "\"x\"" |].[rng.Next 5])
                    | _ ->
                        let b = Array.copy bytes
                        if b.Length > 0 then
                            let at = rng.Next b.Length
                            b.[at] <- b.[at] ^^^ (1uy <<< rng.Next 8)
                        File.WriteAllBytes(f, b)
                    // every other case re-signs the damaged file in the manifest, so the readers behind the hash check are
                    // fuzzed too (those cases may load when the damage is harmless, e.g. to history.csv)
                    let signed = i % 2 = 0 && Path.GetFileName f <> ModelStore.ManifestFile && File.Exists f
                    if signed then
                        let m = Path.Combine(damaged, ModelStore.ManifestFile)
                        let node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText m)
                        use fs = File.OpenRead f
                        node.["Files"].[Path.GetFileName f] <- System.Text.Json.Nodes.JsonValue.Create(Convert.ToHexStringLower(Security.Cryptography.SHA256.HashData fs))
                        File.WriteAllText(m, node.ToJsonString())
                    use m = TrainedModel.Load damaged
                    m.PredictTexts [| "not good" |] |> ignore
                    if not signed then accepted.Add(sprintf "%s (damage %d)" (Path.GetFileName f) kind))
            Directory.Delete(root, true)
            Expect.equal n (300 * scale) "every case ran"
            Expect.isEmpty accepted "every damaged directory whose manifest was not re-signed is refused (none loads silently)"
            Expect.isGreaterThanOrEqual rejected (n / 2) "at least the unsigned half refused"
        }
    ]
