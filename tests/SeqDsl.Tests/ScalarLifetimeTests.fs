/// TorchSharp's Scalar frees its native value in a finalizer. A Scalar made by an implicit conversion
/// (`t.masked_fill(m, 0)`) is referenced by nothing once its handle is read, so in optimised code a garbage collection
/// during the native call can free the value libtorch is reading (CI saw "Expected false to be true" from
/// c10::Scalar::toFloat). TorchSharp's own `a + b`, `a.add_(b)`, `1 - t`, `arange(n)` and its optimizers' steps make
/// such temporaries inside. These tests read the compiled assemblies (Mono.Cecil): SeqDsl's code converts no value to
/// a Scalar implicitly, calls no TorchSharp method that does (directly or through the methods it calls), and every
/// optimizer SeqDsl makes runs a step of SeqDsl's own.
module SeqDsl.Tests.ScalarLifetimeTests

open System
open System.Collections.Generic
open Expecto
open Mono.Cecil
open Mono.Cecil.Cil
open TorchSharp
open SeqDsl.Training

let rec private allTypes (t: TypeDefinition) = seq { yield t; for n in t.NestedTypes do yield! allTypes n }

let private methodsWithBodies (path: string) =
    use asm = AssemblyDefinition.ReadAssembly(path)
    [ for t in asm.MainModule.Types do
        for tt in allTypes t do
            for m in tt.Methods do
                if m.HasBody then
                    let calls = [ for i in m.Body.Instructions do
                                    match i.Operand with
                                    | :? MethodReference as r -> yield r
                                    | _ -> () ]
                    yield m.FullName, calls ]

/// A call that makes a Scalar from a .NET value (the implicit conversion or ToScalar).
let private makesScalar (r: MethodReference) =
    (r.DeclaringType.FullName = "TorchSharp.Scalar" && r.Name = "op_Implicit")
    || (r.DeclaringType.FullName = "TorchSharp.ScalarExtensionMethods" && r.Name = "ToScalar")

let private implicitScalar (r: MethodReference) = r.DeclaringType.FullName = "TorchSharp.Scalar" && r.Name = "op_Implicit"

let private disposesScalar (r: MethodReference) = r.DeclaringType.FullName = "TorchSharp.Scalar" && r.Name = "Dispose"

/// The methods of an assembly that leave a Scalar they made to the finalizer: those that make one and dispose none,
/// and every method that calls such a method (to a fixed point).
let temporaryScalarMethods (path: string) : Set<string> =
    let methods = methodsWithBodies path
    let mutable found =
        methods
        |> List.filter (fun (_, calls) -> List.exists makesScalar calls && not (List.exists disposesScalar calls))
        |> List.map fst |> set
    let mutable grew = true
    while grew do
        grew <- false
        for (name, calls) in methods do
            if not (found.Contains name) && calls |> List.exists (fun r -> found.Contains r.FullName) then
                found <- found.Add name
                grew <- true
    found

/// Every call in the assembly at <paramref name="path"/> that converts to a Scalar implicitly or calls a method of
/// <paramref name="racy"/>, as "caller → callee".
let offences (racy: Set<string>) (path: string) =
    [ for (name, calls) in methodsWithBodies path do
        for r in calls do
            if implicitScalar r || racy.Contains r.FullName then yield sprintf "%s → %s" name r.FullName ]
    |> List.distinct

let private torchSharp = lazy (temporaryScalarMethods typeof<TorchSharp.Scalar>.Assembly.Location)

/// A method whose implicit Scalar the checker must find (never called).
type private Fixture =
    static member Implicit(t: TorchSharp.torch.Tensor) = t.masked_fill(t, TorchSharp.Scalar.op_Implicit 0)
    static member Operator(a: TorchSharp.torch.Tensor, b: TorchSharp.torch.Tensor) = a + b
    static member Held(t: TorchSharp.torch.Tensor) = t.masked_fill(t, SeqDsl.Engine.Kept.Zero)

/// Trains <paramref name="text"/> for three epochs on variable-length rows, optionally while another thread collects
/// garbage and runs finalizers without pause (a Scalar or tensor left to the finalizer would then be freed under a
/// native call); returns the trained parameters' values.
let private train (text: string) (optimizer: OptimizerSpec) (convention: SeqDsl.Spec.Convention) (stress: bool) =
    use net = TorchSupport.compile (SeqDsl.Spec.ModelSyntax.Parse text) (SeqDsl.Spec.InputSpec(Vocab = 9)) convention 5L
    torch.manual_seed 7L |> ignore
    let x = torch.randint(1L, 9L, [| 48L; 10L |], dtype = torch.ScalarType.Int64)
    let lengths = torch.randint(3L, 11L, [| 48L |], dtype = torch.ScalarType.Int64)
    let y = x.eq(torch.tensor 3L).any(1L).to_type(torch.ScalarType.Float32).unsqueeze(1L)
    let mutable stop = false
    let collector = Threading.Thread(fun () ->
        while not (Threading.Volatile.Read &stop) do
            GC.Collect()
            GC.WaitForPendingFinalizers())
    if stress then collector.Start()
    try
        let options = FitOptions(Loss = Loss.Bce, Optimizer = optimizer, Epochs = 3, BatchSize = 16, Shuffle = false, Clip = Clip.ByNorm(1.0))
        let history = Trainer.Fit(net, SequenceData(x, y, lengths), options)
        Expect.isTrue (Double.IsFinite history.Epochs.[2].["loss"]) $"{text}: a finite loss"
        [ for struct (name, p) in net.named_parameters() -> name, TorchSupport.values p ]
    finally
        Threading.Volatile.Write(&stop, true)
        if stress then collector.Join()

