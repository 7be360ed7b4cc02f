module SeqDsl.Cli.Program

open System
open System.Text.RegularExpressions
open Argu
open SeqDsl.Spec
open SeqDsl.Cli.Args

/// Exit codes: 0 success, 1 runtime failure, 2 usage / spec / data error.
let exitCodeOf (e: SeqDslException) =
    match e.Kind with
    | ErrorKind.Runtime -> 1
    | _ -> 2

/// Argu's parse error as one line: its reason, a "did you mean" for a misspelled option or subcommand (the nearest
/// name the usage lists, at most two edits away), and where the options are listed. (Argu appends the whole usage
/// text, which buried the reason under a screenful of options.)
let argumentError (argv: string[]) (message: string) =
    let lines = message.Split('\n')
    let first = lines.[0].Trim()
    let reason = (if first.StartsWith("ERROR: ", StringComparison.Ordinal) then first.Substring 7 else first).TrimEnd('.')
    // the usage's names: the options its synopsis lists ([--name …]) and, in the top-level usage, the subcommands (an
    // indented word before <options>); not the options its help sentences mention (evaluate's names train's --out)
    let names =
        lines.[1..]                                                                  // (the first line is the error)
        |> Array.collect (fun l ->
            let sub = Regex.Match(l, @"^\s+([a-z]+) <options>")
            let option = Regex.Match(l, @"^\s+(--[a-z0-9][a-z0-9-]*)(?:, (--[a-z0-9][a-z0-9-]*))?")   // an option's own line
            [| for m in Regex.Matches(l, @"\[(--[a-z0-9][a-z0-9-]*)") do yield m.Groups.[1].Value
               if option.Success then
                   yield option.Groups.[1].Value
                   if option.Groups.[2].Success then yield option.Groups.[2].Value
               if sub.Success then yield sub.Groups.[1].Value |])
        |> Array.distinct
    let hint =
        let given = Regex.Match(reason, @"^unrecognized argument: '([^']*)'$")
        if not given.Success then ""
        else
            let g = given.Groups.[1].Value
            names
            |> Array.filter (fun n -> n.StartsWith '-' = g.StartsWith '-')
            |> Array.map (fun n -> n, ModelSyntax.Distance(n, g))
            |> Array.sortBy snd
            |> Array.tryHead
            |> Option.filter (fun (_, d) -> d <= 2)
            |> Option.map (fun (n, _) -> $" (did you mean {n}?)")
            |> Option.defaultValue ""
    // the subcommand whose options were being read, for the pointer to its help
    let commands = set [ "train"; "evaluate"; "predict"; "generate"; "summary"; "check"; "export"; "serve" ]
    let help = if argv.Length > 0 && commands.Contains argv.[0] then $"seqdsl {argv.[0]} --help" else "seqdsl --help"
    $"seqdsl: {reason}{hint}; {help} lists the options."

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<Command>(programName = "seqdsl")
    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)
        // libtorch's process-wide switches and the allocator policy, before any tensor work
        // an exported model is served by ONNX Runtime alone: libtorch is not loaded
        let onnxOnly =
            match results.TryGetResult Serve with
            | Some s -> s.Contains ServeArgs.Onnx && s.GetResult(ServeArgs.Backend, defaultValue = BackendArg.Onnx) = BackendArg.Onnx
            | None -> false
        if not (results.Contains Version) && not onnxOnly then
            SeqDsl.Engine.Backend.UseMemoryPolicy() |> ignore
            SeqDsl.Engine.Backend.Initialize()
        match results.GetAllResults() with
        | [ Train a ] -> Commands.train a
        | [ Evaluate a ] -> Commands.evaluate a
        | [ Predict a ] -> Commands.predict a
        | [ Generate a ] -> Commands.generate a
        | [ Summary a ] -> Commands.summary a
        | [ Check a ] -> Commands.check a
        | [ Export a ] -> Commands.export a
        | [ Serve a ] -> Commands.serve a
        | [ Version ] ->
            let v = typeof<ModelSpec>.Assembly.GetName().Version
            printfn "seqdsl %s" (match v with null -> "unknown" | v -> v.ToString(3))
            0
        | _ ->
            eprintfn "%s" (parser.PrintUsage(message = "seqdsl: give one subcommand."))
            2
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        printfn "%s" e.Message
        0
    | :? ArguParseException as e ->
        eprintfn "%s" (argumentError argv e.Message)
        2
    | :? SeqDslException as e ->
        eprintfn "seqdsl: %s" e.Message
        exitCodeOf e
    | e when (e.GetBaseException() :? SeqDslException) ->
        let inner = e.GetBaseException() :?> SeqDslException
        eprintfn "seqdsl: %s" inner.Message
        exitCodeOf inner
    | e ->
        // one line for the user (the innermost cause); the stack trace only when asked for
        let b = e.GetBaseException()
        let first = (b.Message.Split('\n').[0]).Trim()
        if Environment.GetEnvironmentVariable "SEQDSL_VERBOSE" = "1" then eprintfn "seqdsl: unexpected error: %s" (e.ToString())
        else eprintfn "seqdsl: unexpected error (%s): %s (SEQDSL_VERBOSE=1 shows where)" (b.GetType().Name) first
        1
