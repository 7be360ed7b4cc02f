/// Running parsed commands; parsing lives in Args.fs, process concerns in Program.fs.
module SeqDsl.Cli.Commands

open System
open System.Globalization
open System.IO
open System.Text.Json
open System.Threading
open Argu
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Workflows
open SeqDsl.Generation
open SeqDsl.Cli.Args


let private fail kind msg = raise (SeqDslException(kind, msg))

let private date (name: string) (s: string) =
    match DateTime.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None) with
    | true, d -> d
    | _ -> raise (SeqDslException(ErrorKind.Spec, $"--{name} '{s}' is not a date.", Received = s, Expected = "yyyy-MM-dd"))

/// --threads checked as train checks it: 1 … TrainingSpec.MaxThreads.
let private checkThreads (threads: int option) =
    match threads with
    | Some n when n < 1 || n > TrainingSpec.MaxThreads -> fail ErrorKind.Spec $"--threads must be between 1 and {TrainingSpec.MaxThreads} (got {n})."
    | _ -> ()

/// --threads as train applies it: libtorch's CPU threads, set before any tensor work.
let private useThreads (threads: int option) =
    checkThreads threads
    threads |> Option.iter TorchSharp.torch.set_num_threads

let private metricsTable (metrics: Collections.Generic.Dictionary<string, Collections.Generic.Dictionary<string, float>>) =
    for split in [ "train"; "validation"; "test" ] do
        match metrics.TryGetValue split with
        | true, m ->
            let values = m |> Seq.map (fun kv -> kv.Key + " " + kv.Value.ToString("0.0000", CultureInfo.InvariantCulture)) |> String.concat ", "
            printfn "%-10s %s" (split + ":") values
        | _ -> ()

