// A user-defined cell in F#: the minimal gated unit (Zhou et al. 2016), then used by name in model text.
//   dotnet fsi fsharp-scripts/user-cell.fsx
#load "SeqDsl.fsx"
open TorchSharp
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Workflows
open SeqDsl.FSharp

// f = σ(x W_f + h U_f + b_f);  h̃ = tanh(x W_h + (f ⊙ h) U_h + b_h);  h' = (1 − f) ⊙ h + f ⊙ h̃
UserCells.Register("Mgu", 1,
    [| struct ("w", [| Dim.H 2; Dim.I() |]); struct ("u_f", [| Dim.H(); Dim.H() |]); struct ("u_h", [| Dim.H(); Dim.H() |]); struct ("b", [| Dim.H 2 |]) |],
    (fun px (s: torch.Tensor[]) (p: CellParameters) ->
        let parts = px.chunk(2L, -1L)
        let f = (parts.[0] + s.[0].matmul(p.["u_f"].t())).sigmoid()
        let candidate = (parts.[1] + (f * s.[0]).matmul(p.["u_h"].t())).tanh()
        [| (1.0 - f) * s.[0] + f * candidate |]),
    (fun x p -> torch.nn.functional.linear(x, p.["w"], p.["b"]))) |> ignore

let result = Experiment.create "Mgu(20).Dense(1)" "synthetic:counting" |> Experiment.withTraining (TrainingSpec(Epochs = 4, BatchSize = 16, LearningRate = 0.005, Seed = 1)) |> Experiment.run
printfn "test accuracy: %.4f" (Experiment.metrics "test" result).["accuracy"]
if (Experiment.metrics "test" result).["accuracy"] < 0.8 then failwith "the user cell did not learn"
