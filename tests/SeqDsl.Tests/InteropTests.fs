/// PyTorch interop: a network's weights as a PyTorch state dict (model.pt, through TorchSharp.PyBridge) and as
/// safetensors, with model.py, the nn.Module they load into; weights from PyTorch loaded into a compiled network with
/// every name, shape and element type checked. Round trips are bit-identical; where /usr/bin/python3 has torch
/// (python3-torch; .ci/run installs it) real PyTorch runs model.py on both files and agrees with SeqDsl within 1e-5, and
/// state dicts PyTorch wrote load into SeqDsl and agree; the committed fixtures (tests/fixtures/torch, made by
/// tests/fixtures/make-torch-fixtures.py) test the load path where python3-torch is absent.
module SeqDsl.Tests.InteropTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Export
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport
open SeqDsl.Tests.CliTests

let private python = "/usr/bin/python3"

/// Runs /usr/bin/python3 with a script and arguments (one libtorch thread, passive OpenMP); (exit code, stdout, stderr).
let private runPython (script: string) (args: string list) =
    let psi = Diagnostics.ProcessStartInfo(python, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add "-c"
    psi.ArgumentList.Add script
    for a in args do psi.ArgumentList.Add a
    psi.Environment.["OMP_NUM_THREADS"] <- "1"
    psi.Environment.["OMP_WAIT_POLICY"] <- "PASSIVE"
    use p = Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 300000) then
        p.Kill true
        failtest "python3 ran past 300 s"
    p.ExitCode, out.Result, err.Result

/// torch's version where /usr/bin/python3 can import it.
let private pythonTorch =
    lazy (
        try
            match runPython "import torch; print(torch.__version__)" [] with
            | 0, out, _ -> Some(out.Trim())
            | _ -> None
        with _ -> None)

let private withTorch (f: unit -> unit) =
    match pythonTorch.Force() with
    | None -> skiptest "python3-torch is not installed here (.ci/run installs it: apt-get install python3-torch); the real-PyTorch check is skipped"
    | Some _ -> f ()

let private fixtures = Path.Combine(repoRoot, "tests", "fixtures", "torch")

/// Largest absolute difference of two outputs of one size.
let private maxAbs (a: float32[]) (b: float32[]) =
    Expect.equal a.Length b.Length "output sizes"
    Array.fold2 (fun m (x: float32) y -> max m (abs (x - y))) 0.0f a b

/// A batch of 4 rows × 6 steps for a network (ids or features; padding steps hold values too), with lengths 6, 3, 1, 5.
let private batch (net: Network) (seed: int) =
    let rng = Random seed
    let x =
        if net.Spec.ReadsTokenIds then
            let vocab = (param net "layers.0.embedding.weight").shape.[0]
            torch.tensor(Array.init 24 (fun _ -> int64 (rng.Next(int vocab)))).reshape(4L, 6L)
        else
            let f = int64 net.Options.Input.Features.Value
            torch.tensor(Array.init (24 * int f) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))).reshape(4L, 6L, f)
    x, torch.tensor([| 6L; 3L; 1L; 5L |])

/// Outputs in evaluation mode without gradients: on the full batch and with lengths.
let private outputs (net: Network) (x: torch.Tensor) (lengths: torch.Tensor) =
    net.eval()
    use _ = torch.no_grad()
    use full = net.forward x
    use padded = net.Forward(x, lengths)
    values full, values padded

/// The layer cases of the ONNX tests (every layer kind and form) with their loop-kernel twins.
let private allCases =
    [ for (name, text, input, convention) in OnnxTests.layerCases do
        let spec = ModelSyntax.Parse text
        yield name, spec, input, convention
        let twin = OnnxTests.loopTwin spec
        if twin <> spec then yield name + " (loop kernel)", twin, input, convention ]

/// Whether PyTorch's modules express every layer of a model.
let private torchForm (spec: ModelSpec) =
    try TorchExport.CheckExportable spec; true with :? SeqDslException -> false

let private interopCell =
    lazy (
        UserCells.Register("InteropCell", 1,
            [| struct ("weight_ih", [| Dim.H(); Dim.I() |]); struct ("weight_hh", [| Dim.H(); Dim.H() |]); struct ("bias_ih", [| Dim.H() |]) |],
            (fun px (s: torch.Tensor[]) (p: CellParameters) -> [| (px + torch.nn.functional.linear(s.[0], p.["weight_hh"])).tanh() |]),
            (fun x p -> torch.nn.functional.linear(x, p.["weight_ih"], p.["bias_ih"]))))

