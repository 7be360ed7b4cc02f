// Counts, in a built SeqDsl.dll, what ScalarLifetimeTests fail on: implicit conversions to a TorchSharp Scalar and
// calls into TorchSharp methods that leave a temporary Scalar to the finalizer (docs/BENCHMARKS.md, sixteenth pass:
// 31 conversions in 18 methods and 22 such caller/callee pairs in the engine before the change, none after).
//   dotnet build tests/SeqDsl.Tests && dotnet fsi bench/scalar-scan.fsx [path/to/SeqDsl.dll]
// (without a path: the SeqDsl.dll the tests were built with; for an older engine, build it in a git worktree)
#I "../tests/SeqDsl.Tests/bin/Debug/net10.0"
#r "Mono.Cecil.dll"
#r "SeqDsl.Tests.dll"
open System.IO
open SeqDsl.Tests.ScalarLifetimeTests
let bin = Path.Combine(__SOURCE_DIRECTORY__, "..", "tests", "SeqDsl.Tests", "bin", "Debug", "net10.0")
let engine = fsi.CommandLineArgs |> Array.tryItem 1 |> Option.defaultValue (Path.Combine(bin, "SeqDsl.dll"))
let racy = temporaryScalarMethods (Path.Combine(bin, "TorchSharp.dll"))
let found = offences racy engine
let implicitIn = found |> List.filter (fun s -> s.Contains "implicit conversions to Scalar")
let conversions = implicitIn |> List.sumBy (fun s -> int (s.Split("→ ").[1].Split(' ').[0]))
// a call to Scalar.op_Implicit is listed as a call into TorchSharp too; these are the other TorchSharp methods
let calls = found |> List.filter (fun s -> s.Contains "→ TorchSharp" && not (s.Contains "Scalar::op_Implicit"))
printfn "TorchSharp methods that leave a temporary Scalar, with their callers: %d" racy.Count
printfn "%s: %d implicit conversions in %d methods; %d distinct calls (caller, TorchSharp method) into the others"
    engine conversions implicitIn.Length calls.Length
for s in implicitIn @ calls do printfn "  %s" s
