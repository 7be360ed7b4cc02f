/// Saving and loading model directories.
module SeqDsl.Tests.ModelStoreTests

open System
open System.IO
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Training
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

let private tempDir () = Path.Combine(Path.GetTempPath(), "seqdsl-store-" + Guid.NewGuid().ToString("N"))

[<Tests>]
let tests =
    testList "ModelStore" [
        test "a saved model predicts exactly as before, with its spec and extra files" {
            let dir = tempDir ()
            use net = compile (Model.Embed(6, padding = 0).Gru(5).Bidirectional().Dense(2, Activation.Softmax)) (InputSpec(Vocab = 20)) Convention.Keras 4L
            ModelStore.Save(net, dir, readOnlyDict [ "vocab.txt", "a\nb\n" ])
            use loaded = ModelStore.Load dir
            use x = torch.randint(1L, 20L, [| 4L; 9L |], dtype = torch.ScalarType.Int64)
            use a = Trainer.Predict(net, x)
            use b = Trainer.Predict(loaded, x)
            Expect.equal (values b) (values a) "identical predictions"
            Expect.equal loaded.Spec net.Spec "spec"
            Expect.equal loaded.Options.Convention Convention.Keras "convention"
            Expect.equal (ModelStore.ReadExtra(dir, "vocab.txt")) "a\nb\n" "extra file"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "model.txt")).Trim()) (string net.Spec) "model.txt"
            Directory.Delete(dir, true)
        }

        test "saving over an existing model replaces it and leaves no temporary folders" {
            let root = tempDir ()
            let dir = Path.Combine(root, "m")
            use a = compile (Model.Lstm(3).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            use b = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(a, dir)
            ModelStore.Save(b, dir)
            if OperatingSystem.IsLinux() then Expect.isTrue ModelStore.LastSaveExchanged "on Linux the two directories were exchanged in one rename"
            use loaded = ModelStore.Load dir
            Expect.equal loaded.Spec b.Spec "replaced"
            Expect.equal (Directory.GetDirectories root |> Array.map Path.GetFileName) [| "m" |] "no leftovers"
            Directory.Delete(root, true)
        }

        test "saving never replaces a folder of other files; a model directory's other files are kept" {
            let root = tempDir ()
            use net = compile (Model.Lstm(3).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            use other = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            let docs = Path.Combine(root, "docs")
            Directory.CreateDirectory docs |> ignore
            File.WriteAllText(Path.Combine(docs, "thesis.txt"), "precious")
            let e = expectSeqDslError "a folder of other files" (fun () -> ModelStore.Save(net, docs))
            Expect.equal e.Kind ErrorKind.Spec "a usage error (exit 2)"
            Expect.stringContains e.Message "is not empty and is not a SeqDsl model directory (it holds thesis.txt)" "says why"
            Expect.equal (Directory.GetFileSystemEntries docs |> Array.map Path.GetFileName) [| "thesis.txt" |] "untouched"
            Expect.equal (Directory.GetDirectories root |> Array.map Path.GetFileName) [| "docs" |] "no temporary folder"
            // a model directory: the model replaced, the other files and folders copied into the new one
            let dir = Path.Combine(root, "m")
            ModelStore.Save(net, dir)
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine")
            Directory.CreateDirectory(Path.Combine(dir, "sub")) |> ignore
            File.WriteAllText(Path.Combine(dir, "sub", "x.txt"), "x")
            ModelStore.Save(other, dir)
            use loaded = ModelStore.Load dir
            Expect.equal loaded.Spec other.Spec "the model replaced"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "notes.txt"))) "mine" "a file kept"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "sub", "x.txt"))) "x" "a folder kept"
            Expect.isFalse ((ModelStore.SavedFiles dir).Contains "notes.txt") "not in the manifest"
            // a PyTorch export's folder has a manifest but no model: not a model directory
            let export = Path.Combine(root, "export")
            SeqDsl.Export.TorchExport.Save(net, export) |> ignore
            let e = expectSeqDslError "an export folder" (fun () -> ModelStore.Save(net, export))
            Expect.stringContains e.Message "is not a SeqDsl model directory" "refused"
            // an empty folder takes the model; a file is refused
            let empty = Path.Combine(root, "empty")
            Directory.CreateDirectory empty |> ignore
            ModelStore.Save(net, empty)
            use back = ModelStore.Load empty
            Expect.equal back.Spec net.Spec "an empty folder takes the model"
            let file = Path.Combine(root, "f.txt")
            File.WriteAllText(file, "x")
            let e = expectSeqDslError "a file" (fun () -> ModelStore.Save(net, file))
            Expect.stringContains e.Message "is a file" "a file is not a model directory"
            Directory.Delete(root, true)
        }

        test "a truncated weights file is a clear error" {
            let dir = tempDir ()
            use net = compile (Model.Lstm(8).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(net, dir)
            let w = Path.Combine(dir, "weights.dat")
            let bytes = File.ReadAllBytes w
            File.WriteAllBytes(w, bytes.[.. bytes.Length / 2])
            let e = expectSeqDslError "truncated" (fun () -> ModelStore.Load dir)
            Expect.stringContains e.Message "weights.dat was changed after the model was saved" "names the file"
            Directory.Delete(dir, true)
        }

        test "weights of another model are a clear error" {
            let a, b = tempDir (), tempDir ()
            use small = compile (Model.Lstm(3).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            use big = compile (Model.Lstm(5).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(small, a)
            ModelStore.Save(big, b)
            File.Copy(Path.Combine(b, "weights.dat"), Path.Combine(a, "weights.dat"), true)
            let e = expectSeqDslError "wrong model" (fun () -> ModelStore.Load a)
            Expect.stringContains e.Message "weights.dat was changed after the model was saved" "names the file"
            Directory.Delete(a, true)
            Directory.Delete(b, true)
        }

        test "a folder that is not a model directory" {
            let dir = tempDir ()
            Directory.CreateDirectory dir |> ignore
            let e = expectSeqDslError "empty dir" (fun () -> ModelStore.Load dir)
            Expect.stringContains e.Message "has no manifest.json" "reason"
            Directory.Delete(dir, true)
        }

        test "a model with pretrained vectors reloads without the vectors file (they are in the weights)" {
            let dir = tempDir ()
            Directory.CreateDirectory dir |> ignore
            let glove = Path.Combine(dir, "vectors.txt")
            File.WriteAllText(glove, "good 0.5 -0.25\nbad -1 2\n")
            let vocabulary = readOnlyDict [ "<pad>", 0; "good", 1; "bad", 2; "film", 3 ]
            use net = SeqDsl.Engine.Network.Compile(Model.Embed(2, padding = 0, pretrained = glove, trainable = false).Lstm(3).Dense(1, Activation.Sigmoid),
                                                    SeqDsl.Engine.CompileOptions(Input = InputSpec(Vocab = 4), Vocabulary = vocabulary, Seed = 1L))
            let model = Path.Combine(dir, "model")
            ModelStore.Save(net, model)
            File.Delete glove
            use loaded = ModelStore.Load model
            use x = torch.tensor([| 1L; 2L; 3L; 1L |]).reshape(2L, 2L)
            use a = Trainer.Predict(net, x)
            use b = Trainer.Predict(loaded, x)
            Expect.equal (values b) (values a) "identical predictions, vectors included"
            Expect.equal (string loaded.Spec) "Embed(2, padding: 0, trainable: false).Lstm(3).Dense(1, Sigmoid)" "the saved model names no vectors file"
            Directory.Delete(dir, true)
        }

        test "every single-bit flip in any file of a model directory is detected" {
            let dir = tempDir ()
            use net = compile (Model.Embed(4).Lstm(3).Dense(1, Activation.Sigmoid)) (InputSpec(Vocab = 9)) Convention.Torch 1L
            ModelStore.Save(net, dir, readOnlyDict [ "task.json", "{\"kind\": \"Classification\"}" ])
            let rng = Random 5
            let files = [ "weights.dat"; "model.json"; "network.json"; "model.txt"; "task.json" ]
            let mutable detected = 0
            let flips = 200
            for i in 1 .. flips do
                let f = Path.Combine(dir, files.[i % files.Length])
                let original = File.ReadAllBytes f
                let flipped = Array.copy original
                let at = rng.Next flipped.Length
                flipped.[at] <- flipped.[at] ^^^ (1uy <<< rng.Next 8)
                File.WriteAllBytes(f, flipped)
                try
                    (ModelStore.Load dir).Dispose()
                    ModelStore.ReadExtra(dir, "task.json") |> ignore
                with :? SeqDslException as e when e.Message.Contains "was changed after the model was saved" -> detected <- detected + 1
                File.WriteAllBytes(f, original)
            Expect.equal detected flips "every flip detected, none loaded silently"
            // and flips in the manifest itself: a hash's hex case or its format number are changes too
            let manifest = Path.Combine(dir, ModelStore.ManifestFile)
            let original = File.ReadAllBytes manifest
            let mutable refused = 0
            for _ in 1 .. 100 do
                let flipped = Array.copy original
                let at = rng.Next flipped.Length
                flipped.[at] <- flipped.[at] ^^^ (1uy <<< rng.Next 8)
                File.WriteAllBytes(manifest, flipped)
                try (ModelStore.Load dir).Dispose() with :? SeqDslException -> refused <- refused + 1
                File.WriteAllBytes(manifest, original)
            Expect.equal refused 100 "every flip in manifest.json refused"
            (ModelStore.Load dir).Dispose() // and the restored directory loads again
            Directory.Delete(dir, true)
        }

        test "an edited model.json (Sigmoid → Linear) is refused, naming the file" {
            let dir = tempDir ()
            use net = compile (Model.Lstm(3).Dense(1, Activation.Sigmoid)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(net, dir)
            let f = Path.Combine(dir, "model.json")
            File.WriteAllText(f, File.ReadAllText(f).Replace("Sigmoid", "Linear"))
            let e = expectSeqDslError "edited" (fun () -> ModelStore.Load dir)
            Expect.stringContains e.Message "model.json was changed" "names the file"
            Directory.Delete(dir, true)
        }

        test "a manifest cannot make the loader read outside the directory" {
            let dir = tempDir ()
            use net = compile (Model.Lstm(3).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(net, dir)
            let m = Path.Combine(dir, ModelStore.ManifestFile)
            File.WriteAllText(m, File.ReadAllText(m).Replace("\"model.txt\"", "\"../../etc/passwd\""))
            let e = expectSeqDslError "escape" (fun () -> ModelStore.Load dir)
            Expect.stringContains e.Message "outside the directory" "reason"
            Directory.Delete(dir, true)
        }

        test "leftovers of an interrupted save are cleaned up, and a model caught between two renames is put back" {
            let root = tempDir ()
            let dir = Path.Combine(root, "m")
            use a = compile (Model.Lstm(3).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            use b = compile (Model.Lstm(4).Dense(1)) (InputSpec(Features = 2)) Convention.Torch 1L
            ModelStore.Save(a, dir)
            // an interrupted save's half-written folder, and the old model moved aside with the new one never put in place
            Directory.CreateDirectory(Path.Combine(root, ".m.tmp-dead")) |> ignore
            Directory.Move(dir, Path.Combine(root, ".m.old-dead"))
            ModelStore.Save(b, dir)
            use loaded = ModelStore.Load dir
            Expect.equal loaded.Spec b.Spec "the new model"
            Expect.equal (Directory.GetDirectories root |> Array.map Path.GetFileName) [| "m" |] "no leftovers"
            Directory.Delete(root, true)
        }
    ]