/// Writes named tensors as safetensors (the library's writer).
let private writeSafetensors (path: string) (tensors: (string * torch.Tensor) list) =
    File.WriteAllBytes(path, Safetensors.Write(tensors |> List.map (fun (n, t) -> struct (n, t))))

/// The state dict of a network as (name, CPU copy) pairs, read back from its own safetensors bytes.
let private stateOf (net: Network) =
    let dir = tempFolder "interop-state"
    let path = Path.Combine(dir, "state.safetensors")
    TorchWeights.SaveSafetensors(net, path)
    let struct (tensors, _) = Safetensors.Read(File.ReadAllBytes path, path)
    [ for t in tensors -> t.Name, t.Value ]

/// Compiles a fixture's model, loads its .pt and .safetensors, and compares with PyTorch's outputs; returns the largest
/// difference.
let private checkFixture (dir: string) (name: string) =
    let json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name + ".json"))).RootElement
    let flat (e: JsonElement) =
        let rec go (e: JsonElement) : float list =
            if e.ValueKind = JsonValueKind.Array then [ for c in e.EnumerateArray() do yield! go c ] else [ e.GetDouble() ]
        go e |> Array.ofList
    let spec = ModelSyntax.Parse(json.GetProperty("model").GetString())
    let convention = if json.GetProperty("convention").GetString() = "keras" then Convention.Keras else Convention.Torch
    let mutable v = Unchecked.defaultof<JsonElement>
    let input = if json.TryGetProperty("vocab", &v) then InputSpec(Vocab = v.GetInt32()) else InputSpec(Features = json.GetProperty("features").GetInt32())
    let x =
        let xs = flat (json.GetProperty "x")
        if spec.ReadsTokenIds then torch.tensor(xs |> Array.map int64).reshape(4L, 6L)
        else torch.tensor(xs |> Array.map float32).reshape(4L, 6L, int64 input.Features.Value)
    let lengths = torch.tensor(flat (json.GetProperty "lengths") |> Array.map int64)
    let expected = flat (json.GetProperty "expected") |> Array.map float32
    let expectedWithLengths = flat (json.GetProperty "expectedWithLengths") |> Array.map float32
    let mutable worst = 0.0f
    for file in [ name + ".pt"; name + ".safetensors" ] do
        use net = compile spec input convention 99L
        let before, _ = outputs net x lengths
        Expect.isGreaterThan (maxAbs before expected) 1e-3f $"{file}: a fresh network computes something else"
        let result = TorchWeights.Load(net, Path.Combine(dir, file))
        Expect.equal result.Tensors (List.length (stateOf net)) $"{file}: every tensor loaded"
        let full, padded = outputs net x lengths
        let d = max (maxAbs full expected) (maxAbs padded expectedWithLengths)
        Expect.isLessThanOrEqual d 1e-5f $"{file}: SeqDsl equals PyTorch within 1e-5 (with and without lengths)"
        if convention = Convention.Keras then
            Expect.isNonEmpty result.FoldedBiases $"{file}: PyTorch's nonzero bias_hh added into the Keras layout's one bias"
        worst <- max worst d
    worst

/// Python run by real PyTorch on export folders: imports each model.py, loads model.pt (torch.load) and
/// model.safetensors (read here with struct/json/torch.frombuffer), and compares with SeqDsl's outputs in io.safetensors.
let private compareScript = """
import importlib.util, json, struct, sys
import torch
torch.set_num_threads(1)

def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    types = {"F32": torch.float32, "I64": torch.int64}
    return {k: torch.frombuffer(bytearray(data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]), dtype=types[v["dtype"]]).reshape(v["shape"])
            for k, v in header.items()}

results = {}
for case in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("model_" + str(len(results)), case + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    io = read_safetensors(case + "/io.safetensors")
    out = {}
    for source in ("pt", "safetensors"):
        state = torch.load(case + "/model.pt") if source == "pt" else read_safetensors(case + "/model.safetensors")
        model = module.SeqDslModel()
        keys = sorted(model.state_dict().keys()) == sorted(state.keys())
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            full = model(io["x"])
            padded = model(io["x"], io["lengths"])
        out[source] = [float((full - io["full"]).abs().max()), float((padded - io["padded"]).abs().max()), keys]
    own = module.load_safetensors(case + "/model.safetensors")
    mine = read_safetensors(case + "/model.safetensors")
    out["loader"] = sorted(own) == sorted(mine) and all(torch.equal(own[k], mine[k]) for k in mine)
    results[case] = out
print(json.dumps(results))
"""

