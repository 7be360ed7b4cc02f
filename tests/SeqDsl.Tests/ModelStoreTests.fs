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
            use loaded = ModelStore.Load dir
            Expect.equal loaded.Spec b.Spec "replaced"
            Expect.equal (Directory.GetDirectories root |> Array.map Path.GetFileName) [| "m" |] "no leftovers"
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
            Expect.stringContains e.Message "does not hold the weights of Lstm(8).Dense(1)" "names the model"
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
            Expect.stringContains e.Message "saved from another model" "reason"
            Directory.Delete(a, true)
            Directory.Delete(b, true)
        }

        test "a folder that is not a model directory" {
            let dir = tempDir ()
            Directory.CreateDirectory dir |> ignore
            let e = expectSeqDslError "empty dir" (fun () -> ModelStore.Load dir)
            Expect.stringContains e.Message "model.json is missing" "reason"
            Directory.Delete(dir, true)
        }
    ]