/// Builds the experiment from the file (if any) and the options, options winning.
let experimentOf (a: ParseResults<TrainArgs>) : ExperimentSpec =
    let baseSpec =
        match a.TryGetResult TrainArgs.Experiment with
        | Some path -> ExperimentSpec.Load path
        | None -> ExperimentSpec()
    let p0 = baseSpec.Preprocessing
    let t0 = baseSpec.Training
    let orNull (o: 'a option) (fallback: Nullable<'a>) = match o with Some v -> Nullable v | None -> fallback
    let featureColumns : Collections.Generic.IReadOnlyList<string> | null =
        match a.TryGetResult Feature_Columns with
        | Some s -> s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
        | None -> p0.FeatureColumns
    let p =
        PreprocessingSpec(
            Tokenizer = (match a.TryGetResult Tokenizer with Some t -> argName t | None -> p0.Tokenizer),
            NumWords = orNull (a.TryGetResult Num_Words) p0.NumWords,
            MinFreq = defaultArg (a.TryGetResult Min_Freq) p0.MinFreq,
            OovToken = (match a.TryGetResult Oov_Token with Some t -> t | None -> p0.OovToken),
            StartToken = (match a.TryGetResult Start_Token with Some t -> t | None -> p0.StartToken),
            Maxlen = orNull (a.TryGetResult Maxlen) p0.Maxlen,
            Padding = (match a.TryGetResult Padding with Some v -> argName v | None -> p0.Padding),
            Lowercase = (a.Contains Lowercase || p0.Lowercase),
            TextColumn = defaultArg (a.TryGetResult Text_Column) p0.TextColumn,
            LabelColumn = defaultArg (a.TryGetResult Label_Column) p0.LabelColumn,
            FeatureColumns = featureColumns,
            TargetColumn = (match a.TryGetResult Target_Column with Some t -> t | None -> p0.TargetColumn),
            FeatureSet = (match a.TryGetResult Feature_Set with Some v -> argName v | None -> p0.FeatureSet),
            Window = defaultArg (a.TryGetResult Window) p0.Window,
            ScaleTarget = (p0.ScaleTarget && not (a.Contains No_Target_Scaling)),
            TrainEnd = (match a.TryGetResult Train_End with Some s -> Nullable(date "train-end" s) | None -> p0.TrainEnd),
            TestStart = (match a.TryGetResult Test_Start with Some s -> Nullable(date "test-start" s) | None -> p0.TestStart),
            TestEnd = (match a.TryGetResult Test_End with Some s -> Nullable(date "test-end" s) | None -> p0.TestEnd),
            Chars = orNull (a.TryGetResult Chars) p0.Chars,
            ReplaceNewlines = (a.Contains Replace_Newlines || p0.ReplaceNewlines),
            Steps = defaultArg (a.TryGetResult Steps) p0.Steps,
            Sampling = (match a.TryGetResult Sampling with Some v -> argName v | None -> p0.Sampling),
            TestSplit = defaultArg (a.TryGetResult Test_Split) p0.TestSplit,
            SkipBadRows = (a.Contains Skip_Bad_Rows || p0.SkipBadRows))
    let t =
        TrainingSpec(
            Epochs = defaultArg (a.TryGetResult Epochs) t0.Epochs,
            BatchSize = defaultArg (a.TryGetResult Batch_Size) t0.BatchSize,
            Optimizer = (match a.TryGetResult Optimizer with Some v -> argName v | None -> t0.Optimizer),
            LearningRate = orNull (a.TryGetResult Learning_Rate) t0.LearningRate,
            Momentum = defaultArg (a.TryGetResult Momentum) t0.Momentum,
            WeightDecay = orNull (a.TryGetResult Weight_Decay) t0.WeightDecay,
            LrStepEpochs = orNull (a.TryGetResult Lr_Step_Epochs) t0.LrStepEpochs,
            LrPlateauPatience = orNull (a.TryGetResult Lr_Plateau_Patience) t0.LrPlateauPatience,
            LrFactor = orNull (a.TryGetResult Lr_Factor) t0.LrFactor,
            LrMin = orNull (a.TryGetResult Lr_Min) t0.LrMin,
            KeepBest = (a.Contains Keep_Best || t0.KeepBest),
            ClipNorm = orNull (a.TryGetResult Clip_Norm) t0.ClipNorm,
            ClipValue = orNull (a.TryGetResult Clip_Value) t0.ClipValue,
            Seed = defaultArg (a.TryGetResult TrainArgs.Seed) t0.Seed,
            Device = defaultArg (a.TryGetResult Device) t0.Device,
            Threads = orNull (a.TryGetResult TrainArgs.Threads) t0.Threads,
            ValidationSplit = defaultArg (a.TryGetResult Validation_Split) t0.ValidationSplit,
            EarlyStopping = orNull (a.TryGetResult Early_Stopping) t0.EarlyStopping,
            CheckpointEveryBatches = orNull (a.TryGetResult Checkpoint_Batches) t0.CheckpointEveryBatches,
            BucketByLength = (t0.BucketByLength && not (a.Contains No_Bucketing)),
            Convention =
                (match a.TryGetResult TrainArgs.Convention with
                 | Some ConventionArg.Torch -> "torch"
                 | Some ConventionArg.Keras -> "keras"
                 | None -> t0.Convention),
            OptimizerRules = (match a.TryGetResult Optimizer_Rules with Some v -> argName v | None -> t0.OptimizerRules),
            InitWeights = (match a.TryGetResult Init_Weights with Some f -> f | None -> t0.InitWeights))
    let model = match a.TryGetResult TrainArgs.Model with Some m -> m | None -> baseSpec.Model
    let model =
        match a.TryGetResult TrainArgs.Kernel with
        | Some k when k <> KernelArg.Auto && not (String.IsNullOrWhiteSpace model) ->
            let kernel = Enum.Parse<SeqDsl.Spec.Kernel>(argName k, true)
            (SeqDsl.Spec.ModelSyntax.Parse model).WithKernel(kernel).ToString()
        | _ -> model
    let data = match a.TryGetResult TrainArgs.Data with Some d -> d | None -> baseSpec.Data
    if String.IsNullOrWhiteSpace model then
        fail ErrorKind.Spec "No model: give --model \"<text>\" or an experiment file with a \"model\"."
    if String.IsNullOrWhiteSpace data then
        fail ErrorKind.Data "No data: give --data SOURCE (e.g. synthetic:negation) or an experiment file with \"data\"."
    ExperimentSpec(Model = model, Data = data, Preprocessing = p, Training = t)

