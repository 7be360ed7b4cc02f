/// Helpers shared by the test files: expecting SeqDsl errors, finding the repository.
module SeqDsl.Tests.Support

open System
open System.IO
open Expecto
open SeqDsl.Spec

/// Runs f and returns the SeqDslException it must throw.
let expectSeqDslError (what: string) (f: unit -> 'a) : SeqDslException =
    try
        f () |> ignore
        failtestf "%s: expected a SeqDslException, but none was thrown" what
    with
    | :? SeqDslException as e -> e

/// The repository root (the folder holding SeqDsl.sln).
let repoRoot =
    let rec up (d: DirectoryInfo) =
        if isNull d then failwith "SeqDsl.sln not found above the test binary"
        elif File.Exists(Path.Combine(d.FullName, "SeqDsl.sln")) then d.FullName
        else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

/// The build configuration the tests were built in (Debug/Release).
let configuration =
    let parts = AppContext.BaseDirectory.Split([| '/'; '\\' |], StringSplitOptions.RemoveEmptyEntries)
    let i = Array.LastIndexOf(parts, "bin")
    if i >= 0 && i + 1 < parts.Length then parts.[i + 1] else "Debug"

/// ../shared/data beside the repository, when present (real datasets; never committed).
let sharedData =
    let d = Path.GetFullPath(Path.Combine(repoRoot, "..", "shared", "data"))
    if Directory.Exists d then Some d else None

/// Runs f with the path of a real dataset file, or skips the test saying what is missing.
let withSharedFile (name: string) (f: string -> unit) =
    match sharedData with
    | Some d when File.Exists(Path.Combine(d, name)) -> f (Path.Combine(d, name))
    | _ -> skiptestf "needs ../shared/data/%s (real data, not in the repository); skipped" name

let private tempFolders = System.Collections.Concurrent.ConcurrentBag<string>()
do AppDomain.CurrentDomain.ProcessExit.Add(fun _ ->
    for d in tempFolders do
        try if Directory.Exists d then Directory.Delete(d, true) with _ -> ())

/// A fresh temporary folder, removed when the test run ends.
let tempFolder (tag: string) =
    let d = Path.Combine(Path.GetTempPath(), $"seqdsl-{tag}-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    tempFolders.Add d
    d

/// Runs `dotnet args…` in the repository root with passive OpenMP waiting; returns (exit code, stdout, stderr).
let runDotnet (args: string list) (timeoutMs: int) =
    let psi = System.Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true,
                                                  UseShellExecute = false, WorkingDirectory = repoRoot)
    for a in args do psi.ArgumentList.Add a
    if not (psi.Environment.ContainsKey "OMP_WAIT_POLICY") then psi.Environment.["OMP_WAIT_POLICY"] <- "PASSIVE"
    use p = System.Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failtestf "dotnet %s ran past %d s" (String.concat " " args) (timeoutMs / 1000)
    p.ExitCode, out.Result, err.Result
