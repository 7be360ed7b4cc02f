module SeqDsl.Cli.Program

open System
open Argu
open SeqDsl.Spec
open SeqDsl.Cli.Args

/// Exit codes: 0 success, 1 runtime failure, 2 usage / spec / data error.
let exitCodeOf (e: SeqDslException) =
    match e.Kind with
    | ErrorKind.Runtime -> 1
    | _ -> 2

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
        eprintfn "%s" e.Message
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
