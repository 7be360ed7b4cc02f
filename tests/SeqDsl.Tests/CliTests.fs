/// The seqdsl command line driven as a process: output, exit codes, messages on stderr.
module SeqDsl.Tests.CliTests

open System.Diagnostics
open System.IO
open Expecto
open SeqDsl.Tests.Support

/// Runs seqdsl with the arguments; returns (exit code, stdout, stderr).
let runCli (args: string list) =
    let dll = Path.Combine(repoRoot, "src", "SeqDsl.Cli", "bin", configuration, "net10.0", "SeqDsl.Cli.dll")
    if not (File.Exists dll) then failtestf "CLI not built: %s" dll
    let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    psi.ArgumentList.Add dll
    for a in args do psi.ArgumentList.Add a
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit 120000) then p.Kill true; failtest "seqdsl timed out"
    p.ExitCode, out.Result, err.Result

[<Tests>]
let tests =
    testList "Cli" [
        test "summary prints the seed-003 table under the Keras convention" {
            let code, out, err =
                runCli [ "summary"; "--model"; "Embed(32).SpatialDropout(0.4).SimpleRnn(32).Dropout(0.4).Dense(1, Sigmoid)"
                         "--vocab"; "8000"; "--convention"; "keras" ]
            Expect.equal code 0 $"exit code (stderr: {err})"
            Expect.stringContains out "Total params: 258,113" "total"
            Expect.stringContains out "SimpleRnn(32)" "layer row"
        }

        test "summary under the torch convention by default" {
            let code, out, _ = runCli [ "summary"; "--model"; "Lstm(4).Dense(1)"; "--features"; "3" ]
            Expect.equal code 0 "exit code"
            // 4·(4·3 + 4·4 + 2·4) + (4 + 1) = 144 + 5
            Expect.stringContains out "Total params: 149" "torch count"
        }

        test "a malformed model text exits 2 with the column on stderr" {
            let code, out, err = runCli [ "summary"; "--model"; "Embed(32).Lstm(64"; "--vocab"; "10" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "line 1, column 18" "position"
            Expect.stringContains err "^" "caret"
            Expect.equal out "" "nothing on stdout"
        }

        test "a spec error exits 2 and names the layer" {
            let code, _, err = runCli [ "summary"; "--model"; "Embed(8).Lstm(4)" ]
            Expect.equal code 2 "exit code"
            Expect.stringContains err "layer 0 (Embed)" "layer"
            Expect.stringContains err "--vocab" "hint"
        }

        test "a usage error exits 2" {
            let code, _, err = runCli [ "summary"; "--vocab"; "ten" ]
            Expect.equal code 2 "exit code"
            Expect.isNotEmpty err "message on stderr"
        }

        test "--help exits 0 and documents the options" {
            let code, out, _ = runCli [ "summary"; "--help" ]
            Expect.equal code 0 "exit code"
            for opt in [ "--model"; "--vocab"; "--features"; "--seq-len"; "--convention"; "--json" ] do
                Expect.stringContains out opt opt
        }

        test "--json prints a JSON form that reads back" {
            let code, out, _ = runCli [ "summary"; "--model"; "Lstm(4).Dense(1)"; "--features"; "3"; "--json" ]
            Expect.equal code 0 "exit code"
            let json = out.Substring(out.IndexOf "{")
            Expect.equal (SeqDsl.Spec.ModelJson.FromJson json) (SeqDsl.Model.Lstm(4).Dense(1)) "round-trip"
        }
    ]
