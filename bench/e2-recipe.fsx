// Seed 000's E2 recipe, part by part: an LSTM(20) counting the ones of length-20 binary sequences, trained on 10,000
// and tested on 1,000 sequences after every epoch, for three seeds; data drawn as the book's generate_dataset draws it
// ("book": a per-sequence share of ones, SeqDsl's synthetic:counting) or with Bernoulli(1/2) steps ("bernoulli", what
// synthetic:counting drew before); Adam at the book's 1e-3 (PyTorch's default) or 5e-3; batch 16, MSE, weights
// U(−√(3/H), √(3/H)) as the book's LSTMCell. Prints the rounded test accuracy by epoch.
//   dotnet build src/SeqDsl.FSharp && dotnet fsi bench/e2-recipe.fsx book 0.001
// (fsharp-scripts/SeqDsl.fsx loads TorchSharp's native library, which F# Interactive does not find by itself, and
// initialises the backend; SeqDsl.dll is compiled optimised in Debug builds too)
#load "../fsharp-scripts/SeqDsl.fsx"
open System
open TorchSharp
open SeqDsl
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Data
torch.set_num_threads 1
let args = fsi.CommandLineArgs |> Array.skip 1
let data, lr = args.[0], float args.[1]

/// Every step 1 with probability 1/2 (SeqDsl's generator before it followed the book).
let bernoulli (count: int) (length: int) (seed: int) =
    let rng = Random seed
    let x = Array.zeroCreate<float32> (count * length)
    let y = Array.zeroCreate<float32> count
    for i in 0 .. count - 1 do
        for t in 0 .. length - 1 do
            let bit = rng.Next 2
            x.[i * length + t] <- float32 bit
            y.[i] <- y.[i] + float32 bit
    ArrayData(x, [| int64 count; int64 length; 1L |], y, [| int64 count; 1L |])

for seed in [ 1; 2; 3 ] do
    let gen n s = if data = "book" then Synthetic.CountingOnes(n, 20, s) else bernoulli n 20 s
    let train = SequenceData.From(gen 10000 (10 * seed + 1))
    let test = SequenceData.From(gen 1000 (10 * seed + 2))
    use net = Network.Compile(Model.Lstm(20).Dense(1), CompileOptions(Input = Spec.InputSpec(Features = 1), Seed = int64 seed))
    net.Initialize("layers.0.*", Init.Uniform(-sqrt (3.0 / 20.0), sqrt (3.0 / 20.0))) |> ignore
    let h = Trainer.Fit(net, train, FitOptions(Epochs = 10, BatchSize = 16, Loss = Loss.Mse, Metrics = [| Metric.Accuracy |],
                                               Optimizer = OptimizerSpec.Adam(lr), Seed = int64 seed), test)
    let acc = h.Series "val_accuracy" |> Seq.map (fun a -> sprintf "%.1f" (100.0 * a)) |> String.concat " "
    printfn "%s lr %g seed %d: test accuracy by epoch %s" data lr seed acc
