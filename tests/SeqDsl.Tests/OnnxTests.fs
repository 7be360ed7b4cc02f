/// ONNX export and the runtime without libtorch: for every layer kind and every seed model, ONNX Runtime's output equals
/// SeqDsl's (libtorch) within 1e-5 on random batches, padded ones with lengths included; carried states (generation)
/// agree; saved models predict the same through SeqDsl.Runtime as through TrainedModel; ONNX's own checker accepts the
/// files (where python3-onnx is installed: .ci/run installs it); SeqDsl.Runtime's dependency closure holds no TorchSharp.
module SeqDsl.Tests.OnnxTests

open System
open System.IO
open System.Collections.Generic
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Export
open SeqDsl.Generation
open SeqDsl.Runtime
open SeqDsl.Workflows
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

let tolerance = SeqDsl.Cli.ExportCheck.tolerance
/// An agreement error (relative beyond 1; NaN never passes).
let private expectWithin (e: float32) (what: string) =
    if not (SeqDsl.Cli.ExportCheck.within e) then failtestf "%s: error %g exceeds %g" what e tolerance

let private classification = TaskInfo(Kind = TaskKind.Classification, Data = "test", Loss = LossKind.BinaryCrossEntropy)
let private languageModel = TaskInfo(Kind = TaskKind.LanguageModel, Data = "text:test", Loss = LossKind.CrossEntropy)

let private maxAbs (a: float32[]) (b: float32[]) =
    Expect.equal a.Length b.Length "output sizes"
    Array.fold2 (fun m (x: float32) y -> max m (abs (x - y))) 0.0f a b

/// Exports `net` and compares both engines on padded batches with lengths and on full batches (SeqDsl.Cli.ExportCheck,
/// the check `seqdsl export` runs on the file it wrote); returns the largest difference.
let agreement (net: Network) (task: TaskInfo) =
    use model = OnnxModel.FromBytes(OnnxExport.ToBytes(net, task, null))
    SeqDsl.Cli.ExportCheck.agreement net model

/// One model per layer kind and form; each runs on the fused kernel (Auto) and, where it differs, on the loop kernel.
let layerCases : (string * string * InputSpec * Convention) list =
    [ "Embed → LSTM → Dense(Sigmoid), Keras bias", "Embed(8, padding: 0).Lstm(6).Dense(1, Sigmoid)", InputSpec(Vocab = 30), Convention.Keras
      "LSTM, libtorch's two biases", "Lstm(6).Dense(2, Softmax)", InputSpec(Features = 4), Convention.Torch
      "LSTM without bias", "Lstm(5, bias: None).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "LSTM with peepholes", "Lstm(5, peephole: true).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "GRU reset-after (linear_before_reset = 1)", "Embed(6).Gru(7).Dense(3)", InputSpec(Vocab = 20), Convention.Torch
      "GRU reset-after, Keras bias", "Gru(7).Dense(1, Tanh)", InputSpec(Features = 4), Convention.Keras
      "GRU reset-before (linear_before_reset = 0)", "Gru(7, resetAfter: false).Dense(1)", InputSpec(Features = 4), Convention.Torch
      "GRU reset-before, Keras bias", "Gru(7, resetAfter: false).Dense(1)", InputSpec(Features = 4), Convention.Keras
      "SimpleRnn tanh", "SimpleRnn(6).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "SimpleRnn relu", "SimpleRnn(6, Relu).Dense(1, Relu)", InputSpec(Features = 3), Convention.Torch
      "SimpleRnn linear", "SimpleRnn(6, Linear).Dense(1)", InputSpec(Features = 3), Convention.Keras
      "stacked LSTM (3)", "Lstm(5).Stack(3, dropout: 0.3).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "stacked GRU (2) returning sequences", "Gru(5, returnSequences: true).Stack(2).Dense(4)", InputSpec(Features = 3), Convention.Torch
      "bidirectional LSTM, concat", "Lstm(5).Bidirectional().Dense(1)", InputSpec(Features = 3), Convention.Torch
      "bidirectional GRU, sum", "Gru(5).Bidirectional(Sum).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "bidirectional SimpleRnn, mul", "SimpleRnn(5).Bidirectional(Mul).Dense(1)", InputSpec(Features = 3), Convention.Torch
      "bidirectional LSTM, ave", "Lstm(5).Bidirectional(Ave).Dense(1)", InputSpec(Features = 3), Convention.Keras
      "bidirectional sequences, each merge into Dense per step", "Gru(4, returnSequences: true).Bidirectional(Ave).Gru(3, returnSequences: true).Bidirectional(Mul).Lstm(3, returnSequences: true).Bidirectional(Sum).Dense(2)", InputSpec(Features = 3), Convention.Torch
      "stacked bidirectional LSTM", "Lstm(4).Stack(2).Bidirectional().Dense(1)", InputSpec(Features = 3), Convention.Torch
      "two recurrent layers", "Embed(5).Gru(6).Lstm(4).Dense(1, Sigmoid)", InputSpec(Vocab = 15), Convention.Keras
      "attention over a BiLSTM", "Embed(6).Lstm(5).Bidirectional().Attention(units: 7).Dense(2, Softmax)", InputSpec(Vocab = 25), Convention.Torch
      "Dropout and SpatialDropout are identity", "Embed(6).SpatialDropout(0.4).Lstm(5).Dropout(0.5).Dense(1, Sigmoid)", InputSpec(Vocab = 25), Convention.Keras
      "one-hot input (language model)", "Gru(8, returnSequences: true).Dense(11)", InputSpec(Features = 11), Convention.Torch ]

