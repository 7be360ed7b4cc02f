/// Running parsed commands; parsing lives in Args.fs, process concerns in Program.fs.
module SeqDsl.Cli.Commands

open Argu
open SeqDsl.Spec
open SeqDsl.Cli.Args

let private toOption (x: 'a option) = match x with Some v -> System.Nullable v | None -> System.Nullable()

let summary (args: ParseResults<SummaryArgs>) : int =
    let model = ModelSyntax.Parse(args.GetResult SummaryArgs.Model)
    let input = InputSpec(toOption (args.TryGetResult Vocab), toOption (args.TryGetResult Features), toOption (args.TryGetResult Seq_Len))
    let convention =
        match args.GetResult(SummaryArgs.Convention, defaultValue = ConventionArg.Torch) with
        | ConventionArg.Torch -> Convention.Torch
        | ConventionArg.Keras -> Convention.Keras
    let s = model.Summary(input, convention)
    printfn "Model: %O" model
    printfn "%O" s
    if args.Contains Json then
        printfn "%s" (ModelJson.ToJson model)
    0