let train (a: ParseResults<TrainArgs>) : int =
    let spec = experimentOf a
    // model text errors first, with their column (and, for an experiment file's model, the file and JSON path)
    let model =
        try Experiment.ParseModel spec.Model
        with :? SeqDslException as e when not (a.Contains TrainArgs.Model) && a.Contains TrainArgs.Experiment ->
            let file = a.GetResult TrainArgs.Experiment
            raise (SeqDslException(e.Kind, $"{file}, $.model, in the model text at {e.Message}", e))
    Experiment.Validate spec // then every training bound, before anything is printed or read
    // and the place the model goes: a folder that is not a model directory and holds files (a save would replace it)
    // is refused before training, as is a place that cannot be written
    a.TryGetResult Out |> Option.iter (fun o -> ModelStore.CheckReplaceable(o, "--out", probeWrite = true))
    use cts = new CancellationTokenSource()
    let handler = ConsoleCancelEventHandler(fun _ e -> e.Cancel <- true; cts.Cancel())
    Console.CancelKeyPress.AddHandler handler
    let progress = Progress.ConsoleProgress(not Console.IsOutputRedirected)
    printfn "Model: %O" model
    // the resumable state lives beside the model directory, and goes when the model is saved
    let stateDir = a.TryGetResult Out |> Option.map (fun o -> Path.TrimEndingDirectorySeparator(Path.GetFullPath o) + ".state")
    match stateDir, a.Contains Resume, a.Contains Fresh with
    | _, true, true -> fail ErrorKind.Spec "--resume and --fresh exclude each other."
    | None, true, _ -> fail ErrorKind.Spec "--resume continues the run saved beside --out DIR (in DIR.state): give --out."
    | None, false, _ when spec.Training.CheckpointEveryBatches.HasValue ->
        fail ErrorKind.Spec "--checkpoint-batches saves the state to resume from beside --out DIR (in DIR.state): give --out."
    | Some s, true, _ when not (Experiment.HasTrainingState s) -> printfn "no saved training state in %s: training from epoch 1" s
    | Some s, false, false when Experiment.HasTrainingState s ->
        fail ErrorKind.Spec $"{s} holds the state of an interrupted run: continue it with --resume, or start over with --fresh."
    | Some s, false, true when Directory.Exists s -> Durable.RemoveAtomically s
    | _ -> ()
    use result = Experiment.Run(spec, progress, cts.Token, (fun line -> printfn "%s" line), Option.toObj stateDir)
    Console.CancelKeyPress.RemoveHandler handler
    if result.History.RestoredEpoch.HasValue then
        printfn "kept the weights of epoch %d, the best one" result.History.RestoredEpoch.Value
    metricsTable result.Metrics
    for s in result.Samples do printfn "sample: %s" s
    match a.TryGetResult Out with
    | Some dir ->
        result.Save dir
        printfn "saved to %s (model, history.csv, metrics.json, learning-curves.png)" dir
        // a finished run needs no state; a cancelled one keeps it for --resume
        match stateDir with
        | Some s when Directory.Exists s && not cts.IsCancellationRequested -> Durable.RemoveAtomically s
        | _ -> ()
    | None -> ()
    match result.History.StopReason with
    | null -> 0
    | reason when result.History.StoppedOnNonFiniteLoss ->
        eprintfn "seqdsl: %s" reason
        1
    | reason ->
        printfn "%s" reason
        if cts.IsCancellationRequested then 1 else 0

let evaluate (a: ParseResults<EvaluateArgs>) : int =
    useThreads (a.TryGetResult EvaluateArgs.Threads)
    let dir = a.GetResult EvaluateArgs.Model_Dir
    use m = TrainedModel.Load dir
    let trained = match m.Experiment with null -> ExperimentSpec(Model = string m.Network.Spec, Data = m.Info.Data) | e -> e
    let spec =
        match a.TryGetResult EvaluateArgs.Data with
        | Some d -> trained.WithData d
        // a model directory may come from anywhere: it never makes seqdsl read a file the user did not name
        | None when not (trained.Data.StartsWith("synthetic:", StringComparison.Ordinal)) ->
            fail ErrorKind.Spec $"evaluate reads data only from --data: this model was trained on {trained.Data}; pass --data {trained.Data} to measure it there."
        | None -> trained
    let metrics = m.Evaluate spec
    if a.Contains EvaluateArgs.Json then
        printfn "%s" (JsonSerializer.Serialize(metrics, JsonSerializerOptions(WriteIndented = true)))
    else
        printfn "%s on %s" (string m.Network.Spec) spec.Data
        for kv in metrics do printfn "%-12s %s" kv.Key (kv.Value.ToString("0.0000", CultureInfo.InvariantCulture))
    0