/// The loop-kernel twin of a model: every recurrent layer with kernel: Loop.
let loopTwin (m: ModelSpec) =
    ModelSpec.Of(m.Layers |> Seq.map (fun l ->
        match l with
        | :? RecurrentLayer as r ->
            RecurrentLayer(r.Cell, r.Units, ReturnSequences = r.ReturnSequences, Layers = r.Layers, Bidirectional = r.Bidirectional,
                           Dropout = r.Dropout, Kernel = Kernel.Loop) :> Layer
        | l -> l))

let private pythonOnnx =
    lazy (
        try
            let psi = Diagnostics.ProcessStartInfo("/usr/bin/python3", "-c \"import onnx; print(onnx.__version__)\"", RedirectStandardOutput = true, RedirectStandardError = true)
            use p = Diagnostics.Process.Start psi
            p.WaitForExit 30000 |> ignore
            if p.ExitCode = 0 then Some(p.StandardOutput.ReadToEnd().Trim()) else None
        with _ -> None)

/// ONNX's checker with full_check (strict shape inference) on a file; returns its error output or "".
let private onnxCheck (path: string) =
    let script = "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True); print(m.opset_import[0].version)"
    let psi = Diagnostics.ProcessStartInfo("/usr/bin/python3", RedirectStandardOutput = true, RedirectStandardError = true)
    psi.ArgumentList.Add "-c"
    psi.ArgumentList.Add script
    psi.ArgumentList.Add path
    use p = Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEnd()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Trim(), err