[<Tests>]
let tests =
    testList "ScalarLifetime" [
        test "the checker finds TorchSharp's temporaries and a fixture's, and passes held Scalars" {
            let racy = torchSharp.Force()
            for known in [ "TorchSharp.torch/Tensor TorchSharp.torch/Tensor::add(TorchSharp.torch/Tensor)"
                           "TorchSharp.torch/Tensor TorchSharp.torch/Tensor::op_Addition(TorchSharp.torch/Tensor,TorchSharp.torch/Tensor)"
                           "TorchSharp.torch/Tensor TorchSharp.Modules.SGD::step(System.Func`1<TorchSharp.torch/Tensor>)" ] do
                Expect.isTrue (racy.Contains known) $"TorchSharp's {known} leaves a temporary Scalar"
            Expect.isFalse (racy.Contains "TorchSharp.torch/Tensor TorchSharp.torch/Tensor::add(TorchSharp.torch/Tensor,TorchSharp.Scalar)")
                "add with its alpha given makes no Scalar"
            let found = offences racy (Reflection.Assembly.GetExecutingAssembly().Location) |> List.filter (fun s -> s.Contains "Fixture::")
            Expect.equal (found |> List.map (fun s -> s.Substring(s.IndexOf "::" + 2, s.IndexOf '(' - s.IndexOf "::" - 2)) |> List.distinct |> List.sort)
                [ "Implicit"; "Operator" ] $"the fixture's two offences and not its held Scalar ({found})"
        }

        test "SeqDsl's assemblies make no temporary Scalar and call no TorchSharp method that does" {
            let racy = torchSharp.Force()
            let assemblies = [ "SeqDsl"; "SeqDsl.FSharp"; "SeqDsl.Cli"; "SeqDsl.Serving" ] |> List.map (fun n -> Reflection.Assembly.Load n)
            let found = assemblies |> List.collect (fun a -> offences racy a.Location)
            Expect.isEmpty found "calls that leave a Scalar to the finalizer (use SeqDsl.Engine.Kept or ToScalar() under using)"
        }

        test "training under constant garbage collection: no crash, and the weights of a run without it" {
            // the paths that passed temporary Scalars: the padded fused kernel (masked_fill, arange, the rotation's
            // remainder), merges, attention's −∞ mask, the loop kernel's GRU (1 − z) and LSTM sums, clipping, metrics, and
            // the optimizers' tensor code under both rules
            let cases =
                [ "Embed(8).Lstm(16, kernel: Fused).Bidirectional(Ave).Dense(1, Sigmoid)", (OptimizerSpec.Sgd(0.5, 0.9) :> OptimizerSpec), SeqDsl.Spec.Convention.Torch
                  "Embed(8).Gru(16, kernel: Fused).Bidirectional(Sum).Dense(1, Sigmoid)", (OptimizerSpec.AdamW(0.01) :> OptimizerSpec), SeqDsl.Spec.Convention.Torch
                  "Embed(8).Gru(16, kernel: Loop).Dense(1, Sigmoid)", (OptimizerSpec.AdaGrad(0.1) :> OptimizerSpec), SeqDsl.Spec.Convention.Torch
                  "Embed(8).Lstm(16, returnSequences: true, kernel: Loop).Attention().Dense(1, Sigmoid)", (OptimizerSpec.Sgd(0.5, 0.9) :> OptimizerSpec), SeqDsl.Spec.Convention.Keras
                  "Embed(8).Gru(16, resetAfter: false, kernel: Loop).Dense(1, Sigmoid)", (OptimizerSpec.Adam(0.01) :> OptimizerSpec), SeqDsl.Spec.Convention.Torch ]
            for (text, optimizer, convention) in cases do
                let quiet = train text optimizer convention false
                let stressed = train text optimizer convention true
                for ((name, a), (_, b)) in List.zip quiet stressed do
                    Expect.equal b a $"{text}: {name} as without the collector"
        }

        test "every optimizer SeqDsl makes runs a step of its own, not TorchSharp's" {
            let racy = torchSharp.Force()
            use p = new TorchSharp.Modules.Parameter(TorchSharp.torch.ones(3L))
            use table = new TorchSharp.Modules.Parameter(TorchSharp.torch.ones(4L, 2L))
            let specs : OptimizerSpec list =
                [ OptimizerSpec.Sgd(0.1); OptimizerSpec.Sgd(0.1, 0.9); OptimizerSpec.Adam(); OptimizerSpec.AdamW()
                  OptimizerSpec.RmsProp(); OptimizerSpec.AdaGrad() ]
            for spec in specs do
                for rules in [ OptimizerRules.Torch; OptimizerRules.Keras ] do
                    use opt = spec.Create([ p; table ], [ table ], rules)
                    let step = opt.GetType().GetMethod("step", [| typeof<Func<TorchSharp.torch.Tensor>> |])
                    Expect.equal step.DeclaringType.Assembly typeof<OptimizerSpec>.Assembly
                        $"{spec} under {rules}: {opt.GetType().FullName}'s step is SeqDsl's"
                    let name = sprintf "TorchSharp.torch/Tensor %s::step(System.Func`1<TorchSharp.torch/Tensor>)" (step.DeclaringType.FullName.Replace('+', '/'))
                    Expect.isFalse (racy.Contains name) $"{name} is not TorchSharp's"
        }
    ]