let predict (a: ParseResults<PredictArgs>) : int =
    useThreads (a.TryGetResult PredictArgs.Threads)
    use m = TrainedModel.Load(a.GetResult PredictArgs.Model_Dir)
    let texts = a.GetResults PredictArgs.Text
    let predictions =
        match m.Info.Kind, a.TryGetResult PredictArgs.File with
        | TaskKind.Regression, Some file when m.Info.Scaler <> null -> m.PredictSeries file
        | _, Some file ->
            SeqDsl.Spec.InputFiles.Require(file, "Input file")
            let lines = File.ReadAllLines file |> Array.filter (fun l -> l.Trim() <> "") |> List.ofArray
            if List.isEmpty lines && List.isEmpty texts then
                fail ErrorKind.Data $"--file {file} holds no inputs (every line is empty); give one text per line."
            if m.Info.Data = "synthetic:counting" then m.PredictCounts(lines @ texts) else m.PredictTexts(lines @ texts)
        | _, None when List.isEmpty texts -> fail ErrorKind.Spec "Nothing to predict: give --text (repeatable) or --file."
        | TaskKind.Regression, None when m.Info.Data = "synthetic:counting" -> m.PredictCounts texts
        | _, None -> m.PredictTexts texts
    for p in predictions do
        if a.Contains Jsonl then
            let o = dict [ yield "input", box p.Input; yield "value", box p.Value; yield "label", (if p.Label.HasValue then box p.Label.Value else null)
                           if not (isNull p.ClassName) then yield "class", box p.ClassName ]
            printfn "%s" (JsonSerializer.Serialize o)
        else
            // the class's name when the training labels had names, else its index
            let label = if p.Label.HasValue then $"label {(match p.ClassName with null -> string p.Label.Value | name -> name)}  " else ""
            printfn "%s%s  %s" label (p.Value.ToString("0.0000", CultureInfo.InvariantCulture)) p.Input
    0

/// The longest text `generate` makes in one run: over a minute for a Gru(256) character model (20,000 characters took
/// 15.9 s on a 2-core AMD EPYC Zen 5), printed only when complete.
[<Literal>]
let MaxGenerateLength = 100000

let generate (a: ParseResults<GenerateArgs>) : int =
    useThreads (a.TryGetResult GenerateArgs.Threads)
    let length = a.GetResult(Length, defaultValue = 50)
    // the decoding options named as the user typed them, before the model is read
    if length < 0 then fail ErrorKind.Spec $"--length is the number of characters to generate after the prefix: 0 or more (got {length})."
    // the text is printed whole when it is done: a length beyond this would sit silent for minutes
    if length > MaxGenerateLength then
        fail ErrorKind.Spec $"--length is at most {MaxGenerateLength} characters (got {length}): the text is printed when it is complete; generate longer text in parts, each run's end as the next one's --prefix."
    match a.TryGetResult Temperature with
    | Some t when not (t > 0.0 && Double.IsFinite t) -> fail ErrorKind.Spec $"--temperature must be a number above 0 (got {t}): 1 samples the model's distribution, below 1 sharpens it, above 1 flattens it."
    | _ -> ()
    match a.TryGetResult Top_K with
    | Some k when k < 1 -> fail ErrorKind.Spec $"--top-k must be at least 1 (got {k}): sample among the k most likely characters."
    | _ -> ()
    match a.TryGetResult Top_P with
    | Some p when not (p > 0.0 && p <= 1.0) -> fail ErrorKind.Spec $"--top-p must be above 0 and at most 1 (got {p}): 0.9 samples among the most likely characters that make up 90 %% of the probability."
    | _ -> ()
    use m = TrainedModel.Load(a.GetResult GenerateArgs.Model_Dir)
    let sampled = a.Contains Temperature || a.Contains Top_K || a.Contains Top_P
    let options =
        if sampled then
            DecodeOptions.Sample(a.GetResult(Temperature, defaultValue = 1.0), Option.toNullable (a.TryGetResult Top_K), Option.toNullable (a.TryGetResult Top_P), a.GetResult(GenerateArgs.Seed, defaultValue = 0))
        else DecodeOptions.ArgMax
    for prefix in a.GetResults Prefix do
        printfn "%s" (m.Generate(prefix, length, options))
    0