[<Tests>]
let tests =
    testList "Onnx" [
        for (name, text, input, convention) in layerCases do
            test $"{name}: ONNX Runtime equals SeqDsl within 1e-5, padded batches included" {
                let spec = ModelSyntax.Parse text
                for m in [ spec; loopTwin spec ] |> List.distinct do
                    use net = compile m input convention 7L
                    // a language model reads token ids (one-hot without Embed); every other model reads features or ids
                    let task = if net.Summary.Output.Sequence && (net.Spec.ReadsTokenIds || input.Features = Nullable (int net.Summary.Output.Features)) then languageModel else classification
                    let d = agreement net task
                    expectWithin d $"{m} ({convention})"
            }

        test "every seed model (examples/experiments): ONNX Runtime equals SeqDsl within 1e-5" {
            let files = Directory.GetFiles(Path.Combine(repoRoot, "examples", "experiments"), "*.json") |> Array.sort
            Expect.isGreaterThanOrEqual files.Length 15 "E2–E12, E7 ×5"
            for f in files do
                let e = ExperimentSpec.Load f
                let spec = ModelSyntax.Parse e.Model
                let last = spec.Layers.[spec.Layers.Length - 1] :?> DenseLayer
                let isLm = e.Data.StartsWith "text:"
                let input =
                    if spec.ReadsTokenIds then InputSpec(Vocab = (if isLm then last.Units else (e.Preprocessing.NumWords |> Option.ofNullable |> Option.defaultValue 2000)))
                    elif isLm then InputSpec(Features = last.Units)
                    elif e.Data.StartsWith "series:" then InputSpec(Features = 9)
                    else InputSpec(Features = 1)
                let convention = Experiment.ParseEnum<Convention>(e.Training.Convention, "training.convention")
                use net = compile spec input convention 3L
                let d = agreement net (if isLm then languageModel else classification)
                expectWithin d $"{Path.GetFileName f}: {spec}"
        }

        test "large outputs (a price forecast in the hundreds) agree relative to their size; NaN never passes" {
            use net = compile (ModelSyntax.Parse "Lstm(32).Dense(1)") (InputSpec(Features = 3)) Convention.Torch 4L
            let w = param net "layers.1.linear.weight"
            net.Assign("layers.1.linear.weight", (values w |> Array.map (fun v -> v * 300.0f)))
            net.Assign("layers.1.linear.bias", 700.0f)
            use model = OnnxModel.FromBytes(OnnxExport.ToBytes(net, classification, null))
            expectWithin (SeqDsl.Cli.ExportCheck.agreement net model) "outputs near 700"
            Expect.isFalse (SeqDsl.Cli.ExportCheck.within nanf) "NaN is not within any tolerance"
        }

        test "carried states: a language model continued from given states agrees, and generation gives the same text" {
            for text in [ "Embed(6).Lstm(7, returnSequences: true).Stack(2).Dense(12)"; "Gru(9, returnSequences: true).Dense(12)"; "SimpleRnn(5, returnSequences: true).Lstm(4, returnSequences: true).Dense(12)" ] do
                let spec = ModelSyntax.Parse text
                use net = compile spec (if spec.ReadsTokenIds then InputSpec(Vocab = 12) else InputSpec(Features = 12)) Convention.Torch 5L
                net.eval()
                use model = OnnxModel.FromBytes(OnnxExport.ToBytes(net, languageModel, null))
                Expect.isNonEmpty model.Interface.States "a language model is exported with its states"
                // two chunks: the second starts from the states the first left, on both engines
                let ids1 = [| 3L; 5L; 1L; 7L |]
                let ids2 = [| 2L; 9L; 4L |]
                use _ = torch.no_grad()
                let ctx1 = ForwardContext(KeepStates = true)
                use y1 = net.Forward(net.TokenInput(torch.tensor(ids1).reshape(1L, 4L)), ctx1)
                let ctx2 = ForwardContext(InitialStates = ctx1.FinalStates, KeepStates = true)
                use y2 = net.Forward(net.TokenInput(torch.tensor(ids2).reshape(1L, 3L)), ctx2)
                let struct (o1, _, s1) = model.Run(ids1, [| 1L; 4L |], [| 4L |])
                let struct (o2, _, _) = model.Run(ids2, [| 1L; 3L |], [| 3L |], s1)
                Expect.isLessThanOrEqual (maxAbs (values y1) o1) tolerance $"{text}: first chunk"
                Expect.isLessThanOrEqual (maxAbs (values y2) o2) tolerance $"{text}: second chunk, from carried states"
                for options in [ DecodeOptions.ArgMax; DecodeOptions.Sample(0.8, topK = 5, seed = 3); DecodeOptions.Sample(1.2, topP = 0.9, seed = 4) ] do
                    let torchText = Decoding.Generate(net, [| 1; 2 |], 30, options)
                    let vocab = SeqDsl.Data.Vocabulary.Characters("abcdefghijkl")
                    let prep = SeqDsl.Data.TextPreprocessing("chars", vocab)
                    use withText = OnnxModel.FromBytes(OnnxExport.ToBytes(net, languageModel, prep))
                    let prefix = String.Concat(vocab.Decode([| 1; 2 |]))
                    let onnxText = withText.Generate(prefix, 30, options)
                    Expect.equal onnxText (String.Concat(vocab.Decode torchText)) $"{text} {options}: same text on both engines"
        }

        testSequenced <| testList "saved models: SeqDsl.Runtime predicts what TrainedModel predicts, with the preprocessing from the file alone" [
            let quick = TrainingSpec(Epochs = 1, BatchSize = 64, Threads = Nullable 1)
            let saved (e: ExperimentSpec) =
                let dir = tempFolder "onnx-saved"
                (use r = Experiment.Run e in r.Save dir)
                let m = TrainedModel.Load dir
                let path = Path.Combine(dir, "exported.onnx")
                OnnxExport.Save(m, path) |> ignore
                m, OnnxModel.Load(path, OnnxModelOptions(Threads = Nullable 1))
            let same (a: IReadOnlyList<Prediction>) (b: IReadOnlyList<Prediction>) =
                Expect.equal b.Count a.Count "as many predictions"
                for (x, y) in Seq.zip a b do
                    Expect.equal y.Input x.Input "input"
                    Expect.equal y.Label x.Label $"label of {x.Input}"
                    Expect.equal y.ClassName x.ClassName $"class name of {x.Input}"
                    Expect.isLessThanOrEqual (abs (y.Value - x.Value)) 1e-5 $"value of {x.Input}: {x.Value} vs {y.Value}"
            test "text classification, post-padded per batch with lengths (two classes with Softmax, too)" {
                for model in [ "Embed(8).Lstm(8).Dense(1, Sigmoid)"; "Embed(8).Gru(8).Bidirectional().Dense(2)" ] do
                    let m, onnx = saved (ExperimentSpec(Model = model, Data = "synthetic:negation", Training = quick))
                    use _m = m
                    use _o = onnx
                    let texts = [ "not bad the film was long"; "indeed awful"; ""; "good good good the plot and the music and the camera were all fine"; "zzz unknown words" ]
                    same (m.PredictTexts texts) (onnx.PredictTexts texts)
                    if model.Contains "Dense(2)" then
                        for p in onnx.PredictTexts texts do
                            Expect.equal p.Probabilities.Count 2 "class probabilities"
                            Expect.floatClose Accuracy.medium (Seq.fold (+) 0.0 p.Probabilities) 1.0 "they sum to 1"
            }
            test "text classification with named labels: the class names travel in the file" {
                let csv = Path.Combine(tempFolder "onnx-named", "named.csv")
                File.WriteAllLines(csv, [| yield "text,label"; for i in 1 .. 60 -> if i % 2 = 0 then "a good film,positive" else "a bad film,negative" |])
                let m, onnx = saved (ExperimentSpec(Model = "Embed(8).Gru(8).Dense(1, Sigmoid)", Data = "csv:" + csv, Training = quick))
                use _m = m
                use _o = onnx
                Expect.equal (List.ofSeq onnx.Info.ClassNames) [ "negative"; "positive" ] "names in the metadata"
                let texts = [ "a good film"; "a bad film"; "unknown" ]
                let viaTorch = m.PredictTexts texts
                same viaTorch (onnx.PredictTexts texts)
                for p in viaTorch do Expect.contains [ "negative"; "positive" ] p.ClassName $"{p.Input}: a named class"
            }
            test "text classification with a fixed maxlen (Keras style, pre-padded)" {
                let e = ExperimentSpec(Model = "Embed(8).SimpleRnn(8).Dense(1, Sigmoid)", Data = "synthetic:negation", Training = quick,
                                       Preprocessing = PreprocessingSpec(Maxlen = Nullable 12, Padding = "pre", Tokenizer = "keras"))
                let m, onnx = saved e
                use _m = m
                use _o = onnx
                Expect.equal onnx.Text.Maxlen (Nullable 12) "maxlen travels in the file"
                let texts = [ "not bad the film was long and the plot was slow with music and more words than twelve"; "indeed awful" ]
                same (m.PredictTexts texts) (onnx.PredictTexts texts)
            }
            test "counting (features per step)" {
                let m, onnx = saved (ExperimentSpec(Model = "Lstm(4).Dense(1)", Data = "synthetic:counting", Training = quick))
                use _m = m
                use _o = onnx
                let bits = [ "0110"; "1111111"; "0" ]
                same (m.PredictCounts bits) (onnx.PredictCounts bits)
            }
            test "series: windows scaled with the fitted scaler; from a CSV and from rows" {
                let m, onnx = saved (ExperimentSpec(Model = "Gru(6).Dense(1)", Data = "synthetic:seasonal", Training = quick))
                use _m = m
                use _o = onnx
                let csv = Path.Combine(tempFolder "onnx-series", "series.csv")
                File.WriteAllLines(csv, [ yield "Date,value"; for i in 0 .. 19 -> $"2024-01-{i + 1:D2},{sin (float i / 3.0) * 10.0 + 50.0:F3}" ])
                Expect.isNotNull m.Info.TargetScaler "the model learnt a scaled target"
                Expect.equal (List.ofSeq onnx.Info.TargetScaler.Mean) (List.ofSeq m.Info.TargetScaler.Mean) "the target scaler travels in the file"
                Expect.equal (List.ofSeq onnx.Info.TargetScaler.Std) (List.ofSeq m.Info.TargetScaler.Std) "with its std"
                let viaTorch = m.PredictSeries csv
                same viaTorch (onnx.PredictSeries csv)
                Expect.equal viaTorch.[0].Input "2024-01-06" "labelled by the window's last date (one row lost to the lag)"
                same viaTorch (onnx.PredictSeries(SeqDsl.Data.Csv.Load(csv, SeqDsl.Data.CsvOptions(Types = readOnlyDict [ "Date", SeqDsl.Data.ColumnType.Date ])).Frame))
            }
            test "a language model generates the same text as TrainedModel, greedy and sampled" {
                let corpus = Path.Combine(tempFolder "onnx-lm", "rhymes.txt")
                File.WriteAllText(corpus, String.replicate 40 "the cat sat on the mat. ")
                let distinct = File.ReadAllText corpus |> Seq.distinct |> Seq.length
                for model in [ $"Embed(8).Lstm(12, returnSequences: true).Dense({distinct})"; $"Gru(10, returnSequences: true).Dense({distinct})" ] do
                    let m, onnx = saved (ExperimentSpec(Model = model, Data = "text:" + corpus, Preprocessing = PreprocessingSpec(Steps = 8),
                                                        Training = TrainingSpec(Epochs = 2, BatchSize = 4, Threads = Nullable 1, LearningRate = Nullable 0.01)))
                    use _m = m
                    use _o = onnx
                    for options in [ DecodeOptions.ArgMax; DecodeOptions.Sample(0.9, topK = 4, seed = 2) ] do
                        Expect.equal (onnx.Generate("the c", 40, options)) (m.Generate("the c", 40, options)) $"{model} {options}"
                    let probs = onnx.NextProbabilities "the c"
                    Expect.equal probs.Count distinct "one probability per character"
                    Expect.floatClose Accuracy.medium (probs |> Seq.sumBy (fun kv -> kv.Value)) 1.0 "a distribution"
                    let greedy = onnx.Generate("the c", 1, DecodeOptions.ArgMax)
                    Expect.equal (string greedy.[greedy.Length - 1]) (probs |> Seq.maxBy (fun kv -> kv.Value)).Key "its most likely character is the greedy choice"
                    let e = expectSeqDslError "classify with a language model" (fun () -> onnx.PredictTexts [ "x" ] |> ignore)
                    Expect.stringContains e.Message "LanguageModel" "says what the model is for"
            }
        ]

        test "layer-norm LSTMs and user cells are refused with the layer named" {
            use ln = compile (ModelSyntax.Parse "Lstm(4, layerNorm: true).Dense(1)") (InputSpec(Features = 3)) Convention.Torch 1L
            let e = expectSeqDslError "layer norm" (fun () -> OnnxExport.ToBytes(ln, classification, null))
            Expect.equal e.LayerIndex (Nullable 0) "names the layer"
            Expect.stringContains e.Message "layer normalisation" "says why"
            let cell =
                UserCells.Register("OnnxRefusedCell", 1,
                    [| struct ("weight_ih", [| Dim.H(); Dim.I() |]); struct ("weight_hh", [| Dim.H(); Dim.H() |]) |],
                    (fun px (s: torch.Tensor[]) (p: CellParameters) -> [| (px + torch.nn.functional.linear(s.[0], p.["weight_hh"])).tanh() |]),
                    (fun x p -> torch.nn.functional.linear(x, p.["weight_ih"])))
            use user = compile (Model.Embed(4).Lstm(3, returnSequences = true).Recurrent(cell, 3).Dense(1)) (InputSpec(Vocab = 9)) Convention.Torch 1L
            let e = expectSeqDslError "user cell" (fun () -> OnnxExport.ToBytes(user, classification, null))
            Expect.equal e.LayerIndex (Nullable 2) "names the layer"
            Expect.stringContains e.Message "OnnxRefusedCell" "names the cell"
        }

        test "the metadata carries the model, the task and the text preparation; a file not from SeqDsl is refused" {
            let vocab = SeqDsl.Data.Vocabulary.Characters("abc")
            let prep = SeqDsl.Data.TextPreprocessing("chars", vocab, Nullable 7, SeqDsl.Data.Side.Post, SeqDsl.Data.Side.Pre)
            use net = compile (ModelSyntax.Parse "Embed(4).Lstm(3).Dense(1, Sigmoid)") (InputSpec(Vocab = vocab.Size)) Convention.Keras 1L
            use model = OnnxModel.FromBytes(OnnxExport.ToBytes(net, classification, prep))
            Expect.equal model.Model "Embed(4).Lstm(3).Dense(1, Sigmoid)" "model text"
            Expect.equal (model.Info.Kind, model.Info.Loss, model.Info.Data) (classification.Kind, classification.Loss, classification.Data) "task"
            Expect.equal model.Text.Maxlen (Nullable 7) "maxlen"
            Expect.equal model.Text.Padding SeqDsl.Data.Side.Post "padding side"
            Expect.equal model.Text.Vocabulary.Size vocab.Size "vocabulary"
            Expect.equal model.Interface.InputKind GraphInput.Ids "reads ids"
            let proto = Onnx.ModelProto.Parser.ParseFrom(OnnxExport.ToBytes(net, classification, prep))
            Expect.equal proto.OpsetImport.[0].Version (int64 OnnxExport.Opset) "opset stated"
            proto.MetadataProps.Clear()
            let e = expectSeqDslError "foreign" (fun () -> OnnxModel.FromBytes(Google.Protobuf.MessageExtensions.ToByteArray proto, "plain.onnx") |> ignore)
            Expect.stringContains e.Message "not exported by SeqDsl" "says what is wrong"
            let e2 = expectSeqDslError "garbage" (fun () -> OnnxModel.FromBytes([| 1uy; 2uy; 3uy |], "garbage.onnx") |> ignore)
            Expect.stringContains e2.Message "garbage.onnx" "names the file"
            // the file carries its own SHA-256: one changed weight byte is refused
            let sealedBytes = OnnxExport.ToBytes(net, classification, prep)
            use intact = OnnxModel.FromBytes(Array.copy sealedBytes, "intact.onnx")
            // a byte inside the largest weight's raw data (a byte at a fixed offset can land on a length field, which
            // ONNX Runtime refuses before the digest is read)
            let largest = Onnx.ModelProto.Parser.ParseFrom(sealedBytes).Graph.Initializer |> Seq.maxBy (fun t -> t.RawData.Length)
            let raw = largest.RawData.ToByteArray()
            Expect.isGreaterThan raw.Length 16 "the weights are stored as raw data"
            let at =
                seq { 0 .. sealedBytes.Length - raw.Length }
                |> Seq.find (fun i -> System.MemoryExtensions.SequenceEqual(System.ReadOnlySpan(sealedBytes, i, raw.Length), System.ReadOnlySpan raw))
            let damaged = Array.copy sealedBytes
            damaged.[at + raw.Length / 2] <- damaged.[at + raw.Length / 2] ^^^ 0x10uy
            let e3 = expectSeqDslError "damaged" (fun () -> OnnxModel.FromBytes(damaged, "damaged.onnx") |> ignore)
            Expect.stringContains e3.Message "changed after it was exported" "says what happened"
        }

        test "ONNX's checker (full check, strict shape inference) accepts every layer kind's export" {
            match pythonOnnx.Force() with
            | None -> skiptest "python3-onnx is not installed here (.ci/run installs it: apt-get install python3-onnx)"
            | Some _ ->
                let dir = tempFolder "onnx-check"
                for (i, (name, text, input, convention)) in List.indexed layerCases do
                    use net = compile (ModelSyntax.Parse text) input convention 7L
                    let path = Path.Combine(dir, $"case{i}.onnx")
                    File.WriteAllBytes(path, OnnxExport.ToBytes(net, (if net.Summary.Output.Sequence then languageModel else classification), null))
                    // and the same model reading features, where it has no Embed
                    if not net.Spec.ReadsTokenIds then
                        File.WriteAllBytes(path + ".features.onnx", OnnxExport.ToBytes(net, classification, null))
                        let code, _, err = onnxCheck (path + ".features.onnx")
                        Expect.equal code 0 $"{name} (features): {err}"
                    let code, out, err = onnxCheck path
                    Expect.equal code 0 $"{name}: {err}"
                    Expect.equal out (string OnnxExport.Opset) "opset"
        }

        test "SeqDsl.Runtime: no TorchSharp in its references or its package closure" {
            let asm = typeof<OnnxModel>.Assembly
            let refs = asm.GetReferencedAssemblies() |> Array.map (fun a -> a.Name) |> List.ofArray
            let foreign =
                refs |> List.filter (fun n ->
                    not (n = "netstandard" || n.StartsWith("System", StringComparison.Ordinal)
                         || List.contains n [ "SeqDsl.Core"; "Microsoft.ML.OnnxRuntime"; "Microsoft.Data.Analysis" ]))
            Expect.isEmpty foreign $"SeqDsl.Runtime references only the BCL, SeqDsl.Core, ONNX Runtime and Microsoft.Data.Analysis ({refs})"
            let assets = Path.Combine(repoRoot, "src", "SeqDsl.Runtime", "obj", "project.assets.json")
            Expect.isTrue (File.Exists assets) "restored"
            use doc = Text.Json.JsonDocument.Parse(File.ReadAllText assets)
            let libraries = [ for p in doc.RootElement.GetProperty("libraries").EnumerateObject() -> p.Name ]
            Expect.isNonEmpty libraries "package closure read"
            let torch = libraries |> List.filter (fun l -> l.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || l.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase))
            Expect.isEmpty torch "no TorchSharp or libtorch package in SeqDsl.Runtime's closure"
            Expect.exists libraries (fun l -> l.StartsWith "Microsoft.ML.OnnxRuntime/") "ONNX Runtime is"
        }
    ]
