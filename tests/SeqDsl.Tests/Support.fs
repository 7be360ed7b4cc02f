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

let private collectionGate = obj ()

/// Runs f with garbage collections held off (a no-GC region, one caller at a time). TorchSharp's own code passes
/// libtorch Scalars it makes on the fly (its optimizers' alpha = −lr, a.add_(b)'s alpha 1, …) and does not keep them
/// alive: a collection during the call can finalize one while libtorch reads it. The suite crashed so once, in
/// at::_ops::add__Tensor::call on a thread-pool worker, after the optimizer tests (SIGSEGV, CI at b25331c). SeqDsl's own
/// code holds every Scalar it passes (ScalarLifetimeTests); the tests' calls into TorchSharp's optimizers, the
/// references they compare with, go through here. Where the region cannot start or is ended early by other threads'
/// allocations, f still runs.
let withoutCollections (f: unit -> 'a) : 'a =
    lock collectionGate (fun () ->
        let held =
            try System.GC.TryStartNoGCRegion(32L * 1024L * 1024L)
            with :? System.InvalidOperationException | :? System.ArgumentOutOfRangeException -> false
        try f ()
        finally
            if held && System.Runtime.GCSettings.LatencyMode = System.Runtime.GCLatencyMode.NoGCRegion then
                try System.GC.EndNoGCRegion() with :? System.InvalidOperationException -> ())

/// One optimizer step in a test: TorchSharp's own optimizers (the references the tests compare with) step with their
/// temporary Scalars safe from collection; SeqDsl's (its subclasses included) step as they run in training, collections
/// and all, so that a Scalar they failed to hold would still show.
let referenceStep (opt: TorchSharp.torch.optim.Optimizer) =
    if opt.GetType().Assembly = typeof<TorchSharp.torch.optim.Optimizer>.Assembly then
        withoutCollections (fun () -> opt.step() |> ignore)
    else opt.step() |> ignore