let summary (args: ParseResults<SummaryArgs>) : int =
    let convention =
        match args.TryGetResult SummaryArgs.Convention with
        | Some ConventionArg.Keras -> Some Convention.Keras
        | Some ConventionArg.Torch -> Some Convention.Torch
        | None -> None
    let model, input, conv =
        match args.TryGetResult SummaryArgs.Model_Dir, args.TryGetResult SummaryArgs.Model with
        | Some _, Some _ -> fail ErrorKind.Spec "Give --model or --model-dir, not both."
        | Some dir, None ->
            use net = ModelStore.Load dir
            net.Spec, net.Options.Input, defaultArg convention net.Options.Convention
        | None, Some text ->
            let input = InputSpec(Option.toNullable (args.TryGetResult Vocab), Option.toNullable (args.TryGetResult Features), Option.toNullable (args.TryGetResult Seq_Len))
            ModelSyntax.Parse text, input, defaultArg convention Convention.Torch
        | None, None -> fail ErrorKind.Spec "Give --model \"<text>\" or --model-dir DIR."
    let s = model.Summary(input, conv)
    printfn "Model: %O" model
    printfn "%O" s
    if args.Contains SummaryArgs.Json then
        printfn "%s" (ModelJson.ToJson model)
    0

/// `seqdsl check`: the kernel agreement sweep and a speed probe on this machine; exit 1 if a path in use disagrees.
let check (a: ParseResults<CheckArgs>) : int =
    useThreads (a.TryGetResult CheckArgs.Threads)
    let sizes =
        if a.Contains Full then List.ofSeq KernelCheck.Sizes
        else [ 1; 2; 3; 4; 5; 8; 12; 16; 20; 32; 33; 48; 64; 96; 128; 256 ]
    printfn "seqdsl check on %s, libtorch threads %d" Backend.Machine (TorchSharp.torch.get_num_threads ())
    for line in Backend.Describe() do printfn "  %s" line
    let watch = Diagnostics.Stopwatch.StartNew()
    let cases = KernelCheck.Cases(KernelCheck.Cells, sizes) |> List.ofSeq
    printfn "\nAgreement with the float64 reference: %d cases (%d sizes × uni/bi × 1/2 layers × lengths or not), training mode and no_grad; tolerance %g" cases.Length sizes.Length KernelCheckRow.Tolerance
    let rows = cases |> List.collect (fun c -> List.ofSeq (KernelCheck.Run(c, withOneDnn = true, withLoop = true)))
    printfn "%-7s %-9s %-17s %6s %10s  %-28s %-6s %s" "path" "mode" "cell" "cases" "max error" "worst case" "in use" "result"
    let groups = rows |> List.groupBy (fun r -> r.Path, r.Mode, r.Case.Cell) |> List.sortBy fst
    for (path, mode, cell), rs in groups do
        let worst = rs |> List.maxBy (fun r -> r.MaxError)
        let inUse = rs |> List.exists (fun r -> r.InUse)
        let bad = rs |> List.filter (fun r -> not r.Agrees)
        let result =
            if bad.IsEmpty then "ok"
            else
                let hs = bad |> List.map (fun r -> r.Case.Hidden) |> List.distinct |> List.sort
                let where = String.Join(", ", hs |> List.truncate 12)
                let more = if hs.Length > 12 then ", …" else ""
                if inUse then $"WRONG at H {where}{more}"
                else $"wrong at H {where}{more} (not used by SeqDsl here)"
        printfn "%-7s %-9s %-17s %6d %10.2g  %-28s %-6s %s" path mode cell rs.Length worst.MaxError
            $"H={worst.Case.Hidden} {worst.Case.Variant}" (if inUse then "yes" else "no") result
    let failing = rows |> List.filter (fun r -> r.InUse && not r.Agrees)
    printfn "(%.1f s)" watch.Elapsed.TotalSeconds
    if not (a.Contains No_Speed) then
        printfn "\nSpeed: one layer, forward + backward, median of 5"
        printfn "%-7s %-9s %5s %5s %5s %5s %10s  %s" "path" "cell" "B" "T" "I" "H" "ms" "in use"
        for r in KernelCheck.Probe() do
            printfn "%-7s %-9s %5d %5d %5d %5d %10.2f  %s" r.Path r.Cell r.Batch r.Time r.Input r.Hidden r.Milliseconds (if r.InUse then "yes" else "no")
    if failing.IsEmpty then
        printfn "\nEvery path SeqDsl uses on this machine agrees with the reference."
        0
    else
        eprintfn "seqdsl: %d case(s) of a path SeqDsl uses disagree with the reference (first: %s %s %s H=%d %s, error %.3g); please report this with the table above."
            failing.Length failing.Head.Path failing.Head.Mode failing.Head.Case.Cell failing.Head.Case.Hidden failing.Head.Case.Variant failing.Head.MaxError
        1

