/// The command line as data (Argu): one union case per subcommand.
module SeqDsl.Cli.Args

open Argu

type ConventionArg =
    | Torch
    | Keras

type SummaryArgs =
    | [<AltCommandLine("-m"); Mandatory>] Model of text: string
    | Vocab of size: int
    | Features of count: int
    | Seq_Len of steps: int
    | Convention of ConventionArg
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "the model as fluent text, e.g. \"Embed(32).Lstm(64).Stack(2).Dense(1, Sigmoid)\"."
            | Vocab _ -> "vocabulary size for a model that starts with Embed (unless Embed gives vocab: N)."
            | Features _ -> "features per time step for a model that does not start with Embed."
            | Seq_Len _ -> "fixed sequence length to show in the shapes (default: None)."
            | Convention _ -> "bias convention for parameter counts: torch (two bias vectors, libtorch) or keras (one). Default: torch."
            | Json -> "print the model's JSON form after the table."

type Command =
    | [<CliPrefix(CliPrefix.None)>] Summary of ParseResults<SummaryArgs>
    | Version

    interface IArgParserTemplate with
        member c.Usage =
            match c with
            | Summary _ -> "print a model's layers, output shapes and parameter counts."
            | Version -> "print the version."
