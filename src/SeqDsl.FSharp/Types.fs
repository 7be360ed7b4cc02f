namespace SeqDsl.FSharp

/// The library's types under the F# surface's namespace, so that `open SeqDsl.FSharp` is enough for a script:
/// records and enums keep their C# names (`InputSpec(Features = 1)`, `Metric.Accuracy`, `LossKind.MeanSquaredError`).
[<AutoOpen>]
module Types =
    // model specifications (SeqDsl.Core)
    type ModelSpec = SeqDsl.Spec.ModelSpec
    type Layer = SeqDsl.Spec.Layer
    type InputSpec = SeqDsl.Spec.InputSpec
    type Activation = SeqDsl.Spec.Activation
    type Merge = SeqDsl.Spec.Merge
    type Bias = SeqDsl.Spec.Bias
    type Kernel = SeqDsl.Spec.Kernel
    type Convention = SeqDsl.Spec.Convention
    type SeqDslException = SeqDsl.Spec.SeqDslException
    // data preparation (SeqDsl.Core)
    type Synthetic = SeqDsl.Data.Synthetic
    type ArrayData = SeqDsl.Data.ArrayData
    type PaddedIds = SeqDsl.Data.PaddedIds
    type TextPreprocessing = SeqDsl.Data.TextPreprocessing
    type Vocabulary = SeqDsl.Data.Vocabulary
    type Tokenizer = SeqDsl.Data.Tokenizer
    // experiments and tasks
    type ExperimentSpec = SeqDsl.Workflows.ExperimentSpec
    type PreprocessingSpec = SeqDsl.Workflows.PreprocessingSpec
    type TrainingSpec = SeqDsl.Workflows.TrainingSpec
    type TaskInfo = SeqDsl.Workflows.TaskInfo
    type TrainedModel = SeqDsl.Workflows.TrainedModel
    type ExperimentResult = SeqDsl.Workflows.ExperimentResult
    // training (the torch engine)
    type Network = SeqDsl.Engine.Network
    type Init = SeqDsl.Engine.Init
    type SequenceData = SeqDsl.Training.SequenceData
    type LossKind = SeqDsl.Training.LossKind
    type Metric = SeqDsl.Training.Metric
    type History = SeqDsl.Training.History
    type EpochRecord = SeqDsl.Training.EpochRecord
    type DecodeOptions = SeqDsl.Generation.DecodeOptions