let private exportOnnx (a: ParseResults<ExportArgs>) : int =
    let dir = a.GetResult ExportArgs.Model_Dir
    if File.Exists dir then fail ErrorKind.Spec $"--model-dir {dir} is a file; give the folder seqdsl train --out wrote."
    if not (Directory.Exists dir) then fail ErrorKind.Spec $"--model-dir {dir} does not exist; give the folder seqdsl train --out wrote."
    let path = a.TryGetResult ExportArgs.Onnx |> Option.defaultWith (fun () -> Path.Combine(dir, "model.onnx"))
    if String.IsNullOrWhiteSpace path then
        let example = Path.Combine(dir, "model.onnx")
        fail ErrorKind.Spec $"--onnx is empty; give the file to write, e.g. {example}."
    if a.Contains States && a.Contains No_States then fail ErrorKind.Spec "--states and --no-states contradict each other; give one."
    if Directory.Exists path then
        let example = Path.Combine(path, "model.onnx")
        fail ErrorKind.Spec $"--onnx {path} is a directory; give the file to write, e.g. {example}."
    let full = Path.GetFullPath path
    // the model directory's own files are never overwritten (that would break the model being exported)
    let parentOf (p: string) = match Path.GetDirectoryName p with null -> "" | d -> d
    if String.Equals(parentOf full, Path.TrimEndingDirectorySeparator(Path.GetFullPath dir), StringComparison.Ordinal)
       && (ModelStore.SavedFiles dir).Contains(match Path.GetFileName full with null -> "" | f -> f) then
        let example = Path.Combine(dir, "model.onnx")
        fail ErrorKind.Spec $"--onnx {path} is a file of the model itself; give another name, e.g. {example}."
    use m = TrainedModel.Load dir
    let states = if a.Contains States then Nullable true elif a.Contains No_States then Nullable false else Nullable()
    let watch = Diagnostics.Stopwatch.StartNew()
    let bytes = SeqDsl.Export.OnnxExport.ToBytes(m.Network, m.Info, m.Text, SeqDsl.Export.OnnxExportOptions(States = states))
    let exportSeconds = watch.Elapsed.TotalSeconds
    // compare the graph with libtorch on random batches (padded ones included) before anything is written
    let diff, graph =
        use onnx = SeqDsl.Runtime.OnnxModel.FromBytes(bytes, path)
        ExportCheck.agreement m.Network onnx, onnx.Interface
    if not (ExportCheck.within diff) then
        fail ErrorKind.Runtime $"The exported graph disagrees with SeqDsl by {diff:G3} (more than {ExportCheck.tolerance:G1}); nothing was written. Please report the model: {m.Model}"
    try
        match Path.GetDirectoryName full with
        | null -> ()
        | parent -> Directory.CreateDirectory parent |> ignore
        Durable.ReplaceFile(path, bytes)
    with e when (e :? IOException || e :? UnauthorizedAccessException) ->
        fail ErrorKind.Runtime $"Cannot write {path}: {e.Message}"
    // read back: the bytes on disk are the bytes checked
    if Durable.Sha256 path <> Convert.ToHexStringLower(Security.Cryptography.SHA256.HashData bytes) then
        fail ErrorKind.Runtime $"{path} does not read back as written (the file system changed it); export again."
    let size = FileInfo(path).Length
    let sizeText = if size >= 1048576L then sprintf "%.1f MiB" (float size / 1048576.0) else sprintf "%.1f KiB" (float size / 1024.0)
    printfn "%s → %s (%s, ONNX opset %d, %.1f s)" dir path sizeText SeqDsl.Export.OnnxExport.Opset exportSeconds
    printfn "  model      %s (%O)" m.Model m.Info.Kind
    let inputText = if graph.InputKind = GraphInput.Ids then sprintf "Int64 [batch, time] token ids (vocabulary %d)" graph.InputWidth else sprintf "Float [batch, time, %d]" graph.InputWidth
    printfn "  input      %s: %s; %s: Int64 [batch] true lengths" graph.Input inputText graph.Lengths
    let outputText = if graph.OutputSequence then sprintf "[batch, time, %d]" graph.OutputWidth else sprintf "[batch, %d]" graph.OutputWidth
    printfn "  output     %s: Float %s (%O)" graph.Output outputText graph.OutputActivation
    if graph.States.Count > 0 then
        printfn "  states     %s" (graph.States |> Seq.map (fun s -> $"{s.Input} → {s.Output} [{s.Rows}, batch, {s.Units}]") |> String.concat ", ")
    elif m.Info.Kind = TaskKind.LanguageModel then
        eprintfn "seqdsl: note: exported without states (--no-states): this language model cannot generate from this file; export without --no-states for seqdsl serve /generate."
    let sci (v: float32) = (float v).ToString("0.0e0", CultureInfo.InvariantCulture)
    printfn "  verified   ONNX Runtime equals SeqDsl within %s (largest difference %s, relative beyond 1, on random batches with lengths%s); read back intact" (sci ExportCheck.tolerance) (sci diff) (if graph.States.Count > 0 then ", states included" else "")
    0

