/// The library as a user gets it: the packages packed to a local feed and used from a fresh console project and an
/// F# script (`#r "nuget: …"`), a ProjectReference from outside the repository, and the README's C# and F#
/// snippets executed as written. On a system whose libstdc++ lacks GLIBCXX_3.4.32 (Debian 12, this machine) each
/// of these aborted at run time before the libstdc++ fix reached consumers.
module SeqDsl.Tests.PackageTests

open System
open System.IO
open System.Text.RegularExpressions
open Expecto
open SeqDsl.Tests.Support

/// Runs `dotnet args…` in a folder with extra environment; returns (exit code, stdout + stderr).
let private runIn (dir: string) (env: (string * string) list) (args: string list) (timeoutMs: int) =
    let psi = Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true,
                                           UseShellExecute = false, WorkingDirectory = dir)
    for a in args do psi.ArgumentList.Add a
    psi.Environment.["OMP_WAIT_POLICY"] <- "PASSIVE"
    psi.Environment.["DOTNET_CLI_TELEMETRY_OPTOUT"] <- "1"
    psi.Environment.["DOTNET_NOLOGO"] <- "1"
    for k, v in env do psi.Environment.[k] <- v
    use p = Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failtestf "dotnet %s (in %s) ran past %d s" (String.concat " " args) dir (timeoutMs / 1000)
    p.ExitCode, out.Result + err.Result

let private expectOk what (code, output: string) =
    if code <> 0 then failtestf "%s: exit code %d\n%s" what code (output.Substring(max 0 (output.Length - 4000)))
    output

/// The fenced code blocks of README.md in one language, with the line each starts on.
let readmeSnippets (language: string) =
    let lines = File.ReadAllLines(Path.Combine(repoRoot, "README.md"))
    [ let mutable i = 0
      while i < lines.Length do
          if lines.[i].Trim() = "```" + language then
              let start = i + 1
              let mutable j = start
              while j < lines.Length && lines.[j].Trim() <> "```" do j <- j + 1
              yield start + 1, lines.[start .. j - 1] |> List.ofArray
              i <- j + 1
          else i <- i + 1 ]

let private usingDirectives = Regex(@"^\s*(using\s+(static\s+)?[\w.]+\s*;\s*)+$")

/// One C# file per snippet: its using directives on top, the rest as the body of a Run method.
let csharpFile (index: int) (line: int) (snippet: string list) =
    let directives, body = snippet |> List.partition usingDirectives.IsMatch
    String.concat "\n" [
        yield! directives
        yield $"// README.md line {line}"
        yield $"static class ReadmeSnippet{index}"
        yield "{"
        yield "    public static void Run()"
        yield "    {"
        yield! body |> List.map (fun l -> "        " + l)
        yield "    }"
        yield "}" ]

/// One F# script running every snippet in its own module (they reuse names, as separate snippets do).
let fsharpScript (header: string list) (snippets: (int * string list) list) =
    String.concat "\n" [
        yield! header
        for i, (line, snippet) in List.indexed snippets do
            yield $"// README.md line {line}"
            yield $"printfn \"=== README F# snippet {i} ===\""
            yield $"module ReadmeSnippet{i} ="
            yield! snippet |> List.map (fun l -> if l.Trim() = "" then "" else "    " + l)
        yield "printfn \"native: %s\" (defaultArg (Option.ofObj SeqDsl.Engine.NativeLoader.PatchedCopy) \"regular load\")" ]

let private nugetPackagesFolder () =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
    | d -> d

/// TorchSharp's native library as the NuGet cache holds it (never to be modified by SeqDsl).
let private cachedLibTorchSharp () =
    let root = Path.Combine(nugetPackagesFolder (), "torchsharp")
    Directory.GetFiles(root, "libLibTorchSharp.so", SearchOption.AllDirectories)
    |> Array.filter (fun p -> p.Contains "linux-x64")
    |> Array.tryHead

let private sha256 (path: string) = Convert.ToHexString(Security.Cryptography.SHA256.HashData(File.ReadAllBytes path))

let private needsFix () =
    not (SeqDsl.Engine.ElfVersionNeed.SystemDefines("libstdc++.so.6", "GLIBCXX_3.4.32"))

