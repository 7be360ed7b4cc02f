/// The command line as data (Argu): one union case per subcommand, usage text beside each option.
module SeqDsl.Cli.Args

open Argu

type ConventionArg =
    | Torch
    | Keras

/// Recurrent kernels by name (SeqDsl.Spec.Kernel).
[<RequireQualifiedAccess>]
type KernelArg =
    | Auto
    | Fused
    | Loop
    | Simd

/// The optimizers an experiment names.
[<RequireQualifiedAccess>]
type OptimizerArg =
    | Adam
    | Adamw
    | Sgd
    | Rmsprop
    | Adagrad

/// Tokenizers by name (SeqDsl.Data.Tokenizer.FromName).
[<RequireQualifiedAccess>]
type TokenizerArg =
    | Keras
    | Seed002
    | Whitespace
    | Chars

/// Padding side with --maxlen.
[<RequireQualifiedAccess>]
type SideArg =
    | Pre
    | Post

/// Series feature sets.
[<RequireQualifiedAccess>]
type FeatureSetArg =
    | Raw
    | Seed002

/// Language-model samplers.
[<RequireQualifiedAccess>]
type SamplingArg =
    | Random
    | Consecutive
    | Chunks

/// The experiment file's name of a union-typed option: the case name in lower case.
let argName (value: 'a) = (sprintf "%A" value).ToLowerInvariant()

type SummaryArgs =
    | [<AltCommandLine("-m")>] Model of text: string
    | Model_Dir of dir: string
    | Vocab of size: int
    | Features of count: int
    | Seq_Len of steps: int
    | Convention of ConventionArg
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "the model as fluent text, e.g. \"Embed(32).Lstm(64).Stack(2).Dense(1, Sigmoid)\"."
            | Model_Dir _ -> "a trained model directory (instead of --model): its model, input and convention."
            | Vocab _ -> "vocabulary size for a model that starts with Embed (unless Embed gives vocab: N)."
            | Features _ -> "features per time step for a model that does not start with Embed."
            | Seq_Len _ -> "fixed sequence length to show in the shapes (default: None)."
            | Convention _ -> "bias convention for parameter counts: torch (two bias vectors, libtorch) or keras (one). Default: torch."
            | Json -> "print the model's JSON form after the table."

type TrainArgs =
    | [<AltCommandLine("-m")>] Model of text: string
    | [<AltCommandLine("-e")>] Experiment of file: string
    | [<AltCommandLine("-d")>] Data of source: string
    | [<AltCommandLine("-o")>] Out of dir: string
    | Resume
    | Fresh
    | Checkpoint_Batches of n: int
    | Epochs of int
    | Batch_Size of int
    | Optimizer of OptimizerArg
    | [<AltCommandLine("--lr")>] Learning_Rate of float
    | Momentum of float
    | Weight_Decay of float
    | Lr_Step_Epochs of epochs: int
    | Lr_Plateau_Patience of epochs: int
    | Lr_Factor of float
    | Lr_Min of float
    | Keep_Best
    | Clip_Norm of float
    | Clip_Value of float
    | Seed of int
    | Device of name: string
    | Threads of int
    | Validation_Split of fraction: float
    | Early_Stopping of patience: int
    | No_Bucketing
    | Convention of ConventionArg
    | Optimizer_Rules of ConventionArg
    | Kernel of KernelArg
    | Tokenizer of TokenizerArg
    | Num_Words of int
    | Min_Freq of int
    | Oov_Token of token: string
    | Start_Token of token: string
    | Maxlen of int
    | Padding of SideArg
    | Lowercase
    | Text_Column of name: string
    | Label_Column of name: string
    | Feature_Columns of names: string
    | Target_Column of name: string
    | Feature_Set of FeatureSetArg
    | Window of rows: int
    | No_Target_Scaling
    | Train_End of date: string
    | Test_Start of date: string
    | Test_End of date: string
    | Test_Split of fraction: float
    | Skip_Bad_Rows
    | Chars of count: int
    | Replace_Newlines
    | Steps of int
    | Sampling of SamplingArg
    | Init_Weights of file: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "the model as fluent text, e.g. \"Embed(32).Lstm(64).Dense(1, Sigmoid)\" (overrides the experiment file)."
            | Experiment _ -> "an experiment file (JSON: model, data, preprocessing, training); options given here override it."
            | Data _ -> "the data: imdb:PATH (folder or .tar.gz), csv:PATH (text/label or feature/target columns), text:PATH[!zip-member], series:PATH, synthetic:counting|negation|seasonal."
            | Out _ -> "write the model directory, history.csv, metrics.json and learning-curves.png here; while training, the state to resume from is saved after every epoch in DIR.state."
            | Resume -> "continue an interrupted run of the same experiment from DIR.state (with --out DIR)."
            | Fresh -> "start over, discarding the training state an interrupted run left in DIR.state."
            | Checkpoint_Batches _ -> "also save the state to resume from every N batches inside an epoch (default: at epoch ends; not with --sampling consecutive)."
            | Epochs _ -> "passes over the data (default 10)."
            | Batch_Size _ -> "sequences per minibatch (default 32)."
            | Optimizer _ -> "adam (default), adamw (Adam with decoupled weight decay), sgd, rmsprop or adagrad."
            | Learning_Rate _ -> "learning rate (default: the optimizer's: adam/adamw/rmsprop 1e-3, sgd/adagrad 1e-2)."
            | Momentum _ -> "SGD momentum (default 0)."
            | Weight_Decay _ -> "adamw: the decoupled weight decay λ, θ ← θ − lr·λ·θ every step (default 0.01)."
            | Lr_Step_Epochs _ -> "learning-rate schedule: multiply the rate by --lr-factor every this many epochs."
            | Lr_Plateau_Patience _ -> "learning-rate schedule: multiply the rate by --lr-factor after this many epochs without a better val_loss (loss when there is no validation part)."
            | Lr_Factor _ -> "the schedule's factor, between 0 and 1 (default 0.1)."
            | Lr_Min _ -> "the plateau schedule never lowers the rate below this (default 0)."
            | Keep_Best -> "measure and save the weights of the epoch with the best val_loss (loss when there is no validation part) instead of the last epoch's."
            | Clip_Norm _ -> "clip gradients to this global norm."
            | Clip_Value _ -> "clip every gradient element to ±this value."
            | Seed _ -> "seed of initialisation, shuffling, dropout and synthetic data (default 0); CPU runs repeat bit for bit."
            | Device _ -> "cpu (default) or cuda (needs a build with -p:TorchBackend=cuda)."
            | Threads _ -> "CPU threads for libtorch (default: all cores)."
            | Validation_Split _ -> "fraction of the training rows held out for validation, taken from the end as Keras does (default 0.1)."
            | Early_Stopping _ -> "stop after this many epochs without a better val_loss (language models: loss), keeping the best weights."
            | No_Bucketing -> "draw texts padded per batch in plain shuffled order instead of batching similar lengths together (slower, as a shuffled DataLoader does)."
            | Convention _ -> "bias layout, initialisers and optimizer rules: torch (default, two bias vectors) or keras (one)."
            | Kernel _ -> "run every recurrent layer on this kernel: simd (SeqDsl's own CPU kernel: AVX2/FMA, whole sequences per call), fused (libtorch's) or loop (per-step ops); auto (the default) keeps each layer's own setting."
            | Optimizer_Rules _ -> "optimizer update rules: keras (TensorFlow's: RMSprop's ε inside the root, sparse embedding rows) or torch (libtorch's); default: the convention's."
            | Tokenizer _ -> "keras, seed002 (default for text), whitespace or chars."
            | Num_Words _ -> "keep the most frequent words only (Keras num_words)."
            | Min_Freq _ -> "drop words seen fewer times (default 1)."
            | Oov_Token _ -> "keras tokenizer: replace words outside the vocabulary by this token (Keras's oov_token, as imdb.load_data marks them) instead of dropping them."
            | Start_Token _ -> "text: put this token before every text's first word, a reserved vocabulary entry (imdb.load_data starts each review with a start index)."
            | Maxlen _ -> "pad/truncate every text to this length (Keras style); default: pad each batch and keep lengths."
            | Padding _ -> "pre (default) or post, with --maxlen."
            | Lowercase -> "lower-case the text first."
            | Text_Column _ -> "CSV text column (default text)."
            | Label_Column _ -> "CSV label column (default label): class indices 0, 1, … or class names (words, numbered in sorted order; predict prints them)."
            | Feature_Columns _ -> "comma-separated feature columns of a series (default: the target, lagged one day)."
            | Target_Column _ -> "target column of a series (default value, or Close)."
            | Feature_Set _ -> "raw (default) or seed002 (the 37 price features of Python Machine Learning by Example)."
            | Window _ -> "rows per series window (default 5)."
            | No_Target_Scaling -> "series: learn the target in its own units instead of scaled by the training period's mean and standard deviation (predictions and metrics are in the target's units either way)."
            | Train_End _ -> "last training date of a series, yyyy-MM-dd (default: the last 20 % of rows are the test set)."
            | Test_Start _ -> "first test date of a series (default: the day after --train-end)."
            | Test_End _ -> "last test date of a series."
            | Test_Split _ -> "test fraction for sources without a test split (default 0.2)."
            | Skip_Bad_Rows -> "CSV sources: skip (and count) rows with a malformed cell or an empty label or target instead of stopping at the first."
            | Chars _ -> "character corpus: keep the first N characters."
            | Replace_Newlines -> "character corpus: line breaks become spaces."
            | Steps _ -> "language models: time steps per minibatch (default 35)."
            | Sampling _ -> "language models: random (default), consecutive (state carried across minibatches) or chunks (windows at any offset, seed 002)."
            | Init_Weights _ -> "start from these weights instead of the initialisers: a PyTorch state dict (.pt, torch.save(model.state_dict())) or .safetensors with the model's parameter names and shapes (seqdsl export --pytorch writes the nn.Module that has them)."

type EvaluateArgs =
    | [<Mandatory; AltCommandLine("-M")>] Model_Dir of dir: string
    | [<AltCommandLine("-d")>] Data of source: string
    | Json
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model_Dir _ -> "the trained model directory (seqdsl train --out)."
            | Data _ -> "the data to measure on (its test part when it has one); needed unless the model was trained on synthetic data: a model directory never makes seqdsl read a file you did not name."
            | Json -> "print the metrics as JSON."
            | Threads _ -> "CPU threads for libtorch (default: all cores)."

type PredictArgs =
    | [<Mandatory; AltCommandLine("-M")>] Model_Dir of dir: string
    | [<AltCommandLine("-t")>] Text of string
    | [<AltCommandLine("-f")>] File of path: string
    | Jsonl
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model_Dir _ -> "the trained model directory."
            | Text _ -> "an input (repeatable): a text to classify, or a binary string for a counting model."
            | File _ -> "inputs from a file: one text per line, or a CSV of series rows for a forecasting model."
            | Jsonl -> "print one JSON object per line instead of a table: input, value, label (a class index) and class (its name, when the training labels had names)."
            | Threads _ -> "CPU threads for libtorch (default: all cores)."

type GenerateArgs =
    | [<Mandatory; AltCommandLine("-M")>] Model_Dir of dir: string
    | [<Mandatory; AltCommandLine("-p")>] Prefix of text: string
    | [<AltCommandLine("-n")>] Length of count: int
    | Temperature of float
    | Top_K of int
    | Top_P of float
    | Seed of int
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model_Dir _ -> "the trained language model directory."
            | Prefix _ -> "text to start from (repeatable: one line per prefix)."
            | Length _ -> "characters to generate after the prefix (default 50, at most 100000)."
            | Temperature _ -> "sample with this temperature instead of taking the most likely character."
            | Top_K _ -> "sample among the k most likely characters."
            | Top_P _ -> "sample among the most likely characters whose probabilities reach p."
            | Seed _ -> "seed of the sampler (default 0)."
            | Threads _ -> "CPU threads for libtorch (default: all cores)."

/// Which engine serves a model.
[<RequireQualifiedAccess>]
type BackendArg =
    | Onnx
    | Torch

type ExportArgs =
    | [<Mandatory; AltCommandLine("-M")>] Model_Dir of dir: string
    | [<AltCommandLine("-o")>] Onnx of file: string
    | States
    | No_States
    | Pytorch of dir: string
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model_Dir _ -> "the trained model directory (seqdsl train --out)."
            | Onnx _ -> "the ONNX file to write (default: DIR/model.onnx; an existing file is replaced, the model's own files never). It carries the preprocessing (tokenizer, vocabulary, padding, scaler) and its own SHA-256 in its metadata; it is written only after ONNX Runtime's outputs were checked against libtorch's."
            | States -> "give every recurrent layer's state as graph inputs and outputs (the default for language models: step-by-step generation needs them)."
            | No_States -> "no state inputs or outputs, even for a language model (which then cannot generate from the file)."
            | Pytorch _ -> "write the model for PyTorch into this folder (created, or replaced when an earlier export wrote it): model.pt (its state dict), model.safetensors and model.py (the nn.Module they load into, with SeqDsl's forward), with manifest.json. Alone it writes no ONNX file; with --onnx both."
            | Threads _ -> "CPU threads for libtorch while the export is checked against it (default: all cores)."

type ServeArgs =
    | [<AltCommandLine("-M")>] Model_Dir of dir: string
    | Onnx of file: string
    | Backend of BackendArg
    | [<AltCommandLine("-p")>] Port of int
    | Host of address: string
    | Threads of int
    | Max_Batch of rows: int
    | Batch_Window_Ms of float

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model_Dir _ -> "the trained model directory to serve (exported to ONNX in memory for --backend onnx)."
            | Onnx _ -> "an exported .onnx file to serve instead of a model directory (ONNX backend only; no libtorch is loaded)."
            | Backend _ -> "onnx (default: ONNX Runtime) or torch (libtorch, as seqdsl predict does; needs --model-dir; use --threads 1 on a small machine)."
            | Port _ -> "TCP port (default 8080; 0 picks a free one and prints it)."
            | Host _ -> "IP address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface, e.g. in a container)."
            | Threads _ -> "CPU threads of one forward pass (default: all cores)."
            | Max_Batch _ -> "most inputs of concurrent requests in one forward pass (default 256, at most 65536; one larger request still runs alone)."
            | Batch_Window_Ms _ -> "how long the first request of a pass may wait for others still arriving, 0–1000 ms (default 2; a lone request never waits)."

type CheckArgs =
    | Full
    | No_Speed
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Full -> "sweep every hidden size 1…64, 96, 128, 256 (default: the sizes where libtorch's oneDNN LSTM was seen wrong, and a spread of others)."
            | No_Speed -> "skip the speed probe."
            | Threads _ -> "CPU threads for libtorch (default: all cores)."

type Command =
    | [<CliPrefix(CliPrefix.None)>] Train of ParseResults<TrainArgs>
    | [<CliPrefix(CliPrefix.None)>] Evaluate of ParseResults<EvaluateArgs>
    | [<CliPrefix(CliPrefix.None)>] Predict of ParseResults<PredictArgs>
    | [<CliPrefix(CliPrefix.None)>] Generate of ParseResults<GenerateArgs>
    | [<CliPrefix(CliPrefix.None)>] Summary of ParseResults<SummaryArgs>
    | [<CliPrefix(CliPrefix.None)>] Check of ParseResults<CheckArgs>
    | [<CliPrefix(CliPrefix.None)>] Export of ParseResults<ExportArgs>
    | [<CliPrefix(CliPrefix.None)>] Serve of ParseResults<ServeArgs>
    | Version

    interface IArgParserTemplate with
        member c.Usage =
            match c with
            | Train _ -> "train a declared model on data; print metrics; save it with --out."
            | Evaluate _ -> "measure a trained model on data."
            | Predict _ -> "classify texts, count ones, or forecast a series with a trained model."
            | Generate _ -> "generate text from a prefix with a trained language model."
            | Summary _ -> "print a model's layers, output shapes, parameter counts and kernels."
            | Check _ -> "check every recurrent kernel path against a float64 reference on this machine, and time them."
            | Export _ -> "export a trained model to ONNX (with its preprocessing), verified against libtorch after writing, or for PyTorch (--pytorch)."
            | Serve _ -> "serve a trained model over HTTP: POST /predict {\"texts\"|\"bits\"|\"rows\": [...]}, POST /generate {\"prefix\", \"length\", …}, GET /healthz, GET /metrics (limits: body 4 MiB, 1024 inputs, prefix 1000 and length 2000 characters); SIGTERM or Ctrl+C finishes requests in flight and exits 0."
            | Version -> "print the version."
