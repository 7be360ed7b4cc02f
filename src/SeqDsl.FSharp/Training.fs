namespace SeqDsl.FSharp

open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training

/// Optimizers as an F# union.
type Optimizer =
    | Adam of lr: float
    | Sgd of lr: float * momentum: float
    | RmsProp of lr: float
    | AdaGrad of lr: float

/// Gradient clipping.
type ClipBy =
    | Norm of maxNorm: float
    | Value of bound: float

/// Training configuration as an F# record; start from `Train.defaults` and copy with `{ … with … }`.
type FitConfig =
    { Epochs: int
      BatchSize: int
      Optimizer: Optimizer
      Loss: LossKind
      Metrics: Metric list
      Clip: ClipBy option
      Seed: int64
      /// Fraction of the rows held out for validation (the last ones, as Keras).
      ValidationSplit: float
      /// Stop after this many epochs without a better val_loss (restoring the best weights).
      EarlyStopping: int option
      /// Called at the end of every epoch.
      OnEpoch: (EpochRecord -> unit) option }

/// Compile, train, evaluate and predict with F# values.
[<RequireQualifiedAccess>]
module Train =

    /// Adam 1e-3, MSE, batch 32, 10 epochs, no validation, seed 0.
    let defaults =
        { Epochs = 10; BatchSize = 32; Optimizer = Adam 1e-3; Loss = LossKind.MeanSquaredError; Metrics = []
          Clip = None; Seed = 0L; ValidationSplit = 0.0; EarlyStopping = None; OnEpoch = None }

    let private optimizer =
        function
        | Adam lr -> OptimizerSpec.Adam(lr) :> OptimizerSpec
        | Sgd(lr, m) -> OptimizerSpec.Sgd(lr, m)
        | RmsProp lr -> OptimizerSpec.RmsProp(lr)
        | AdaGrad lr -> OptimizerSpec.AdaGrad(lr)

    /// The library's options for an F# configuration.
    let toOptions (c: FitConfig) =
        FitOptions(
            Epochs = c.Epochs, BatchSize = c.BatchSize, Optimizer = optimizer c.Optimizer, Loss = Loss(c.Loss),
            Metrics = Array.ofList c.Metrics, Seed = c.Seed, ValidationSplit = c.ValidationSplit,
            Clip = (c.Clip |> Option.map (function Norm n -> Clip.ByNorm(n) :> Clip | Value v -> Clip.ByValue(v)) |> Option.toObj),
            EarlyStopping = (c.EarlyStopping |> Option.map (fun p -> EarlyStopping("val_loss", p, true)) |> Option.toObj),
            Progress =
                (c.OnEpoch
                 |> Option.map (fun f ->
                     { new System.IProgress<TrainingProgress> with
                         member _.Report p = match p.EpochEnd with null -> () | e -> f e })
                 |> Option.toObj))

    /// Compiles a model for an input (vocabulary or feature count), seeded.
    let compile (input: InputSpec) (seed: int64) (model: ModelSpec) =
        Network.Compile(model, CompileOptions(Input = input, Seed = seed))

    /// Trains; returns the history.
    let fit (config: FitConfig) (data: SequenceData) (net: Network) = Trainer.Fit(net, data, toOptions config)

    /// Trains with an explicit validation set.
    let fitWithValidation (config: FitConfig) (data: SequenceData) (validation: SequenceData) (net: Network) =
        Trainer.Fit(net, data, toOptions config, validation)

    /// Loss and metrics as an F# map.
    let evaluate (loss: LossKind) (metrics: Metric list) (data: SequenceData) (net: Network) : Map<string, float> =
        Trainer.Evaluate(net, data, Loss(loss), Array.ofList metrics) |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq

    /// The network's outputs for inputs, as a flat float array (row-major).
    let predict (inputs: TorchSharp.torch.Tensor) (net: Network) : float32[] =
        use y = Trainer.Predict(net, inputs)
        y.data<float32>().ToArray()

    /// Values of one metric over the epochs.
    let series (name: string) (history: History) = history.Series name |> List.ofSeq