let private isWeakened (path: string) =
    // Weakened returns null when the need is weak already (or absent)
    isNull (SeqDsl.Engine.ElfVersionNeed.Weakened(File.ReadAllBytes path, "libstdc++.so.6", "GLIBCXX_3.4.32"))

[<Tests>]
let tests =
    testList "Package" [
        test "README snippets are found, and a C# snippet's directives go on top of its unit" {
            let cs = readmeSnippets "csharp"
            let fs = readmeSnippets "fsharp"
            Expect.isGreaterThanOrEqual cs.Length 4 "C# snippets in the README"
            Expect.isGreaterThanOrEqual fs.Length 2 "F# snippets in the README"
            let file = csharpFile 0 7 [ "using SeqDsl; using SeqDsl.Spec;"; "using var m = Open();"; "Console.WriteLine(1);" ]
            Expect.stringStarts file "using SeqDsl; using SeqDsl.Spec;" "directives on top"
            Expect.stringContains file "        using var m = Open();" "a using declaration is a statement, not a directive"
        }

        testCase "packages work in a fresh console project, an F# script and a ProjectReference; the README's snippets run as written" <| fun () ->
            if not (OperatingSystem.IsLinux()) then skiptest "the libstdc++ fix and this test are for Linux"
            let root = tempFolder "package"
            let feed = Path.Combine(root, "feed")
            let version = "0.1.0-test." + DateTime.UtcNow.ToString("yyyyMMddHHmmss")
            let cacheBefore = cachedLibTorchSharp () |> Option.map (fun p -> p, sha256 p)
            // a private package folder for SeqDsl's test packages; everything else from the user's cache, read only
            let env = [ "NUGET_PACKAGES", Path.Combine(root, "packages")
                        "NUGET_FALLBACK_PACKAGES", nugetPackagesFolder ()
                        "SEQDSL_NATIVE_CACHE", Path.Combine(root, "native-cache") ]
            for project in [ "SeqDsl.Core"; "SeqDsl"; "SeqDsl.Runtime"; "SeqDsl.FSharp" ] do
                runIn repoRoot [] [ "pack"; Path.Combine("src", project); "-c"; configuration; "--no-build"
                                    $"-p:Version={version}"; "-o"; feed ] 300000
                |> expectOk $"pack {project}" |> ignore
            File.WriteAllText(Path.Combine(root, "nuget.config"),
                $"""<?xml version="1.0" encoding="utf-8"?>
<configuration><packageSources><add key="seqdsl-test" value="{feed}" /></packageSources></configuration>""")

            // a model for the README's ONNX snippet, made with the built tool as the README's commands make it
            let app = Path.Combine(root, "app")
            Directory.CreateDirectory app |> ignore
            let cli = Path.Combine(repoRoot, "src", "SeqDsl.Cli", "bin", configuration, "net10.0", "SeqDsl.Cli.dll")
            runIn app [] [ cli; "train"; "--model"; "Embed(16).Lstm(32, forgetBias: 1).Dense(1, Sigmoid)"; "--data"; "synthetic:negation"
                           "--epochs"; "1"; "--threads"; "1"; "--out"; "runs/negation-lstm" ] 300000 |> expectOk "seqdsl train" |> ignore
            runIn app [] [ cli; "export"; "--model-dir"; "runs/negation-lstm" ] 300000 |> expectOk "seqdsl export" |> ignore

            // 1. console project with PackageReferences: every README C# snippet, in order
            let snippets = readmeSnippets "csharp"
            File.WriteAllText(Path.Combine(app, "app.csproj"), $"""<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>
  <ItemGroup><PackageReference Include="SeqDsl" Version="{version}" /><PackageReference Include="SeqDsl.Runtime" Version="{version}" /></ItemGroup>
</Project>""")
            snippets |> List.iteri (fun i (line, s) -> File.WriteAllText(Path.Combine(app, $"Snippet{i}.cs"), csharpFile i line s))
            File.WriteAllText(Path.Combine(app, "Program.cs"), String.concat "\n" [
                for i in 0 .. snippets.Length - 1 do
                    yield $"Console.WriteLine(\"=== README C# snippet {i} ===\");"
                    yield $"ReadmeSnippet{i}.Run();"
                yield "Console.WriteLine(\"native: \" + (SeqDsl.Engine.NativeLoader.PatchedCopy ?? \"regular load\"));" ])
            let build = runIn app env [ "build"; "-c"; "Release" ] 600000 |> expectOk "build the console project"
            let native = Path.Combine(app, "bin", "Release", "net10.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")
            Expect.isTrue (File.Exists native) "libLibTorchSharp.so in the consumer's output"
            if needsFix () then
                Expect.stringContains build "marked the GLIBCXX_3.4.32 need" "the package's buildTransitive targets patched the output"
                Expect.isTrue (isWeakened native) "the consumer's copy has the weak need"
            let again = runIn app env [ "build"; "-c"; "Release" ] 600000 |> expectOk "build again"
            Expect.isFalse (again.Contains "marked the GLIBCXX_3.4.32 need") "idempotent: a second build finds nothing to patch"
            let run = runIn app env [ "bin/Release/net10.0/app.dll" ] 600000 |> expectOk "run the console project"
            for i in 0 .. snippets.Length - 1 do
                let block = run.Split($"=== README C# snippet {i} ===").[1].Split("===").[0]
                Expect.isNonEmpty (block.Trim()) $"README C# snippet {i} (line {fst snippets.[i]}) prints something"
            Expect.isFalse (run.Contains "SeqDsl.Training.History") "results print their contents, not their type name"
            Expect.stringContains run "epoch 5, loss" "the training snippet prints its history"
            Expect.stringContains run "Total params:" "the summary snippet prints the table"
            Expect.stringContains run "native: regular load" "the patched build output loads without the runtime fallback"

            // 2. F# script with #r "nuget: …": every README F# snippet; the library loads from the NuGet cache
            let script = Path.Combine(root, "readme.fsx")
            File.WriteAllText(script, fsharpScript [ $"#i \"nuget: {feed}\""; $"#r \"nuget: SeqDsl.FSharp, {version}\"" ] (readmeSnippets "fsharp"))
            let fsi = runIn root env [ "fsi"; "--quiet"; script ] 600000 |> expectOk "dotnet fsi readme.fsx"
            for i in 0 .. (readmeSnippets "fsharp").Length - 1 do
                Expect.stringContains fsi $"=== README F# snippet {i} ===" $"F# snippet {i} ran"
            Expect.stringContains fsi "epoch 5, loss" "the F# training snippet prints its history"
            if needsFix () then
                Expect.stringContains fsi (Path.Combine(root, "native-cache")) "the script loaded the patched copy from SeqDsl's cache"

            // 3. a ProjectReference from outside the repository (not rebuilding SeqDsl): the runtime fallback
            let byRef = Path.Combine(root, "byref")
            Directory.CreateDirectory byRef |> ignore
            File.WriteAllText(Path.Combine(byRef, "byref.csproj"), $"""<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
  <ItemGroup><ProjectReference Include="{Path.Combine(repoRoot, "src", "SeqDsl", "SeqDsl.csproj")}" /></ItemGroup>
</Project>""")
            File.WriteAllText(Path.Combine(byRef, "Program.cs"), String.concat "\n" [
                "using SeqDsl; using SeqDsl.Engine; using SeqDsl.Spec;"
                "using var net = Network.Compile(Model.Lstm(4).Dense(1), new CompileOptions { Input = new InputSpec(Features: 2) });"
                "Console.WriteLine(net);"
                "Console.WriteLine(\"native: \" + (NativeLoader.PatchedCopy ?? \"regular load\"));" ])
            runIn byRef env [ "build"; "-c"; configuration; "-p:BuildProjectReferences=false" ] 600000 |> expectOk "build the ProjectReference consumer" |> ignore
            let refRun = runIn byRef env [ Path.Combine("bin", configuration, "net10.0", "byref.dll") ] 300000 |> expectOk "run the ProjectReference consumer"
            Expect.stringContains refRun "Lstm(4).Dense(1) (" "the network prints its model text and parameters"
            if needsFix () then
                Expect.stringContains refRun (Path.Combine(root, "native-cache")) "an unpatched output loads through the patched copy"

            match cacheBefore, cachedLibTorchSharp () with
            | Some (p, before), _ -> Expect.equal (sha256 p) before $"the NuGet cache's {p} is never modified"
            | None, _ -> ()
    ]