/// `seqdsl export --pytorch DIR`: model.pt, model.safetensors and model.py (with manifest.json) in DIR.
let private exportPytorch (dir: string) (out: string) : int =
    let full (p: string) = Path.TrimEndingDirectorySeparator(Path.GetFullPath p)
    if String.IsNullOrWhiteSpace out then
        let example = Path.Combine(dir, "pytorch")
        fail ErrorKind.Spec $"--pytorch is empty; give a folder for model.pt, model.safetensors and model.py, e.g. {example}."
    if File.Exists out then fail ErrorKind.Spec $"--pytorch {out} is a file; give a folder for model.pt, model.safetensors and model.py."
    if String.Equals(full out, full dir, StringComparison.Ordinal) then
        let example = Path.Combine(dir, "pytorch")
        fail ErrorKind.Spec $"--pytorch {out} is the model directory itself; give another folder, e.g. {example}."
    use m = TrainedModel.Load dir
    let r =
        try SeqDsl.Export.TorchExport.Save(m, out)
        with e when (e :? IOException || e :? UnauthorizedAccessException) -> fail ErrorKind.Runtime $"Cannot write {out}: {e.Message}"
    let kib (p: string) = sprintf "%6.1f KiB" (float (FileInfo(p).Length) / 1024.0)
    printfn "%s → %s (PyTorch: %d tensors, %s values)" dir out r.Tensors (r.Values.ToString("N0", CultureInfo.InvariantCulture))
    printfn "  model.pt           %s  state dict (torch.load)" (kib r.StateDict)
    printfn "  model.safetensors  %s  the same tensors" (kib r.Safetensors)
    printfn "  model.py           %s  SeqDslModel, the nn.Module they load into: model(x, lengths=None)" (kib r.Module)
    printfn "  verified   read back intact; SHA-256 in manifest.json"
    0

let export (a: ParseResults<ExportArgs>) : int =
    useThreads (a.TryGetResult ExportArgs.Threads)
    let dir = a.GetResult ExportArgs.Model_Dir
    match a.TryGetResult ExportArgs.Pytorch with
    | None -> exportOnnx a
    | Some out when a.Contains ExportArgs.Onnx ->
        match exportOnnx a with
        | 0 -> exportPytorch dir out
        | code -> code
    | Some _ when a.Contains States || a.Contains No_States ->
        fail ErrorKind.Spec "--states and --no-states shape the ONNX graph; give --onnx FILE with them (--pytorch alone writes no ONNX file)."
    | Some out ->
        if File.Exists dir then fail ErrorKind.Spec $"--model-dir {dir} is a file; give the folder seqdsl train --out wrote."
        if not (Directory.Exists dir) then fail ErrorKind.Spec $"--model-dir {dir} does not exist; give the folder seqdsl train --out wrote."
        exportPytorch dir out

