/// Every script in fsharp-scripts/ runs green with `dotnet fsi` on its generated data (scripts are documentation that runs).
module SeqDsl.Tests.FSharpScriptsTests

open System.Diagnostics
open System.IO
open Expecto
open SeqDsl.Tests.Support

let private runScript (script: string) =
    let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                               WorkingDirectory = repoRoot)
    for a in [ "fsi"; "--quiet"; "--exec"; script ] do psi.ArgumentList.Add a
    if not (psi.Environment.ContainsKey "OMP_WAIT_POLICY") then psi.Environment.["OMP_WAIT_POLICY"] <- "PASSIVE"
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 300000) then
        p.Kill true
        failtestf "%s ran past 5 minutes" script
    p.ExitCode, out.Result, err.Result

[<Tests>]
let tests =
    testSequenced <| testList "FSharpScripts" [
        for name, expected in
            [ "summary.fsx", "Total params: 272,705"
              "counting.fsx", "test accuracy:"
              "sentiment.fsx", "test accuracy:"
              "char-lm.fsx", "perplexity"
              "forecasting.fsx", "test R²:"
              "user-cell.fsx", "test accuracy:" ] do
            test name {
                if configuration <> "Debug" then skiptest "scripts reference the Debug build (dotnet build)"
                let code, out, err = runScript (Path.Combine("fsharp-scripts", name))
                Expect.equal code 0 $"exit code; stderr: {err}; stdout: {out}"
                Expect.stringContains out expected "output"
            }
        test "every script in the folder is covered" {
            let scripts = Directory.GetFiles(Path.Combine(repoRoot, "fsharp-scripts"), "*.fsx") |> Array.map Path.GetFileName |> Set.ofArray
            Expect.equal scripts (set [ "SeqDsl.fsx"; "summary.fsx"; "counting.fsx"; "sentiment.fsx"; "char-lm.fsx"; "forecasting.fsx"; "user-cell.fsx" ]) "scripts"
        }
    ]