[<Tests>]
let tests =
    testSequenced <| testList "Interop" [
        test "SeqDsl → safetensors / .pt → SeqDsl: bit-identical outputs, every layer kind and kernel (user cells too)" {
            let user = Model.Embed(4).Lstm(3, returnSequences = true).Recurrent(interopCell.Force(), 3).Dense(1)
            let cases = allCases @ [ "user cell", user, InputSpec(Vocab = 9), Convention.Torch ]
            let dir = tempFolder "interop-roundtrip"
            for (name, spec, input, convention) in cases do
                use net = compile spec input convention 7L
                let x, lengths = batch net 1
                let full, padded = outputs net x lengths
                for file in [ "weights.safetensors"; "weights.pt" ] do
                    let path = Path.Combine(dir, file)
                    if file.EndsWith ".pt" then TorchWeights.SaveStateDict(net, path) else TorchWeights.SaveSafetensors(net, path)
                    use other = compile spec input convention 8L
                    let before, _ = outputs other x lengths
                    Expect.notEqual before full $"{name}: another seed computes something else"
                    let result = TorchWeights.Load(other, path)
                    Expect.equal result.Format (if file.EndsWith ".pt" then "pt" else "safetensors") $"{name}: format recognised by content"
                    Expect.isEmpty result.FoldedBiases $"{name}: a zero second bias is not added"
                    let full2, padded2 = outputs other x lengths
                    Expect.equal full2 full $"{name} via {file}: bit-identical outputs"
                    Expect.equal padded2 padded $"{name} via {file}: bit-identical outputs with lengths"
        }

        test "the state dict is the PyTorch module's: SeqDsl's names, and a Keras layout's second bias as zeros" {
            use fused = compile (ModelSyntax.Parse "Embed(8, padding: 0).Lstm(6).Dense(1, Sigmoid)") (InputSpec(Vocab = 30)) Convention.Keras 3L
            use loop = compile (OnnxTests.loopTwin fused.Spec) (InputSpec(Vocab = 30)) Convention.Keras 3L
            Expect.isFalse (List.contains "layers.1.rnn.bias_hh_l0" (paramNames loop)) "the loop kernel keeps one bias"
            for net in [ fused; loop ] do
                let state = stateOf net
                Expect.equal (state |> List.map fst)
                    [ "layers.0.embedding.weight"; "layers.1.rnn.weight_ih_l0"; "layers.1.rnn.weight_hh_l0"; "layers.1.rnn.bias_ih_l0"
                      "layers.1.rnn.bias_hh_l0"; "layers.2.linear.weight"; "layers.2.linear.bias" ] "names in nn.Module order"
                let hh = state |> List.find (fun (n, _) -> n = "layers.1.rnn.bias_hh_l0") |> snd
                Expect.equal (values hh) (Array.zeroCreate 24) "PyTorch's second bias is zero"
                Expect.equal (state |> List.find (fun (n, _) -> n = "layers.1.rnn.weight_ih_l0") |> snd).shape [| 24L; 8L |] "4 gates × units, input"
            let py = TorchExport.PythonModule fused
            Expect.stringContains py "Recurrent(nn.LSTM(8, 6, batch_first=True))" "nn.LSTM with both biases"
            Expect.stringContains py "Embed(nn.Embedding(30, 8, padding_idx=0), trainable=True)" "nn.Embedding"
            Expect.stringContains py "Dense(nn.Linear(6, 1), activation=\"sigmoid\")" "nn.Linear"
            Expect.stringContains py "layers.1.rnn.bias_hh_l0 are zero" "says the Keras layout's second bias is zero"
            use bi = compile (ModelSyntax.Parse "Gru(4, returnSequences: true).Stack(2, dropout: 0.2).Bidirectional(Ave).Dense(2)") (InputSpec(Features = 3)) Convention.Torch 3L
            Expect.stringContains (TorchExport.PythonModule bi)
                "Recurrent(nn.GRU(3, 4, num_layers=2, batch_first=True, dropout=0.2, bidirectional=True), merge=\"ave\", return_sequences=True)" "stacked bidirectional GRU"
        }

        test "load errors name the tensor: missing, unexpected, wrong shape, wrong type; a failed load changes nothing" {
            let dir = tempFolder "interop-errors"
            use net = compile (ModelSyntax.Parse "Lstm(5).Dense(1, Sigmoid)") (InputSpec(Features = 3)) Convention.Torch 4L
            let state = stateOf net
            let x, lengths = batch net 2
            let before = outputs net x lengths
            let fails (label: string) (tensors: (string * torch.Tensor) list) =
                let path = Path.Combine(dir, label + ".safetensors")
                writeSafetensors path tensors
                let e = expectSeqDslError label (fun () -> TorchWeights.Load(net, path))
                Expect.equal e.Kind ErrorKind.Data $"{label}: a data error (exit 2)"
                Expect.stringContains e.Message path $"{label}: names the file"
                Expect.equal (outputs net x lengths) before $"{label}: the network is unchanged"
                e
            let missing = fails "missing" (state |> List.filter (fun (n, _) -> n <> "layers.0.rnn.bias_hh_l0"))
            Expect.stringContains missing.Message "tensor 'layers.0.rnn.bias_hh_l0' is missing" "missing"
            let extra = fails "unexpected" (state @ [ "layers.0.rnn.weight_ih_l1", torch.zeros(20L, 5L) ])
            Expect.stringContains extra.Message "tensor 'layers.0.rnn.weight_ih_l1' is not a parameter of Lstm(5).Dense(1, Sigmoid)" "unexpected"
            let shape = fails "shape" (state |> List.map (fun (n, t) -> if n = "layers.1.linear.weight" then n, torch.zeros(2L, 5L) else n, t))
            Expect.stringContains shape.Message "tensor 'layers.1.linear.weight' has shape [2, 5], the model's is [1, 5]" "shape"
            let dtype = fails "dtype" (state |> List.map (fun (n, t) -> if n = "layers.0.rnn.weight_hh_l0" then n, t.to_type(torch.ScalarType.Float64) else n, t))
            Expect.stringContains dtype.Message "tensor 'layers.0.rnn.weight_hh_l0' holds float64 values, the model's are float32" "type"
            // PyTorch's own file in float64 (committed fixture)
            let pt = expectSeqDslError "float64 .pt" (fun () -> TorchWeights.Load(net, Path.Combine(fixtures, "lstm-float64.pt")))
            Expect.stringContains pt.Message "holds float64 values, the model's are float32" "type, from a .pt"
            Expect.stringContains pt.Message "tensor 'layers.0.rnn." "names the tensor"
            // a file of another model (the fixture's GRU into this LSTM)
            let other = expectSeqDslError "another model" (fun () -> TorchWeights.Load(net, Path.Combine(fixtures, "embed-bigru.pt")))
            Expect.stringContains other.Message "is missing" "another model's tensors"
            // not a weights file at all, a missing file, damaged safetensors
            let junk = Path.Combine(dir, "junk.pt")
            File.WriteAllText(junk, "hello, not weights")
            Expect.stringContains (expectSeqDslError "junk" (fun () -> TorchWeights.Load(net, junk))).Message "neither a PyTorch state dict" "junk"
            Expect.stringContains (expectSeqDslError "absent" (fun () -> TorchWeights.Load(net, Path.Combine(dir, "absent.pt")))).Message "not found" "absent"
            let good = Path.Combine(dir, "good.safetensors")
            TorchWeights.SaveSafetensors(net, good)
            let cut = Path.Combine(dir, "cut.safetensors")
            File.WriteAllBytes(cut, File.ReadAllBytes(good).[.. File.ReadAllBytes(good).Length - 5])
            Expect.stringContains (expectSeqDslError "truncated" (fun () -> TorchWeights.Load(net, cut))).Message "is not a valid safetensors file" "truncated"
            let zip = Path.Combine(dir, "damaged.pt")
            let bytes = File.ReadAllBytes(Path.Combine(fixtures, "lstm.pt"))
            File.WriteAllBytes(zip, bytes.[.. bytes.Length / 2])
            Expect.stringContains (expectSeqDslError "damaged .pt" (fun () -> TorchWeights.Load(net, zip))).Message "could not be read as a PyTorch state dict" "damaged zip"
            Expect.equal (outputs net x lengths) before "still unchanged"
        }

        test "committed PyTorch fixtures (torch.save and safetensors) load and agree with PyTorch within 1e-5" {
            for name in [ "lstm"; "embed-bigru"; "keras-lstm"; "rnn-sequences" ] do
                let d = checkFixture fixtures name
                printfn "interop fixture %s: largest difference from PyTorch %g" name d
        }

        test "layers PyTorch cannot express are refused with the layer named; a folder with other files is not replaced" {
            for text, index, why in [ "Lstm(5, peephole: true).Dense(1)", 0, "peephole"
                                      "Gru(4).Lstm(4, layerNorm: true).Dense(1)", 1, "layer normalisation"
                                      "Gru(7, resetAfter: false).Dense(1)", 0, "reset-after"
                                      "SimpleRnn(6, Linear).Dense(1)", 0, "Linear activation" ] do
                use net = compile (ModelSyntax.Parse text) (InputSpec(Features = 3)) Convention.Torch 1L
                let e = expectSeqDslError text (fun () -> TorchExport.Save(net, tempFolder "interop-refused"))
                Expect.equal e.LayerIndex (Nullable index) $"{text}: names the layer"
                Expect.stringContains e.Message "has no PyTorch form" text
                Expect.stringContains e.Message why $"{text}: says why"
            use user = compile (Model.Embed(4).Recurrent(interopCell.Force(), 3).Dense(1)) (InputSpec(Vocab = 9)) Convention.Torch 1L
            let e = expectSeqDslError "user cell" (fun () -> TorchExport.PythonModule user)
            Expect.equal e.LayerIndex (Nullable 1) "names the layer"
            Expect.stringContains e.Message "InteropCell" "names the cell"
            use net = compile (ModelSyntax.Parse "Lstm(3).Dense(1)") (InputSpec(Features = 2)) Convention.Torch 1L
            let busy = tempFolder "interop-busy"
            File.WriteAllText(Path.Combine(busy, "notes.txt"), "mine")
            let e2 = expectSeqDslError "busy folder" (fun () -> TorchExport.Save(net, busy))
            Expect.stringContains e2.Message "notes.txt" "names the other file"
            Expect.equal (File.ReadAllText(Path.Combine(busy, "notes.txt"))) "mine" "left alone"
        }

        test "the export folder: model.pt, model.safetensors, model.py and a manifest with their SHA-256; written again in place" {
            use net = compile (ModelSyntax.Parse "Embed(6).Gru(5).Bidirectional().Dense(3, Softmax)") (InputSpec(Vocab = 20)) Convention.Torch 2L
            let dir = Path.Combine(tempFolder "interop-export", "torch")
            for _ in 1 .. 2 do
                let r = TorchExport.Save(net, dir)
                Expect.equal r.Tensors 11 "embedding, 2 directions × 4, linear × 2"
                let files = Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort
                Expect.equal files [| "manifest.json"; "model.pt"; "model.py"; "model.safetensors" |] "the export's files, nothing else"
                let manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json"))).RootElement.GetProperty("Files")
                for f in [ "model.pt"; "model.py"; "model.safetensors" ] do
                    Expect.equal (manifest.GetProperty(f).GetString()) (Durable.Sha256(Path.Combine(dir, f))) $"{f}: SHA-256 listed"
            let struct (_, metadata) = Safetensors.Read(File.ReadAllBytes(Path.Combine(dir, "model.safetensors")), "model.safetensors")
            Expect.equal metadata.["seqdsl.model"] "Embed(6).Gru(5).Bidirectional().Dense(3, Softmax)" "metadata names the model"
            Expect.equal metadata.["format"] "pt" "PyTorch tensors"
        }

        test "real PyTorch: model.py loads model.pt and model.safetensors and reproduces SeqDsl's outputs within 1e-5, every layer kind" {
            withTorch (fun () ->
                let root = tempFolder "interop-torch"
                let cases = allCases |> List.filter (fun (_, spec, _, _) -> torchForm spec)
                Expect.isGreaterThanOrEqual cases.Length 30 "LSTM, GRU, RNN, stacked, bidirectional, embedding, attention, dropout; both kernels"
                let dirs =
                    [ for (i, (name, spec, input, convention)) in List.indexed cases do
                        use net = compile spec input convention 11L
                        let dir = Path.Combine(root, $"case{i}")
                        TorchExport.Save(net, dir) |> ignore
                        let x, lengths = batch net 3
                        net.eval()
                        use _ = torch.no_grad()
                        use full = net.forward x
                        use padded = net.Forward(x, lengths)
                        writeSafetensors (Path.Combine(dir, "io.safetensors")) [ "x", x; "lengths", lengths; "full", full; "padded", padded ]
                        yield dir, name ]
                let code, out, err = runPython compareScript (List.map fst dirs)
                Expect.equal code 0 $"python3 ran the modules (stderr: {err})"
                let results = JsonDocument.Parse(out).RootElement
                let mutable worst = 0.0
                for (dir, name) in dirs do
                    let r = results.GetProperty dir
                    for source in [ "pt"; "safetensors" ] do
                        let v = r.GetProperty source
                        Expect.isTrue (v.[2].GetBoolean()) $"{name}: model.{source} has exactly SeqDslModel's keys"
                        for k in 0 .. 1 do
                            let d = v.[k].GetDouble()
                            let batchKind = if k = 0 then "full batch" else "with lengths"
                            Expect.isLessThanOrEqual d 1e-5 $"{name} from model.{source} ({batchKind}): PyTorch equals SeqDsl"
                            worst <- max worst d
                    Expect.isTrue (r.GetProperty("loader").GetBoolean()) $"{name}: model.py's load_safetensors reads what the test's reader reads"
                printfn "interop: %d models in PyTorch %s, largest difference from SeqDsl %g" dirs.Length (pythonTorch.Force().Value) worst)
        }

        test "real PyTorch: state dicts written by torch.save (make-torch-fixtures.py, run now) load into SeqDsl and agree within 1e-5" {
            withTorch (fun () ->
                let dir = tempFolder "interop-fixtures"
                let code, out, err = runPython (File.ReadAllText(Path.Combine(repoRoot, "tests", "fixtures", "make-torch-fixtures.py"))) [ dir ]
                Expect.equal code 0 $"the fixture script ran (stderr: {err})"
                Expect.stringContains out "wrote 4 fixtures" "all written"
                for name in [ "lstm"; "embed-bigru"; "keras-lstm"; "rnn-sequences" ] do
                    let d = checkFixture dir name
                    printfn "interop, fresh from PyTorch %s: largest difference %g" name d)
        }

        test "CLI: export --pytorch writes the folder; train --init-weights loads it (exit 2 naming the tensor when it does not fit)" {
            let root = tempFolder "interop-cli"
            let model = Path.Combine(root, "model")
            let code, _, err = runCli [ "train"; "--model"; "Embed(8).Lstm(6).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"
                                        "--threads"; "1"; "--convention"; "keras"; "--out"; model ]
            Expect.equal code 0 $"trained (stderr: {err})"
            let out = Path.Combine(root, "torch")
            let code, stdout, err = runCli [ "export"; "--model-dir"; model; "--pytorch"; out ]
            Expect.equal code 0 $"exported (stderr: {err})"
            Expect.stringContains stdout "model.py" "says what it wrote"
            Expect.isFalse (File.Exists(Path.Combine(model, "model.onnx"))) "--pytorch alone writes no ONNX file"
            for f in [ "model.pt"; "model.safetensors"; "model.py"; "manifest.json" ] do
                Expect.isTrue (File.Exists(Path.Combine(out, f))) f
            let code, stdout, err = runCli [ "train"; "--model"; "Embed(8).Lstm(6).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"
                                             "--threads"; "1"; "--convention"; "keras"; "--init-weights"; Path.Combine(out, "model.pt") ]
            Expect.equal code 0 $"trained from the exported weights (stderr: {err})"
            Expect.stringContains stdout "loaded 7 tensors" "reports the load (the fused Keras LSTM's held-at-zero second bias included)"
            let code, _, err = runCli [ "train"; "--model"; "Embed(8).Gru(6).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"
                                        "--threads"; "1"; "--init-weights"; Path.Combine(out, "model.safetensors") ]
            Expect.equal code 2 "a file of another model is a data error"
            Expect.stringContains err "tensor 'layers.1.rnn.weight_ih_l0' has shape [24, 8], the model's is [18, 8]" "names the tensor"
            Expect.isFalse (err.Contains "   at ") "no stack trace"
            let code, _, err = runCli [ "train"; "--model"; "Lstm(3).Dense(1)"; "--data"; "synthetic:counting"; "--init-weights"; Path.Combine(root, "absent.pt") ]
            Expect.equal code 2 "a missing file"
            Expect.stringContains err "--init-weights" "names the option"
            let code, _, err = runCli [ "export"; "--model-dir"; model; "--pytorch"; model ]
            Expect.equal code 2 "the model's own folder is never replaced"
            Expect.stringContains err "--pytorch" "names the option"
        }
    ]
