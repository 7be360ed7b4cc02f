/// libtorch loads on this machine (the libstdc++ fix in the build works) and learns.
module SeqDsl.Tests.EngineBringUpTests

open System
open System.IO
open System.Text
open Expecto
open TorchSharp

/// Reads the vna_flags of the GLIBCXX_3.4.32 need in an ELF64 file, independently of the build task.
let private glibcxx32Flags (path: string) : int option =
    let b = File.ReadAllBytes path
    let u16 (o: int64) = int b.[int o] ||| (int b.[int o + 1] <<< 8)
    let u32 (o: int64) = int64 (BitConverter.ToUInt32(b, int o))
    let u64 (o: int64) = BitConverter.ToInt64(b, int o)
    let cstr (o: int64) =
        let mutable e = int o
        while b.[e] <> 0uy do e <- e + 1
        Encoding.ASCII.GetString(b, int o, e - int o)
    let shoff, shnum = u64 0x28L, u16 0x3CL
    let sec i = shoff + int64 i * 64L
    seq {
        for i in 0 .. shnum - 1 do
            if u32 (sec i + 4L) = 0x6ffffffeL then
                let strtab = u64 (sec (int (u32 (sec i + 0x28L))) + 0x18L)
                let mutable vn = u64 (sec i + 0x18L)
                for _ in 1 .. int (u32 (sec i + 0x2CL)) do
                    let mutable aux = vn + u32 (vn + 8L)
                    for _ in 1 .. u16 (vn + 2L) do
                        if cstr (strtab + u32 (aux + 8L)) = "GLIBCXX_3.4.32" then yield u16 (aux + 4L)
                        aux <- aux + u32 (aux + 12L)
                    vn <- vn + u32 (vn + 12L)
    }
    |> Seq.tryHead

let private systemHasGlibcxx32 () =
    [ "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"; "/lib/x86_64-linux-gnu/libstdc++.so.6"; "/usr/lib64/libstdc++.so.6" ]
    |> List.tryFind File.Exists
    |> Option.map (fun p -> let bytes = File.ReadAllBytes p in Encoding.ASCII.GetString(bytes).Contains("GLIBCXX_3.4.32\000"))

[<Tests>]
let tests =
    testSequenced <| testList "EngineBringUp" [
        test "the build output's libLibTorchSharp.so has its GLIBCXX_3.4.32 need weak where the system lacks it" {
            if OperatingSystem.IsLinux() then
                let lib = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")
                Expect.isTrue (File.Exists lib) $"{lib} exists"
                match systemHasGlibcxx32 (), glibcxx32Flags lib with
                | Some false, Some flags -> Expect.equal (flags &&& 2) 2 "VER_FLG_WEAK set"
                | Some true, _ -> skiptest "system libstdc++ defines GLIBCXX_3.4.32; no patch needed"
                | _, None -> skiptest "this TorchSharp build has no GLIBCXX_3.4.32 need"
                | None, _ -> skiptest "no system libstdc++ found at the usual paths"
            else skiptest "Linux only"
        }

        test "libtorch loads and computes" {
            use t = torch.arange(6L, dtype = torch.ScalarType.Float32).reshape(2L, 3L)
            use s = t.sum()
            Expect.equal (s.item<float32> ()) 15.0f "0+1+…+5"
        }

        test "a tiny LSTM learns: loss after 60 Adam steps is below half the first" {
            torch.manual_seed 7L |> ignore
            use lstm = torch.nn.LSTM(3L, 8L, batchFirst = true)
            use head = torch.nn.Linear(8L, 1L)
            let ps = Seq.append (lstm.parameters()) (head.parameters())
            use opt = torch.optim.Adam(ps, lr = 0.02)
            // task: predict the sum of the last step's features
            use x = torch.rand(32L, 5L, 3L)
            use y = x.select(1, 4L).sum(1L, keepdim = true)
            let step () =
                use scope = torch.NewDisposeScope()
                opt.zero_grad()
                let struct (out, _, _) = lstm.forward(x, System.Nullable())
                let pred = head.forward(out.select(1, -1L))
                let loss = torch.nn.functional.mse_loss(pred, y)
                loss.backward()
                SeqDsl.Tests.Support.referenceStep opt
                loss.item<float32> ()
            let first = step ()
            let mutable last = first
            for _ in 2 .. 60 do last <- step ()
            Expect.isLessThan last (first / 2.0f) $"first {first}, last {last}"
        }
    ]