let serve (a: ParseResults<ServeArgs>) : int =
    let backend = a.GetResult(Backend, defaultValue = BackendArg.Onnx)
    let threads = a.TryGetResult ServeArgs.Threads
    checkThreads threads // not useThreads: --onnx must not load libtorch
    let port = a.GetResult(Port, defaultValue = 8080)
    if port < 0 || port > 65535 then fail ErrorKind.Spec $"--port must be between 0 and 65535 (got {port})."
    let maxBatch = a.GetResult(Max_Batch, defaultValue = 256)
    if maxBatch < 1 then fail ErrorKind.Spec $"--max-batch must be at least 1 (got {maxBatch})."
    if maxBatch > 65536 then fail ErrorKind.Spec $"--max-batch must be at most 65536 (got {maxBatch})."
    let window = a.GetResult(Batch_Window_Ms, defaultValue = 2.0)
    if not (window >= 0.0 && window <= 1000.0) then fail ErrorKind.Spec $"--batch-window-ms must be between 0 and 1000 (got {window})."
    let host =
        match a.GetResult(Host, defaultValue = "127.0.0.1") with
        | "localhost" -> "127.0.0.1"
        | h when fst (Net.IPAddress.TryParse h) -> h
        | h -> fail ErrorKind.Spec $"--host {h} is not an IP address of this machine: give 127.0.0.1 (this machine only, the default), 0.0.0.0 (every interface), ::1 or an address of one interface."
    let onnxOptions = SeqDsl.Runtime.OnnxModelOptions(Threads = Option.toNullable threads)
    let predictor : IPredictor =
        match a.TryGetResult ServeArgs.Model_Dir, a.TryGetResult ServeArgs.Onnx, backend with
        | Some _, Some _, _ -> fail ErrorKind.Spec "Give --model-dir or --onnx, not both."
        | None, None, _ -> fail ErrorKind.Spec "Nothing to serve: give --model-dir DIR (a trained model) or --onnx FILE (an exported one)."
        | None, Some _, BackendArg.Torch -> fail ErrorKind.Spec "--backend torch serves a model directory (--model-dir); an .onnx file is served by --backend onnx."
        | None, Some file, BackendArg.Onnx -> SeqDsl.Runtime.OnnxModel.Load(file, onnxOptions)
        | Some dir, None, BackendArg.Torch ->
            threads |> Option.iter TorchSharp.torch.set_num_threads
            TrainedModel.Load dir
        | Some dir, None, BackendArg.Onnx ->
            use m = TrainedModel.Load dir
            SeqDsl.Runtime.OnnxModel.FromBytes(SeqDsl.Export.OnnxExport.ToBytes(m.Network, m.Info, m.Text), dir, onnxOptions)
    use _p = predictor
    match predictor with
    | :? SeqDsl.Runtime.OnnxModel as o when o.Info.Kind = TaskKind.LanguageModel && o.Interface.States.Count = 0 ->
        fail ErrorKind.Spec "This language model was exported without states (--no-states), so it cannot generate; export it again without --no-states."
    | _ -> ()
    let options =
        SeqDsl.Serving.ServeOptions(Host = host, Port = port, Backend = (argName backend),
                                    MaxBatchRows = maxBatch, BatchWindow = TimeSpan.FromMilliseconds window)
    let service = SeqDsl.Serving.ModelService.Create(predictor, options, (fun line -> eprintfn "seqdsl serve: %s" line))
    try
        service.StartAsync().GetAwaiter().GetResult()
    with e when (e.GetBaseException() :? IOException || e.GetBaseException() :? Net.Sockets.SocketException) ->
        let reason = e.GetBaseException().Message
        let advice = if reason.Contains "in use" then " (another process listens there: choose another --port, or --port 0 for a free one)" else ""
        fail ErrorKind.Runtime $"Cannot listen on {options.Host}:{port}: {reason}{advice}."
    let url = service.Urls |> Seq.head
    let endpoint = if predictor.Info.Kind = TaskKind.LanguageModel then "POST /generate" else "POST /predict"
    printfn "serving %s (%O, %s backend) on %s — %s, GET /healthz, GET /metrics; Ctrl+C or SIGTERM stops" predictor.Model predictor.Info.Kind (argName backend) url endpoint
    Console.Out.Flush()
    use stop = new ManualResetEventSlim(false)
    let handler = ConsoleCancelEventHandler(fun _ e -> e.Cancel <- true; stop.Set())
    Console.CancelKeyPress.AddHandler handler
    use _term = Runtime.InteropServices.PosixSignalRegistration.Create(Runtime.InteropServices.PosixSignal.SIGTERM, fun ctx -> ctx.Cancel <- true; stop.Set())
    stop.Wait()
    eprintfn "seqdsl serve: stopping (finishing requests in flight)"
    service.StopAsync().GetAwaiter().GetResult()
    service.DisposeAsync().AsTask().GetAwaiter().GetResult()
    0
