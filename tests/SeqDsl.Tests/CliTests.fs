/// The seqdsl command line driven as a process: output, exit codes, messages on stderr.
module SeqDsl.Tests.CliTests

open System.IO
open Expecto
open SeqDsl.Tests.Support

/// Runs seqdsl with the arguments; returns (exit code, stdout, stderr).
let runCli (args: string list) =
    let dll = Path.Combine(repoRoot, "src", "SeqDsl.Cli", "bin", configuration, "net10.0", "SeqDsl.Cli.dll")
    if not (File.Exists dll) then failtestf "CLI not built: %s" dll
    runDotnet (dll :: args) 120000

let private readJson (path: string) = System.Text.Json.JsonDocument.Parse(File.ReadAllText path).RootElement

[<Tests>]
let tests =
    testSequenced <| testList "Cli" [
        test "summary prints the seed-003 table under the Keras convention" {
            let code, out, err =
                runCli [ "summary"; "--model"; "Embed(32).SpatialDropout(0.4).SimpleRnn(32).Dropout(0.4).Dense(1, Sigmoid)"
                         "--vocab"; "8000"; "--convention"; "keras" ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.stringContains out "Total params: 258,113" "total"
            Expect.stringContains out "SimpleRnn(32)" "layer row"
        }

        test "summary shows the kernel and path each recurrent layer takes" {
            let code, out, err = runCli [ "summary"; "--model"; "Lstm(80).Gru(80).SimpleRnn(4, activation: Linear).Lstm(8).Dense(1)"; "--features"; "3" ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            let row (i: int) = out.Split('\n') |> Array.find (fun l -> l.TrimStart().StartsWith $"{i} ")
            Expect.stringContains (row 0) "fused (oneDNN in training if verified)" "LSTM: oneDNN in training"
            Expect.isFalse ((row 1).Contains "oneDNN") $"GRU on the native kernel: {row 1}"
            Expect.stringContains (row 1) "fused" "fused"
            Expect.stringContains (row 2) "simd" "linear SimpleRnn on the SIMD kernel"
            Expect.stringContains (row 3) "simd" "a small LSTM on the SIMD kernel"
        }

        test "check sweeps every path against the reference, prints the table and exits 0" {
            let code, out, err = runCli [ "check"; "--no-speed"; "--threads"; "1" ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            for path, cell in [ "native", "lstm"; "native", "gru"; "loop", "gru-reset-before"; "native", "rnn-relu"; "loop", "lstm"
                                "simd", "lstm"; "simd", "gru"; "simd", "gru-reset-before"; "simd", "rnn-tanh" ] do
                Expect.isTrue (out.Split('\n') |> Array.exists (fun l -> l.StartsWith path && l.Contains $" {cell} ")) $"{path} {cell} row"
            Expect.stringContains out "oneDNN RNN path: off" "backend described"
            Expect.stringContains out "Every path SeqDsl uses on this machine agrees with the reference." "verdict"
        }

        test "train --resume after kill -9 ends exactly where an uninterrupted run ends" {
            let root = Path.Combine(Path.GetTempPath(), "seqdsl-cli-resume-" + System.Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory root |> ignore
            let args out = [ "train"; "--model"; "Embed(8).Gru(8).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "5"
                             "--lr"; "0.01"; "--threads"; "1"; "--out"; out ]
            let straight = Path.Combine(root, "straight")
            let code, _, err = runCli (args straight)
            Expect.equal code 0 $"uninterrupted run (stderr: {err})"
            // the same run, killed (SIGKILL) once its state holds two epochs
            let out = Path.Combine(root, "killed")
            let dll = Path.Combine(repoRoot, "src", "SeqDsl.Cli", "bin", configuration, "net10.0", "SeqDsl.Cli.dll")
            let psi = System.Diagnostics.ProcessStartInfo("dotnet", UseShellExecute = false, WorkingDirectory = repoRoot,
                                                          RedirectStandardOutput = true, RedirectStandardError = true)
            for a in dll :: args out do psi.ArgumentList.Add a
            use p = System.Diagnostics.Process.Start psi
            p.StandardOutput.ReadToEndAsync() |> ignore
            p.StandardError.ReadToEndAsync() |> ignore
            let saved () =
                let state = out + ".state"
                Directory.Exists state
                && Directory.GetDirectories(state, "epoch-*") |> Array.exists (fun d -> int (Path.GetFileName(d).Substring 6) >= 2)
            let clock = System.Diagnostics.Stopwatch.StartNew()
            while not (saved ()) && not p.HasExited && clock.Elapsed.TotalSeconds < 90.0 do
                System.Threading.Thread.Sleep 20
            Expect.isFalse p.HasExited "killed while training"
            p.Kill()
            p.WaitForExit()
            Expect.isFalse (Directory.Exists out) "no model yet"
            // the same command without --resume does not silently throw the interrupted run away
            let code, _, err = runCli (args out)
            Expect.equal code 2 $"neither --resume nor --fresh: exit 2 (stderr: {err})"
            Expect.stringContains err "continue it with --resume, or start over with --fresh" "says what to do"
            // a resume with other options is refused, and keeps the state
            let code, _, err = runCli (args out @ [ "--resume"; "--batch-size"; "16" ])
            Expect.equal code 2 $"other options: exit 2 (stderr: {err})"
            Expect.stringContains err "belongs to another experiment (training.batchSize differs)" "says which option differs"
            let code, stdout, err = runCli (args out @ [ "--resume" ])
            Expect.equal code 0 $"resumed (stderr: {err})"
            Expect.stringContains stdout "resuming from the training state" "says it resumes"
            Expect.equal (File.ReadAllText(Path.Combine(out, "metrics.json"))) (File.ReadAllText(Path.Combine(straight, "metrics.json"))) "the same metrics"
            let losses dir = File.ReadAllLines(Path.Combine(dir, "history.csv")) |> Array.map (fun l -> l.Split(',') |> Array.removeAt 1)
            Expect.equal (losses out) (losses straight) "the same history (but for the seconds)"
            Expect.isFalse (Directory.Exists(out + ".state")) "the state goes once the model is saved"
            Directory.Delete(root, true)
        }

        test "out-of-range preprocessing options and absurd sizes exit 2 naming the option or layer, before any work" {
            for args, flag in [ [ "--chars"; "-2147483648" ], "--chars"; [ "--steps"; "0" ], "--steps"; [ "--window"; "0" ], "--window"
                                [ "--test-split"; "1.5" ], "--test-split"; [ "--maxlen"; "0" ], "--maxlen"
                                [ "--train-end"; "2020-01-01"; "--test-start"; "2019-01-01" ], "--test-start" ] do
                let code, out, err = runCli ([ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; "imdb:/nonexistent/aclImdb" ] @ args)
                Expect.equal code 2 $"{args}: exit code (stderr: {err})"
                Expect.stringContains err flag $"{args}: names the option"
                Expect.isFalse (err.Contains "nonexistent") $"{args}: checked before the data"
            // a training period with no rows: a data error, not "Sequence contains no elements"
            let code, _, err = runCli [ "train"; "--model"; "Lstm(4).Dense(1)"; "--data"; "synthetic:seasonal"; "--train-end"; "0001-01-01"; "--epochs"; "1" ]
            Expect.equal code 2 $"empty training period (stderr: {err})"
            Expect.stringContains err "training part of synthetic:seasonal holds 0 rows" "says why"
            // parameter counts in checked arithmetic, and a memory estimate before anything is allocated
            let code, out, err = runCli [ "summary"; "--model"; "Lstm(2000000000).Dense(1)"; "--features"; "3" ]
            Expect.equal code 2 $"overflowing summary (stderr: {err}, stdout: {out})"
            Expect.stringContains err "does not fit in 64 bits" "says why"
            let code, _, err = runCli [ "train"; "--model"; "Embed(2000000000).Lstm(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1" ]
            Expect.equal code 2 $"a model larger than the memory (stderr: {err})"
            Expect.stringContains err "GiB available here" "the estimate against the machine"
            Expect.isFalse (err.Contains "   at ") "no stack trace"
        }

        test "a model directory never makes evaluate read a file the user did not name; an empty label names its line" {
            let root = Path.Combine(Path.GetTempPath(), "seqdsl-cli-csv-" + System.Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory root |> ignore
            let data = Path.Combine(root, "reviews.csv")
            File.WriteAllLines(data, [| yield "text,label"; for i in 1 .. 40 -> if i % 2 = 0 then "a good film,1" else "a bad film,0" |])
            let out = Path.Combine(root, "model")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; $"csv:{data}"; "--epochs"; "1"; "--out"; out ]
            Expect.equal code 0 $"train on a CSV (stderr: {err})"
            let code, _, err = runCli [ "evaluate"; "--model-dir"; out ]
            Expect.equal code 2 $"no --data: exit 2 (stderr: {err})"
            Expect.stringContains err "evaluate reads data only from --data" "says why"
            let code, _, err = runCli [ "evaluate"; "--model-dir"; out; "--data"; $"csv:{data}" ]
            Expect.equal code 0 $"with --data (stderr: {err})"
            File.AppendAllText(data, "an unlabelled film,\n")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; $"csv:{data}"; "--epochs"; "1" ]
            Expect.equal code 2 $"empty label: exit 2 (stderr: {err})"
            Expect.stringContains err "reviews.csv, line 42, column 'label': the cell is empty" "names the line"
            let code, stdout, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; $"csv:{data}"; "--epochs"; "1"; "--skip-bad-rows" ]
            Expect.equal code 0 $"--skip-bad-rows (stderr: {err})"
            Expect.stringContains stdout "1 bad rows skipped" "counted in the data description"
            Directory.Delete(root, true)
        }

        test "a new user's mistakes are exit 2 with a message that says what to do" {
            let root = Path.Combine(Path.GetTempPath(), "seqdsl-cli-user-" + System.Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory root |> ignore
            let exp = Path.Combine(root, "e.json")
            File.WriteAllText(exp, "{ \"model\": \"Embed(4).Gru(4).Dense(1, Sigmoid)\", \"data\": \"synthetic:negation\", \"training\": { \"learningRat\": 0.1 } }")
            let code, _, err = runCli [ "train"; "--experiment"; exp ]
            Expect.equal code 2 $"typo in an experiment file (stderr: {err})"
            Expect.stringContains err "unknown member 'learningRat' (did you mean 'learningRate'?)" "suggests the member"
            File.WriteAllText(exp, "{ \"model\": \"Embed(4).Gru(4).Dense(1, Sigmoid)\", \"data\": \"synthetic:negation\", \"training\": { \"epochs\": \"ten\" } }")
            let code, _, err = runCli [ "train"; "--experiment"; exp ]
            Expect.equal code 2 $"wrong type (stderr: {err})"
            Expect.stringContains err "at $.training.epochs (line 1): this value has the wrong type: expected an integer" "in the file's terms"
            let file = Path.Combine(root, "notes.txt")
            File.WriteAllText(file, "x")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--out"; file ]
            Expect.equal code 2 $"--out names a file (stderr: {err})"
            Expect.stringContains err "is a file; give the path of a model directory" "before training"
            let code, out, err = runCli [ "train"; "--model"; "Gru(8, returnSequences: true).Dense(5)"; "--data"; "text:/nonexistent.txt"; "--sampling"; "consecutive"; "--checkpoint-batches"; "5" ]
            Expect.equal code 2 $"batch checkpoints with consecutive sampling (stderr: {err})"
            Expect.stringContains err "--checkpoint-batches" "names the option"
            Expect.isFalse (err.Contains "nonexistent") "before the data"
            let model = Path.Combine(root, "neg")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"; "--out"; model ]
            Expect.equal code 0 $"train (stderr: {err})"
            for other in [ "synthetic:counting"; "synthetic:seasonal" ] do
                let code, _, err = runCli [ "evaluate"; "--model-dir"; model; "--data"; other ]
                Expect.equal code 2 $"{other} for a sentiment model (stderr: {err})"
                Expect.stringContains err "This model was trained on synthetic:negation (text classification)" "says which data fits"
            Directory.Delete(root, true)
        }

        test "out-of-range training options exit 2 naming the option, before any data is read" {
            // the data path does not exist: a bound checked first is what the user hears about
            for args, flag in [ [ "--threads"; "0" ], "--threads"; [ "--threads"; "-1" ], "--threads"; [ "--threads"; "100000" ], "--threads"
                                [ "--lr"; "-1" ], "--lr"; [ "--validation-split"; "1.5" ], "--validation-split"; [ "--epochs"; "0" ], "--epochs"
                                [ "--batch-size"; "0" ], "--batch-size"; [ "--momentum"; "1" ], "--momentum"
                                [ "--weight-decay"; "0.1" ], "--weight-decay"; [ "--optimizer"; "adamw"; "--weight-decay"; "-1" ], "--weight-decay"
                                [ "--optimizer"; "adamw"; "--weight-decay"; "nan" ], "--weight-decay"
                                [ "--lr-step-epochs"; "0" ], "--lr-step-epochs"; [ "--lr-plateau-patience"; "0" ], "--lr-plateau-patience"
                                [ "--lr-step-epochs"; "2"; "--lr-plateau-patience"; "2" ], "--lr-plateau-patience"
                                [ "--lr-factor"; "0.5" ], "--lr-factor"; [ "--lr-step-epochs"; "2"; "--lr-factor"; "1" ], "--lr-factor"
                                [ "--lr-step-epochs"; "2"; "--lr-factor"; "0" ], "--lr-factor"; [ "--lr-step-epochs"; "2"; "--lr-min"; "0.001" ], "--lr-min"
                                [ "--lr-plateau-patience"; "2"; "--lr-min"; "-1" ], "--lr-min" ] do
                let code, out, err = runCli ([ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; "imdb:/nonexistent/aclImdb" ] @ args)
                Expect.equal code 2 $"{args}: exit code (stderr: {err})"
                Expect.stringContains err flag $"{args}: names the option"
                Expect.isFalse (err.Contains "   at ") $"{args}: no stack trace"
                Expect.isFalse (err.Contains "nonexistent") $"{args}: checked before the data"
                Expect.equal out "" $"{args}: nothing on stdout"
        }

        test "--device cuda without CUDA and predict on an empty file are exit 2 with one line, before any work" {
            let code, out, err = runCli [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; "imdb:/nonexistent"; "--device"; "cuda" ]
            if not (TorchSharp.torch.cuda.is_available ()) then
                Expect.equal code 2 $"exit code (stderr: {err})"
                Expect.stringContains err "training.device (--device): CUDA is not available here" "says so"
                Expect.equal out "" "nothing else ran"
            let d = tempFolder "cli-empty"
            let empty = Path.Combine(d, "empty.txt")
            File.WriteAllText(empty, "\n  \n")
            let dir = Path.Combine(d, "m")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"; "--out"; dir ]
            Expect.equal code 0 $"trained (stderr: {err})"
            let code, _, err = runCli [ "predict"; "--model-dir"; dir; "--file"; empty ]
            Expect.equal code 2 $"exit code (stderr: {err})"
            Expect.stringContains err "holds no inputs" "says why"
            Expect.isFalse (err.Contains "   at ") "no stack trace"
        }

        test "check rejects --threads 0 with exit 2" {
            let code, _, err = runCli [ "check"; "--threads"; "0" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "--threads" "names the option"
        }

        test "summary under the torch convention by default" {
            let code, out, _ = runCli [ "summary"; "--model"; "Lstm(4).Dense(1)"; "--features"; "3" ]
            Expect.equal code 0 "exit code"
            // 4·(4·3 + 4·4 + 2·4) + (4 + 1) = 144 + 5
            Expect.stringContains out "Total params: 149" "torch count"
        }

        test "a malformed model text exits 2 with the column on stderr" {
            let code, out, err = runCli [ "summary"; "--model"; "Embed(32).Lstm(64"; "--vocab"; "10" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "line 1, column 18" "position"
            Expect.stringContains err "^" "caret"
            Expect.equal out "" "nothing on stdout"
        }

        test "a spec error exits 2 and names the layer" {
            let code, _, err = runCli [ "summary"; "--model"; "Embed(8).Lstm(4)" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "layer 0 (Embed)" "layer"
            Expect.stringContains err "--vocab" "hint"
        }

        test "a usage error exits 2" {
            let code, _, err = runCli [ "summary"; "--vocab"; "ten" ]
            Expect.equal code 2 "exit code"
            Expect.isNotEmpty err "message on stderr"
        }

        test "--help exits 0 and documents the options" {
            let code, out, _ = runCli [ "summary"; "--help" ]
            Expect.equal code 0 "exit code"
            for opt in [ "--model"; "--vocab"; "--features"; "--seq-len"; "--convention"; "--json" ] do
                Expect.stringContains out opt opt
        }

        test "--json prints a JSON form that reads back" {
            let code, out, _ = runCli [ "summary"; "--model"; "Lstm(4).Dense(1)"; "--features"; "3"; "--json" ]
            Expect.equal code 0 "exit code"
            let json = out.Substring(out.IndexOf "{")
            Expect.equal (SeqDsl.Spec.ModelJson.FromJson json) (SeqDsl.Model.Lstm(4).Dense(1)) "round-trip"
        }
    
        test "train on synthetic:negation writes the model directory, history, metrics per split and a plot" {
            let out = Path.Combine(tempFolder "cli-train", "neg")
            let code, stdout, err =
                runCli [ "train"; "--model"; "Embed(8).Lstm(16, forgetBias: 1).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"
                         "--epochs"; "2"; "--lr"; "0.005"; "--out"; out ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.stringContains stdout "epoch 1/2:" "one line per epoch when redirected"
            Expect.stringContains stdout "test:" "test metrics"
            for f in [ "model.json"; "model.txt"; "weights.dat"; "history.csv"; "metrics.json"; "learning-curves.png"; "preprocessing.json"; "task.json" ] do
                Expect.isTrue (File.Exists(Path.Combine(out, f))) f
            let m = readJson (Path.Combine(out, "metrics.json"))
            for split in [ "train"; "validation"; "test" ] do
                let accuracy = m.GetProperty(split).GetProperty("accuracy").GetDouble()
                Expect.isTrue (accuracy >= 0.0 && accuracy <= 1.0) $"{split} accuracy {accuracy} in [0, 1]"
            Expect.equal (File.ReadAllLines(Path.Combine(out, "history.csv")).Length) 3 "header + 2 epochs"
            let training = (readJson (Path.Combine(out, "experiment.json"))).GetProperty("training")
            Expect.isTrue (training.GetProperty("bucketByLength").GetBoolean()) "length bucketing by default (--no-bucketing turns it off)"
            let png = File.ReadAllBytes(Path.Combine(out, "learning-curves.png"))
            Expect.equal png.[1..3] "PNG"B "a PNG file"

            let code, stdout, _ = runCli [ "evaluate"; "--model-dir"; out; "--json" ]
            Expect.equal code 0 "evaluate"
            Expect.isTrue ((System.Text.Json.JsonDocument.Parse stdout).RootElement.TryGetProperty("accuracy") |> fst) "accuracy in JSON"

            let code, stdout, _ = runCli [ "predict"; "--model-dir"; out; "--text"; "not good film"; "--text"; "indeed bad"; "--jsonl" ]
            Expect.equal code 0 "predict"
            let lines = stdout.Trim().Split('\n')
            Expect.equal lines.Length 2 "one JSON line per input"
            Expect.equal ((System.Text.Json.JsonDocument.Parse lines.[0]).RootElement.GetProperty("input").GetString()) "not good film" "input echoed"

            let code, _, err = runCli [ "generate"; "--model-dir"; out; "--prefix"; "a" ]
            Expect.equal code 2 "generate on a classifier"
            Expect.stringContains err "generation needs a language model" "message"

            let code, stdout, _ = runCli [ "summary"; "--model-dir"; out ]
            Expect.equal code 0 "summary of a model dir"
            Expect.stringContains stdout "Lstm(16, forgetBias: 1)" "layer"
        }

        test "a character language model trains, and generate continues a prefix" {
            let d = tempFolder "cli-lm"
            let corpus = Path.Combine(d, "abc.txt")
            File.WriteAllText(corpus, String.replicate 400 "abcd ")
            let out = Path.Combine(d, "lm")
            let code, stdout, err =
                runCli [ "train"; "--model"; "Gru(16, returnSequences: true).Dense(5)"; "--data"; $"text:{corpus}"; "--epochs"; "12"
                         "--lr"; "0.02"; "--clip-norm"; "1"; "--batch-size"; "8"; "--steps"; "10"; "--sampling"; "consecutive"; "--out"; out ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.stringContains stdout "perplexity" "perplexity reported"
            let code, stdout, _ = runCli [ "generate"; "--model-dir"; out; "--prefix"; "ab"; "--length"; "8"; "--threads"; "1" ]
            Expect.equal code 0 "generate"
            Expect.equal (stdout.Trim()) "abcd abcd" "greedy continuation"
            let code, stdout, _ = runCli [ "generate"; "--model-dir"; out; "--prefix"; "ab"; "--length"; "8"; "--temperature"; "0.5"; "--top-k"; "2"; "--seed"; "3" ]
            Expect.equal code 0 "sampled"
            Expect.stringStarts (stdout.Trim()) "ab" "prefix kept"
            let code, _, err = runCli [ "train"; "--model"; "Gru(16, returnSequences: true).Dense(7)"; "--data"; $"text:{corpus}"; "--epochs"; "1" ]
            Expect.equal code 2 "wrong head"
            Expect.stringContains err "Expected: Dense(5)" "says the vocabulary size"
        }

        test "an experiment file with command-line overrides; a bad member is reported with its JSON path" {
            let d = tempFolder "cli-exp"
            let exp = Path.Combine(d, "e.json")
            File.WriteAllText(exp, """{ "model": "Lstm(4).Dense(1)", "data": "synthetic:counting", "training": { "epochs": 5, "batchSize": 256 } }""")
            let out = Path.Combine(d, "out")
            let code, _, err = runCli [ "train"; "--experiment"; exp; "--epochs"; "1"; "--no-bucketing"; "--out"; out ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.equal (File.ReadAllLines(Path.Combine(out, "history.csv")).Length) 2 "--epochs 1 overrode the file's 5"
            let training = (readJson (Path.Combine(out, "experiment.json"))).GetProperty("training")
            Expect.isFalse (training.GetProperty("bucketByLength").GetBoolean()) "--no-bucketing recorded with the model"
            File.WriteAllText(exp, """{ "model": "Lstm(4).Dense(1)", "data": "synthetic:counting", "training": { "epoch": 5 } }""")
            let code, _, err = runCli [ "train"; "--experiment"; exp ]
            Expect.equal code 2 "bad member"
            Expect.stringContains err "$.training.epoch" "JSON path"
        }

        test "null sections and values in an experiment file are exit 2 naming their JSON path" {
            let d = tempFolder "cli-exp-null"
            let exp = Path.Combine(d, "e.json")
            for body, path in [ """ "preprocessing": null """, "$.preprocessing"; """ "training": null """, "$.training"
                                """ "training": { "optimizer": null } """, "$.training.optimizer"; """ "training": { "device": null } """, "$.training.device" ] do
                File.WriteAllText(exp, $$"""{ "model": "Lstm(4).Dense(1)", "data": "synthetic:counting", {{body}} }""")
                let code, out, err = runCli [ "train"; "--experiment"; exp ]
                Expect.equal code 2 $"{path}: exit code (stderr: {err})"
                Expect.stringContains err path $"{path}: JSON path"
                Expect.isFalse (err.Contains "NullReference" || err.Contains "   at ") $"{path}: no stack trace"
                Expect.equal out "" $"{path}: nothing on stdout"
        }

        test "a bad CSV row is exit 2 naming the line and column" {
            let d = tempFolder "cli-csv"
            let csv = Path.Combine(d, "reviews.csv")
            File.WriteAllText(csv, "text,label\ngood film,1\nbad film,oops\n")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; $"csv:{csv}"; "--epochs"; "1" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "line 3, column 'label': 'oops' is not an integer" "row and column"
        }

        test "a non-finite loss stops training with exit 1 and the message on stderr" {
            let code, _, err =
                runCli [ "train"; "--model"; "SimpleRnn(1, activation: Linear, bias: None)"; "--data"; "synthetic:counting"
                         "--optimizer"; "sgd"; "--lr"; "50"; "--epochs"; "3" ]
            Expect.equal code 1 "exit code"
            Expect.stringContains err "training stopped: the loss became" "message"
        }

        test "a series: train on a CSV, then forecast its windows" {
            let d = tempFolder "cli-series"
            let csv = Path.Combine(d, "s.csv")
            let rows = [ for t in 0 .. 199 -> sprintf "%s,%g" (System.DateTime(2021, 1, 1).AddDays(float t).ToString("yyyy-MM-dd")) (10.0 + sin (float t / 3.0)) ]
            File.WriteAllLines(csv, "Date,value" :: rows)
            let out = Path.Combine(d, "m")
            let code, stdout, err = runCli [ "train"; "--model"; "Lstm(8).Dense(1)"; "--data"; $"series:{csv}"; "--window"; "6"; "--epochs"; "2"; "--out"; out ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.stringContains stdout "r2" "R² reported"
            let code, stdout, _ = runCli [ "predict"; "--model-dir"; out; "--file"; csv ]
            Expect.equal code 0 "predict"
            Expect.stringContains stdout "2021-01-08" "a window ending on its date (first value is lagged away, then 6 rows)"
        }

        test "--threads on evaluate, predict, generate and export, as train takes it; out of range is exit 2 before the model is read" {
            let d = tempFolder "cli-threads"
            let model = Path.Combine(d, "neg")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"; "--threads"; "1"; "--out"; model ]
            Expect.equal code 0 $"train (stderr: {err})"
            for args in [ [ "evaluate"; "--model-dir"; model ]; [ "predict"; "--model-dir"; model; "--text"; "not bad" ]
                          [ "export"; "--model-dir"; model; "--onnx"; Path.Combine(d, "m.onnx") ] ] do
                let code, _, err = runCli (args @ [ "--threads"; "1" ])
                Expect.equal code 0 $"{args.Head} --threads 1 (stderr: {err})"
            for cmd in [ "evaluate"; "predict"; "generate"; "export" ] do
                for n in [ "0"; "-3"; "2000" ] do
                    let extra = if cmd = "generate" then [ "--prefix"; "a" ] else []
                    let code, out, err = runCli ([ cmd; "--model-dir"; "/nonexistent/model"; "--threads"; n ] @ extra)
                    Expect.equal code 2 $"{cmd} --threads {n} (stderr: {err})"
                    Expect.stringContains err "--threads must be between 1 and 1024" $"{cmd} --threads {n}: names the option and its bounds"
                    Expect.isFalse (err.Contains "nonexistent") $"{cmd}: checked before the model is read"
                    Expect.equal out "" $"{cmd}: nothing on stdout"
        }

        test "a series from a CSV learns its target scaled; predictions and metrics come back in the target's units" {
            let d = tempFolder "cli-series-scaled"
            let csv = Path.Combine(d, "prices.csv")
            let close t = 5000.0 + 1000.0 * sin (float t / 4.0) + 3.0 * float t
            let day t = System.DateTime(2020, 1, 1).AddDays(float t).ToString("yyyy-MM-dd")
            let inv (v: float) = v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)
            File.WriteAllLines(csv, [| yield "Date,Open,Close"; for t in 0 .. 299 -> $"{day t},{inv (close t - 5.0 * cos (float t))},{inv (close t)}" |])
            let train out extra =
                runCli ([ "train"; "--model"; "Lstm(16).Dense(1)"; "--data"; $"csv:{csv}"; "--feature-columns"; "Open,Close"; "--target-column"; "Close"
                          "--epochs"; "15"; "--lr"; "0.01"; "--threads"; "1"; "--out"; out ] @ extra)
            let out = Path.Combine(d, "scaled")
            let code, stdout, err = train out []
            Expect.equal code 0 $"train (stderr: {err})"
            Expect.stringContains stdout "target scaled (mean" "the description says so"
            let target = (readJson (Path.Combine(out, "task.json"))).GetProperty("targetScaler")
            let mean, std = target.GetProperty("mean").[0].GetDouble(), target.GetProperty("std").[0].GetDouble()
            Expect.isTrue (mean > 4000.0 && mean < 7000.0 && std > 300.0) $"fitted on the prices (mean {mean}, std {std})"
            let test = (readJson (Path.Combine(out, "metrics.json"))).GetProperty("test")
            let r2, mae = test.GetProperty("r2").GetDouble(), test.GetProperty("mae").GetDouble()
            // measured 0.986 (the target unscaled: −62)
            Expect.isGreaterThan r2 0.9 "test R²"
            // the forecasts of the test windows (the last windows but the one ending at the last row) give the reported MAE
            let windows = int (System.Text.RegularExpressions.Regex.Match(stdout, "([0-9]+) test windows").Groups.[1].Value)
            let code, predicted, err = runCli [ "predict"; "--model-dir"; out; "--file"; csv; "--jsonl"; "--threads"; "1" ]
            Expect.equal code 0 $"predict (stderr: {err})"
            let rows = predicted.Trim().Split('\n') |> Array.map (fun l -> System.Text.Json.JsonDocument.Parse(l).RootElement)
            let tested = rows.[rows.Length - 1 - windows .. rows.Length - 2]
            let actual = dict [ for t in 0 .. 299 -> day t, close t ]
            let errors = tested |> Array.map (fun r -> abs (r.GetProperty("value").GetDouble() - actual.[r.GetProperty("input").GetString()]))
            Expect.floatClose Accuracy.medium (Array.average errors) mae "the MAE of the forecasts in the target's units is the reported one"
            let code, evaluated, err = runCli [ "evaluate"; "--model-dir"; out; "--data"; $"csv:{csv}"; "--json"; "--threads"; "1" ]
            Expect.equal code 0 $"evaluate (stderr: {err})"
            Expect.floatClose Accuracy.high ((System.Text.Json.JsonDocument.Parse evaluated).RootElement.GetProperty("mae").GetDouble()) mae "evaluate reports it too"
            // --no-target-scaling: the target as it is, nothing to scale back
            let raw = Path.Combine(d, "raw")
            let code, stdout, err = train raw [ "--no-target-scaling"; "--epochs"; "1" ]
            Expect.equal code 0 $"--no-target-scaling (stderr: {err})"
            Expect.stringContains stdout "target not scaled" "said"
            Expect.isFalse ((readJson (Path.Combine(raw, "task.json"))).TryGetProperty("targetScaler") |> fst) "no target scaler saved"
            Expect.isFalse ((readJson (Path.Combine(raw, "experiment.json"))).GetProperty("preprocessing").GetProperty("scaleTarget").GetBoolean()) "recorded"
        }

        test "a CSV with named labels: predict prints the class name, --jsonl keeps the index; integer labels print indices" {
            let d = tempFolder "cli-names"
            let named = Path.Combine(d, "named.csv")
            File.WriteAllLines(named, [| yield "text,label"; for i in 1 .. 60 -> if i % 2 = 0 then "a good film,positive" else "a bad film,negative" |])
            let model = Path.Combine(d, "named")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; $"csv:{named}"; "--epochs"; "30"; "--lr"; "0.05"; "--threads"; "1"; "--out"; model ]
            Expect.equal code 0 $"train (stderr: {err})"
            let names = (readJson (Path.Combine(model, "task.json"))).GetProperty("classNames")
            Expect.equal [ for n in names.EnumerateArray() -> n.GetString() ] [ "negative"; "positive" ] "saved with the model"
            let code, stdout, err = runCli [ "predict"; "--model-dir"; model; "--text"; "a good film"; "--text"; "a bad film" ]
            Expect.equal code 0 $"predict (stderr: {err})"
            let lines = stdout.Trim().Split('\n')
            Expect.stringStarts lines.[0] "label positive  " "the name of the class of a good film"
            Expect.stringStarts lines.[1] "label negative  " "and of a bad film"
            let code, stdout, _ = runCli [ "predict"; "--model-dir"; model; "--text"; "a good film"; "--jsonl" ]
            Expect.equal code 0 "jsonl"
            let o = (System.Text.Json.JsonDocument.Parse(stdout.Trim())).RootElement
            Expect.equal (o.GetProperty("label").GetInt32()) 1 "the index"
            Expect.equal (o.GetProperty("class").GetString()) "positive" "and the name"
            // a label the model does not know is exit 2 naming it
            let other = Path.Combine(d, "other.csv")
            File.WriteAllLines(other, [| "text,label"; "a good film,positive"; "a fine film,great" |])
            let code, _, err = runCli [ "evaluate"; "--model-dir"; model; "--data"; $"csv:{other}" ]
            Expect.equal code 2 $"unknown label (stderr: {err})"
            Expect.stringContains err "Label 'great' in column 'label'" "names it"
            // integer labels: no names; the index is printed as before
            let ints = Path.Combine(d, "ints.csv")
            File.WriteAllLines(ints, [| yield "text,label"; for i in 1 .. 60 -> if i % 2 = 0 then "a good film,1" else "a bad film,0" |])
            let indexed = Path.Combine(d, "ints")
            let code, _, err = runCli [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; $"csv:{ints}"; "--epochs"; "30"; "--lr"; "0.05"; "--threads"; "1"; "--out"; indexed ]
            Expect.equal code 0 $"train on integer labels (stderr: {err})"
            Expect.isFalse ((readJson (Path.Combine(indexed, "task.json"))).TryGetProperty("classNames") |> fst) "no names saved"
            let code, stdout, _ = runCli [ "predict"; "--model-dir"; indexed; "--text"; "a good film" ]
            Expect.equal code 0 "predict"
            Expect.stringStarts (stdout.Trim()) "label 1  " "the index"
            let code, stdout, _ = runCli [ "predict"; "--model-dir"; indexed; "--text"; "a good film"; "--jsonl" ]
            Expect.equal code 0 "jsonl"
            Expect.isFalse ((System.Text.Json.JsonDocument.Parse(stdout.Trim())).RootElement.TryGetProperty("class") |> fst) "no class member"
        }

        test "AdamW, a learning-rate schedule and keep-best from the command line and from an experiment file" {
            let d = tempFolder "cli-schedule"
            let out = Path.Combine(d, "step")
            let code, _, err =
                runCli [ "train"; "--model"; "Lstm(4).Dense(1)"; "--data"; "synthetic:seasonal"; "--epochs"; "3"; "--lr"; "0.02"; "--optimizer"; "adamw"
                         "--weight-decay"; "0.05"; "--lr-step-epochs"; "1"; "--lr-factor"; "0.5"; "--threads"; "1"; "--out"; out ]
            Expect.equal code 0 $"train (stderr: {err})"
            let lr = File.ReadAllLines(Path.Combine(out, "history.csv")) |> Array.tail |> Array.map (fun l -> float (l.Split(',').[2]))
            Expect.equal lr [| 0.02; 0.01; 0.005 |] "the rate halves every epoch"
            let training = (readJson (Path.Combine(out, "experiment.json"))).GetProperty("training")
            Expect.equal (training.GetProperty("optimizer").GetString()) "adamw" "recorded: optimizer"
            Expect.equal (training.GetProperty("weightDecay").GetDouble()) 0.05 "recorded: weight decay"
            Expect.equal (training.GetProperty("lrStepEpochs").GetInt32()) 1 "recorded: schedule"
            // the same from a file; a plateau schedule without validation rows watches the training loss; keep-best
            let exp = Path.Combine(d, "e.json")
            File.WriteAllText(exp, """{ "model": "Lstm(4).Dense(1)", "data": "synthetic:seasonal",
                                        "training": { "epochs": 4, "learningRate": 0.5, "validationSplit": 0, "optimizer": "adamw", "weightDecay": 0.01,
                                                      "lrPlateauPatience": 1, "lrFactor": 0.5, "lrMin": 0.1, "keepBest": true, "threads": 1 } }""")
            let out2 = Path.Combine(d, "plateau")
            let code, stdout, err = runCli [ "train"; "--experiment"; exp; "--out"; out2 ]
            Expect.equal code 0 $"train from the file (stderr: {err})"
            let history = File.ReadAllLines(Path.Combine(out2, "history.csv")) |> Array.tail |> Array.map (fun l -> l.Split(','))
            let losses = history |> Array.map (fun r -> float r.[3])
            let rates = history |> Array.map (fun r -> float r.[2])
            // after each epoch whose loss is no new best the rate halves, not below 0.1
            for e in 1 .. rates.Length - 1 do
                let improved = e = 1 || losses.[e - 1] < Array.min losses.[0 .. e - 2]
                let expected = if improved then rates.[e - 1] else max 0.1 (rates.[e - 1] * 0.5)
                Expect.floatClose Accuracy.high rates.[e] expected $"rate of epoch {e + 1}"
            let best = (Array.findIndex ((=) (Array.min losses)) losses) + 1
            Expect.stringContains stdout $"kept the weights of epoch {best}, the best one" "keep-best says which epoch"
            // early stopping without validation rows watches the training loss too (it used to fail after epoch 1)
            let code, _, err = runCli [ "train"; "--model"; "Lstm(4).Dense(1)"; "--data"; "synthetic:seasonal"; "--validation-split"; "0"; "--early-stopping"; "1"; "--epochs"; "2"; "--threads"; "1" ]
            Expect.equal code 0 $"--early-stopping with --validation-split 0 (stderr: {err})"
            // a bad value in the file names its JSON path and the flag
            File.WriteAllText(exp, """{ "model": "Lstm(4).Dense(1)", "data": "synthetic:seasonal", "training": { "lrStepEpochs": 2, "lrFactor": 2 } }""")
            let code, out, err = runCli [ "train"; "--experiment"; exp ]
            Expect.equal code 2 $"lrFactor 2 (stderr: {err})"
            Expect.stringContains err "training.lrFactor (--lr-factor)" "JSON path and flag"
            Expect.equal out "" "before anything ran"
        }

        test "an empty corpus and bad decoding options say what to do, exit 2" {
            let d = tempFolder "cli-empty-corpus"
            let empty = Path.Combine(d, "empty.txt")
            File.WriteAllText(empty, "")
            let code, _, err = runCli [ "train"; "--model"; "Gru(8, returnSequences: true).Dense(5)"; "--data"; $"text:{empty}"; "--epochs"; "1" ]
            Expect.equal code 2 $"empty corpus (stderr: {err})"
            Expect.stringContains err "holds no text" "says what is wrong"
            Expect.stringContains err "give a file with text in it" "and what to do"
            Expect.isFalse (err.Contains "Dense(0)") "not a layer size"
            for args, says in [ [ "--top-p"; "1.5" ], "--top-p must be above 0 and at most 1 (got 1.5)"; [ "--top-p"; "0" ], "--top-p must be above 0"
                                [ "--top-k"; "0" ], "--top-k must be at least 1"; [ "--temperature"; "0" ], "--temperature must be a number above 0"
                                [ "--temperature"; "-1" ], "--temperature"; [ "--length"; "-1" ], "--length is the number of characters" ] do
                let code, out, err = runCli ([ "generate"; "--model-dir"; "/nonexistent/lm"; "--prefix"; "a" ] @ args)
                Expect.equal code 2 $"{args} (stderr: {err})"
                Expect.stringContains err says $"{args}: names the option"
                Expect.isFalse (err.Contains "nonexistent") $"{args}: before the model is read"
                Expect.equal out "" $"{args}: nothing on stdout"
        }

        test "every subcommand's --help exits 0" {
            for cmd in [ "train"; "evaluate"; "predict"; "generate"; "summary" ] do
                let code, out, _ = runCli [ cmd; "--help" ]
                Expect.equal code 0 cmd
                Expect.stringContains out "USAGE" cmd
        }

        test "--out never replaces a folder of other files; an unusable --out is exit 2 naming it, before training" {
            let root = tempFolder "cli-out"
            let args out = [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--epochs"; "1"; "--out"; out ]
            // a folder of the user's files: refused, nothing touched, no training
            let docs = Path.Combine(root, "docs")
            Directory.CreateDirectory(Path.Combine(docs, "sub")) |> ignore
            File.WriteAllText(Path.Combine(docs, "thesis.txt"), "precious")
            let code, out, err = runCli (args docs)
            Expect.equal code 2 $"a folder of other files (stderr: {err})"
            Expect.stringContains err "--out" "names the option"
            Expect.stringContains err "is not a SeqDsl model directory" "says why"
            Expect.stringContains err "sub, thesis.txt" "names what it holds"
            Expect.isFalse (out.Contains "epoch 1/1") "before training"
            Expect.equal (File.ReadAllText(Path.Combine(docs, "thesis.txt"))) "precious" "the file is untouched"
            Expect.isTrue (Directory.Exists(Path.Combine(docs, "sub"))) "the subfolder is untouched"
            // a model directory is replaced; what else it holds (an export, the user's notes, a file browser's file) is kept
            let model = Path.Combine(root, "model")
            let code, _, err = runCli (args model)
            Expect.equal code 0 $"first save (stderr: {err})"
            Expect.isTrue (File.Exists(Path.Combine(model, "learning-curves.png"))) "the plot"
            let code, _, err = runCli [ "export"; "--model-dir"; model ]
            Expect.equal code 0 $"export into the model directory, the default (stderr: {err})"
            File.WriteAllText(Path.Combine(model, "notes.txt"), "mine")
            Directory.CreateDirectory(Path.Combine(model, "plots")) |> ignore
            File.WriteAllText(Path.Combine(model, "plots", "a.txt"), "kept too")
            let weights () = File.ReadAllBytes(Path.Combine(model, "weights.dat"))
            let before = weights ()
            let code, _, err = runCli (args model @ [ "--seed"; "1" ])
            Expect.equal code 0 $"retrained into the model directory (stderr: {err})"
            Expect.notEqual (weights ()) before "the model was replaced"
            Expect.equal (File.ReadAllText(Path.Combine(model, "notes.txt"))) "mine" "the notes kept"
            Expect.equal (File.ReadAllText(Path.Combine(model, "plots", "a.txt"))) "kept too" "a folder kept"
            Expect.isTrue (File.Exists(Path.Combine(model, "model.onnx"))) "the export kept"
            let code, _, err = runCli [ "evaluate"; "--model-dir"; model ]
            Expect.equal code 0 $"the new model loads, its manifest intact (stderr: {err})"
            // a folder holding only a file browser's file is as good as empty
            let browsed = Path.Combine(root, "browsed")
            Directory.CreateDirectory browsed |> ignore
            File.WriteAllText(Path.Combine(browsed, ".DS_Store"), "x")
            let code, _, err = runCli (args browsed)
            Expect.equal code 0 $"a folder with .DS_Store alone (stderr: {err})"
            // an empty path, the root, the working folder, a place that cannot be written: exit 2 naming --out, before training
            for bad, says in [ "", "--out is empty"; "/", "is the file system's root"; ".", "--out . is the working folder or holds it"
                               "/proc/seqdsl-out-test", "cannot create a folder in /proc" ] do
                let code, out, err = runCli (args bad)
                Expect.equal code 2 $"--out '{bad}' (stderr: {err})"
                Expect.stringContains err says $"--out '{bad}': the reason"
                Expect.isFalse (err.Contains "unexpected error") "not an unexpected error"
                Expect.isFalse (out.Contains "epoch 1/1") $"--out '{bad}': before training"
            Directory.Delete(root, true)
        }

        test "a mistyped option or subcommand is one line on stderr, exit 2, with the nearest name and where the options are" {
            for args, says in [ [ "train"; "--modle"; "x" ], "unrecognized argument: '--modle' (did you mean --model?); seqdsl train --help lists the options."
                                [ "trian" ], "unrecognized argument: 'trian' (did you mean train?); seqdsl --help lists the options."
                                [ "evaluate"; "--mdoel-dir"; "x" ], "(did you mean --model-dir?); seqdsl evaluate --help"
                                [ "train"; "--epochs" ], "argument '--epochs' must be followed by <int>; seqdsl train --help lists the options."
                                [ "train"; "--optimizer"; "adamm" ], "but was 'adamm'; seqdsl train --help"
                                [ "train"; "--xyzzy" ], "unrecognized argument: '--xyzzy'; seqdsl train --help" ] do
                let code, _, err = runCli args
                Expect.equal code 2 $"{args}: exit code"
                Expect.equal (err.Trim().Split('\n').Length) 1 $"{args}: one line (stderr: {err})"
                Expect.stringStarts err "seqdsl: " $"{args}: the tool's prefix"
                Expect.stringContains err says $"{args}: the reason and the hint"
            let code, _, err = runCli [ "train"; "--xyzzy" ]
            Expect.isFalse (err.Contains "did you mean") $"nothing near --xyzzy: no suggestion (stderr: {err})"
            // evaluate's help mentions train's --out: an option evaluate does not have is never suggested
            let code, _, err = runCli [ "evaluate"; "--ou"; "x" ]
            Expect.isFalse (err.Contains "--out?") $"evaluate has no --out (stderr: {err})"
        }

        test "forecasting from a CSV: an empty cell is exit 2 naming its line and column, unless it is a last row's target" {
            let d = tempFolder "cli-series-empty"
            let csv = Path.Combine(d, "s.csv")
            let day t = System.DateTime(2021, 1, 1).AddDays(float t).ToString("yyyy-MM-dd")
            let rows = [ for t in 0 .. 119 -> sprintf "%s,%g" (day t) (10.0 + sin (float t / 3.0)) ]
            File.WriteAllLines(csv, "Date,value" :: rows)
            let out = Path.Combine(d, "m")
            let code, _, err = runCli [ "train"; "--model"; "Lstm(4).Dense(1)"; "--data"; $"series:{csv}"; "--epochs"; "1"; "--out"; out ]
            Expect.equal code 0 $"train (stderr: {err})"
            let last = rows |> List.skip 110
            let write name (lines: string list) =
                let p = Path.Combine(d, name)
                File.WriteAllLines(p, "Date,value" :: lines)
                p
            let code, whole, err = runCli [ "predict"; "--model-dir"; out; "--file"; write "last.csv" last ]
            Expect.equal code 0 $"the last rows (stderr: {err})"
            // an empty target inside the file (line 5): refused, not a window across the gap
            let gap = last |> List.mapi (fun i r -> if i = 3 then day (110 + i) + "," else r)
            let code, _, err = runCli [ "predict"; "--model-dir"; out; "--file"; write "gap.csv" gap ]
            Expect.equal code 2 $"an empty cell inside (stderr: {err})"
            Expect.stringContains err "gap.csv, line 5, column 'value': the cell is empty" "names the line and column"
            // a last row with the date to forecast and no value yet: one more forecast, the others unchanged
            let code, more, err = runCli [ "predict"; "--model-dir"; out; "--file"; write "future.csv" (last @ [ day 120 + "," ]) ]
            Expect.equal code 0 $"a day to forecast (stderr: {err})"
            let lines (s: string) = s.Trim().Split('\n') |> Array.map (fun l -> l.Trim())
            Expect.equal (lines more).[.. (lines whole).Length - 1] (lines whole) "the known days' forecasts are unchanged"
            Expect.equal (lines more).Length ((lines whole).Length + 1) "one more forecast"
            Expect.stringContains (Array.last (lines more)) (day 120) "for the day asked"
        }

        test "an experiment file's bad model, a folder where a file goes, a file where a model directory goes, Embed on numbers, checkpoints without --out, an endless --length, an empty export path: exit 2 saying so" {
            let d = tempFolder "cli-kinds"
            let folder = Path.Combine(d, "adir")
            Directory.CreateDirectory folder |> ignore
            let badModel = Path.Combine(d, "bad.json")
            File.WriteAllText(badModel, "{ \"model\": \"Embed(4).Lstm(\", \"data\": \"synthetic:negation\" }")
            for args, says in [ [ "train"; "--experiment"; badModel ], "bad.json, $.model, in the model text at line 1, column 15: Bad value for Lstm argument 'units'"
                                [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1, Sigmoid)"; "--data"; $"csv:{folder}" ], $"CSV file {folder} is a folder, not a file"
                                [ "train"; "--experiment"; folder ], $"Experiment file {folder} is a folder, not a file"
                                [ "evaluate"; "--model-dir"; Path.Combine(repoRoot, "README.md") ], "README.md is a file, not a model directory"
                                [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1)"; "--data"; "synthetic:counting" ], "layer 0 (Embed): synthetic:counting is binary sequences (one feature a step), not text"
                                [ "train"; "--model"; "Embed(4).Lstm(4).Dense(1)"; "--data"; "synthetic:seasonal" ], "synthetic:seasonal is a series of numbers, not text: a model for it cannot start with Embed"
                                [ "train"; "--model"; "Embed(4).Gru(4).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"; "--checkpoint-batches"; "5" ], "--checkpoint-batches saves the state to resume from beside --out DIR (in DIR.state): give --out."
                                [ "generate"; "--model-dir"; folder; "--prefix"; "a"; "--length"; "100001" ], "--length is at most 100000 characters (got 100001)"
                                [ "export"; "--model-dir"; folder; "--onnx"; "" ], "--onnx is empty; give the file to write"
                                [ "export"; "--model-dir"; folder; "--pytorch"; "" ], "--pytorch is empty; give a folder" ] do
                let code, _, err = runCli args
                Expect.equal code 2 $"{args}: exit code (stderr: {err})"
                Expect.stringContains err says $"{args}: the message"
            // a CSV with --target-column (no --feature-columns) is a series: the target lagged one day
            let csv = Path.Combine(d, "s.csv")
            File.WriteAllLines(csv, "Date,Close" :: [ for t in 0 .. 59 -> sprintf "%s,%g" (System.DateTime(2021, 1, 1).AddDays(float t).ToString("yyyy-MM-dd")) (10.0 + sin (float t / 3.0)) ])
            let code, out, err = runCli [ "train"; "--model"; "Lstm(4).Dense(1)"; "--data"; $"csv:{csv}"; "--target-column"; "Close"; "--epochs"; "1" ]
            Expect.equal code 0 $"csv with --target-column (stderr: {err})"
            Expect.stringContains out "r2" "trained as a series"
        }

        test "unknown subcommand and unknown data source exit 2" {
            let code, _, _ = runCli [ "fly" ]
            Expect.equal code 2 "unknown subcommand"
            let code, _, err = runCli [ "train"; "--model"; "Lstm(2)"; "--data"; "ftp:x" ]
            Expect.equal code 2 "unknown source"
            Expect.stringContains err "imdb:PATH, csv:PATH" "lists the kinds"
        }
    ]
