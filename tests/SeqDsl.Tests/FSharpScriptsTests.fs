/// Every script in fsharp-scripts/ runs green with `dotnet fsi` on its generated data (scripts are documentation that runs).
module SeqDsl.Tests.FSharpScriptsTests

open System.IO
open Expecto
open SeqDsl.Tests.Support

let private runScript (script: string) = runDotnet [ "fsi"; "--quiet"; "--exec"; script ] 300000

/// Each script and a line its output must contain.
let private scripts =
    [ "summary.fsx", "Total params: 272,705"
      "counting.fsx", "test accuracy:"
      "sentiment.fsx", "test accuracy:"
      "char-lm.fsx", "perplexity"
      "forecasting.fsx", "test R²:"
      "user-cell.fsx", "test accuracy:" ]

[<Tests>]
let tests =
    testSequenced <| testList "FSharpScripts" [
        for name, expected in scripts do
            test name {
                if configuration <> "Debug" then skiptest "scripts reference the Debug build (dotnet build)"
                let code, out, err = runScript (Path.Combine("fsharp-scripts", name))
                Expect.equal code 0 $"exit code; stderr: {err}; stdout: {out}"
                Expect.stringContains out expected "output"
            }
        test "every script in the folder is covered" {
            let found = Directory.GetFiles(Path.Combine(repoRoot, "fsharp-scripts"), "*.fsx") |> Array.map Path.GetFileName |> Set.ofArray
            Expect.equal found (set ("SeqDsl.fsx" :: List.map fst scripts)) "every script but the loader is run"
        }
    ]
