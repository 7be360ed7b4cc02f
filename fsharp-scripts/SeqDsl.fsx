// Loads the built SeqDsl assemblies into F# Interactive. Build first:  dotnet build src/SeqDsl.FSharp
// (the folder holds TorchSharp and its native libraries, with the libstdc++ fix applied).
#I "../src/SeqDsl.FSharp/bin/Debug/net10.0"
#r "TorchSharp.dll"
#r "Microsoft.Data.Analysis.dll"
#r "SeqDsl.Core.dll"
#r "SeqDsl.dll"
#r "SeqDsl.FSharp.dll"

// TorchSharp looks for its native library beside TorchSharp.dll, which F# Interactive does not
// always report; loading it by full path first makes every later lookup find it.
let private native =
    let os = if System.OperatingSystem.IsWindows() then "win-x64" elif System.OperatingSystem.IsMacOS() then "osx-arm64" else "linux-x64"
    let name = if System.OperatingSystem.IsWindows() then "LibTorchSharp.dll" elif System.OperatingSystem.IsMacOS() then "libLibTorchSharp.dylib" else "libLibTorchSharp.so"
    System.IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "src", "SeqDsl.FSharp", "bin", "Debug", "net10.0", "runtimes", os, "native", name)
if System.IO.File.Exists native then System.Runtime.InteropServices.NativeLibrary.Load native |> ignore

// libtorch's process-wide switches (oneDNN RNN path off) and the allocator policy, as the CLI and the tests set them
SeqDsl.Engine.Backend.UseMemoryPolicy() |> ignore
SeqDsl.Engine.Backend.Initialize()

/// The script's arguments (after the script name).
let scriptArgs = fsi.CommandLineArgs |> Array.skip 1 |> List.ofArray

/// A real dataset: the path given after `name`, else ../shared/data/<file> beside the repository.
let realData (file: string) =
    let given = scriptArgs |> List.skip 1 |> List.tryHead
    let fallback = System.IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "shared", "data", file)
    match given with
    | Some p -> p
    | None when System.IO.File.Exists fallback -> fallback
    | None -> failwithf "%s not found: pass its path after the dataset name" file
