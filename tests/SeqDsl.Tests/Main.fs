module SeqDsl.Tests.Main

open System.Runtime.InteropServices
open Expecto

[<DllImport("libc", SetLastError = true)>]
extern int setenv(string name, string value, int overwrite)

[<EntryPoint>]
let main argv =
    // Expecto runs test lists in parallel and every libtorch call spins OpenMP threads while it
    // waits; on a 2-core machine spinning threads of parallel tests starve each other. Passive
    // waiting (unless the caller chose otherwise) keeps the suite fast. It must reach the native
    // environment before libgomp loads, hence setenv rather than Environment.SetEnvironmentVariable.
    if System.OperatingSystem.IsLinux() then setenv ("OMP_WAIT_POLICY", "PASSIVE", 0) |> ignore
    // libtorch's process-wide switches (oneDNN RNN path off) and the allocator policy, as the CLI sets them
    // Auto's kernel probe times kernels, so its choice could differ between runs: off for the suite (and the CLI
    // processes it starts) unless the caller set it; KernelProbeTests turn it on for their own thread, with a cache
    // folder of their own
    if isNull (System.Environment.GetEnvironmentVariable "SEQDSL_KERNEL_PROBE") then
        System.Environment.SetEnvironmentVariable("SEQDSL_KERNEL_PROBE", "0")
    if isNull (System.Environment.GetEnvironmentVariable "SEQDSL_CACHE_DIR") then
        System.Environment.SetEnvironmentVariable("SEQDSL_CACHE_DIR", System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"seqdsl-tests-cache-{System.Environment.ProcessId}"))
    SeqDsl.Engine.Backend.UseMemoryPolicy() |> ignore
    SeqDsl.Engine.Backend.Initialize()
    Tests.runTestsInAssemblyWithCLIArgs [] argv
