/// TorchSharp's Scalar frees its native value in a finalizer. A Scalar made by an implicit conversion
/// (`t.masked_fill(m, 0)`) is referenced by nothing once its handle is read, so in optimised code a garbage collection
/// during the native call can free the value libtorch is reading (the likely cause of two CI failures, "Expected false
/// to be true" from c10::Scalar::toFloat). TorchSharp's own `a + b`, `a.add_(b)`, `1 - t`, `arange(n)` and its
/// optimizers' steps make such temporaries inside. These tests read the compiled assemblies (Mono.Cecil):
/// - SeqDsl's code converts no value to a Scalar implicitly, and disposes (with `using`) as many Scalars as it makes
///   with ToScalar in each method (static constructors aside: their Scalars are static fields, as Kept's);
/// - it calls no TorchSharp method that makes a Scalar it does not dispose, nor one that calls such a method
///   directly or through the methods it calls. Calls through a virtual method are not followed (TorchSharp's Adagrad
///   constructor made a temporary in State.Initialize, reached that way; SeqDsl's Adagrad adds its groups itself);
/// - the TorchSharp modules SeqDsl makes (Linear, LSTM, …) have forwards that make no temporary, and every optimizer
///   SeqDsl makes runs a step declared in SeqDsl (both reached through virtual calls).
module SeqDsl.Tests.ScalarLifetimeTests

open System
open System.IO
open Expecto
open Mono.Cecil
open Mono.Cecil.Cil
open TorchSharp
open SeqDsl.Training

let rec private allTypes (t: TypeDefinition) = seq { yield t; for n in t.NestedTypes do yield! allTypes n }

/// The name a call is known by: the called method's definition when it is TorchSharp's (a call to a method of a
/// generic type names the instance, `Module`2<Tensor,Tensor>::call`, not the definition), else the reference's name.
let private target (r: MethodReference) =
    let d =
        if r.DeclaringType.Scope.Name.StartsWith("TorchSharp", StringComparison.Ordinal) then
            try r.Resolve() with _ -> null
        else null
    if isNull d then r.FullName else d.FullName

let private isScalar (t: TypeReference) = not (isNull t) && t.FullName = "TorchSharp.Scalar"

/// A call that makes a Scalar: an implicit conversion, or a ToScalar (of a .NET value or of a one-element tensor).
let private makesScalar (r: MethodReference) =
    r.Name = "op_Implicit" && r.DeclaringType.FullName = "TorchSharp.Scalar"
    || r.Name = "ToScalar" && isScalar r.ReturnType

/// The local an instruction names, if it is one of <paramref name="shortForms"/> (local 0 to 3) or
/// <paramref name="longForms"/> (the local as operand).
let private localOf (m: MethodDefinition) (shortForms: Code list) (longForms: Code list) (i: Instruction) : VariableDefinition option =
    let v = m.Body.Variables
    match List.tryFindIndex ((=) i.OpCode.Code) shortForms with
    | Some k -> if k < v.Count then Some v.[k] else None
    | None when List.contains i.OpCode.Code longForms ->
        match i.Operand with
        | :? VariableDefinition as d -> Some d
        | _ -> None
    | None -> None

/// The local an instruction loads, if it loads one.
let private loadedLocal m = localOf m [ Code.Ldloc_0; Code.Ldloc_1; Code.Ldloc_2; Code.Ldloc_3 ] [ Code.Ldloc; Code.Ldloc_S ]

/// The local an instruction stores, if it stores one.
let private storedLocal m = localOf m [ Code.Stloc_0; Code.Stloc_1; Code.Stloc_2; Code.Stloc_3 ] [ Code.Stloc; Code.Stloc_S ]

/// Whether a local holds a Scalar: it is typed Scalar, or it is an IDisposable stored from `isinst IDisposable` of a
/// Scalar local (F#'s `use` compiles to that).
let private holdsScalar (m: MethodDefinition) (d: VariableDefinition) =
    isScalar d.VariableType
    || d.VariableType.FullName = "System.IDisposable"
       && m.Body.Instructions |> Seq.exists (fun st ->
           storedLocal m st = Some d
           && not (isNull st.Previous) && st.Previous.OpCode.Code = Code.Isinst
           && not (isNull st.Previous.Previous)
           && (match loadedLocal m st.Previous.Previous with
               | Some s -> isScalar s.VariableType
               | None -> false))

/// A Dispose call on a Scalar: Scalar.Dispose, or IDisposable.Dispose (what `using` compiles to) on a local that holds
/// a Scalar (the instruction before the call loads it).
let private disposesScalar (m: MethodDefinition) (i: Instruction) (r: MethodReference) =
    r.Name = "Dispose"
    && (r.DeclaringType.FullName = "TorchSharp.Scalar"
        || r.DeclaringType.FullName = "System.IDisposable"
           && not (isNull i.Previous)
           && (match loadedLocal m i.Previous with
               | Some d -> holdsScalar m d
               | None -> false))

/// A method with a body, read while its assembly is open.
type private Body =
    { Name: string
      /// The names of the methods it calls (see target).
      Calls: string list
      /// Implicit conversions to a Scalar it makes.
      Implicit: int
      /// Scalars it makes (implicit conversions and ToScalar) and Scalars it disposes.
      Made: int
      Disposed: int
      /// Its type's static constructor (whose Scalars become static fields).
      StaticConstructor: bool }

/// The assembly at <paramref name="path"/>, its references (TorchSharp's among them) resolvable.
let private read (path: string) =
    let resolver = new DefaultAssemblyResolver()
    resolver.AddSearchDirectory(Path.GetDirectoryName path)
    resolver.AddSearchDirectory(Path.GetDirectoryName typeof<TorchSharp.Scalar>.Assembly.Location)
    AssemblyDefinition.ReadAssembly(path, ReaderParameters(AssemblyResolver = resolver))

/// Every method with a body in the assembly at <paramref name="path"/>.
let private bodies (path: string) =
    use asm = read path
    [ for t in asm.MainModule.Types do
        for tt in allTypes t do
            for m in tt.Methods do
                if m.HasBody then
                    let calls = [ for i in m.Body.Instructions do
                                    match i.Operand with
                                    | :? MethodReference as r -> yield i, r
                                    | _ -> () ]
                    yield { Name = m.FullName
                            Calls = calls |> List.map (snd >> target)
                            Implicit = calls |> List.filter (fun (_, r) -> r.Name = "op_Implicit" && r.DeclaringType.FullName = "TorchSharp.Scalar") |> List.length
                            Made = calls |> List.filter (snd >> makesScalar) |> List.length
                            Disposed = calls |> List.filter (fun (i, r) -> disposesScalar m i r) |> List.length
                            StaticConstructor = m.IsConstructor && m.IsStatic } ]

/// The methods of an assembly that leave a Scalar they made to the finalizer (they make more Scalars than they
/// dispose), and every method that calls such a method (to a fixed point).
let temporaryScalarMethods (path: string) : Set<string> =
    let methods = bodies path
    let mutable found = methods |> List.filter (fun b -> b.Made > b.Disposed) |> List.map (fun b -> b.Name) |> set
    let mutable grew = true
    while grew do
        grew <- false
        for b in methods do
            if not (found.Contains b.Name) && b.Calls |> List.exists found.Contains then
                found <- found.Add b.Name
                grew <- true
    found

/// Every offence in the assembly at <paramref name="path"/>, as "method → what": an implicit conversion to a Scalar,
/// a call into <paramref name="racy"/>, or more Scalars made than disposed (static constructors aside: their Scalars
/// are static fields, which live as long as the process).
let offences (racy: Set<string>) (path: string) =
    [ for b in bodies path do
        if b.Implicit > 0 then yield sprintf "%s → %d implicit conversions to Scalar" b.Name b.Implicit
        for c in b.Calls do
            if racy.Contains c then yield sprintf "%s → %s" b.Name c
        if not b.StaticConstructor && b.Made > b.Disposed then
            yield sprintf "%s → %d Scalars made, %d disposed" b.Name b.Made b.Disposed ]
    |> List.distinct

let private torchSharp = lazy (temporaryScalarMethods typeof<TorchSharp.Scalar>.Assembly.Location)

/// Methods whose offences the checker must find, and one it must pass (never called).
type private Fixture =
    static member Implicit(t: TorchSharp.torch.Tensor) = t.masked_fill(t, TorchSharp.Scalar.op_Implicit 0)
    static member Operator(a: TorchSharp.torch.Tensor, b: TorchSharp.torch.Tensor) = a + b
    static member Undisposed(t: TorchSharp.torch.Tensor) = t.masked_fill(t, (0.5).ToScalar())
    static member UndisposedInScope(t: TorchSharp.torch.Tensor) =
        use _scope = torch.NewDisposeScope()
        use tensor = t.clone()
        tensor.masked_fill(t, (0.5).ToScalar())
    static member Held(t: TorchSharp.torch.Tensor) =
        use half = (0.5).ToScalar()
        t.masked_fill(t, SeqDsl.Engine.Kept.Zero).masked_fill(t, half)

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
                [ "Implicit"; "Operator"; "Undisposed"; "UndisposedInScope" ] $"the fixture's four offences and not its held Scalars ({found})"
        }

        test "SeqDsl's assemblies make no temporary Scalar and call no TorchSharp method that does" {
            let racy = torchSharp.Force()
            let assemblies = [ "SeqDsl"; "SeqDsl.FSharp"; "SeqDsl.Cli"; "SeqDsl.Serving" ] |> List.map (fun n -> Reflection.Assembly.Load n)
            let found = assemblies |> List.collect (fun a -> offences racy a.Location)
            Expect.isEmpty found "calls that leave a Scalar to the finalizer (use SeqDsl.Engine.Kept or ToScalar() under using)"
        }

        test "training under constant garbage collection: no crash, and the weights of a run without it" {
            // many of the paths that passed temporary Scalars: the padded fused kernel (masked_fill, arange, the
            // rotation's remainder), merges, attention's −∞ mask, the loop kernel's GRU (1 − z) and LSTM sums, clipping,
            // the BCE loss and accuracy, SGD, AdamW, Adagrad and Keras's SGD. It did not reproduce the race on the engine
            // before the change (docs/BENCHMARKS.md, sixteenth pass): it guards against crashes and changed results only
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

        test "the TorchSharp modules SeqDsl makes run forwards that make no temporary Scalar" {
            // a module's forward is reached through a virtual call (Module.call), which the scan above does not follow:
            // every TorchSharp type SeqDsl constructs or gets from a factory (nn.Linear, nn.LSTM, …) is checked here
            let racy = torchSharp.Force()
            use asm = read (Reflection.Assembly.Load "SeqDsl").Location
            let made =
                [ for t in asm.MainModule.Types do
                    for tt in allTypes t do
                        for m in tt.Methods do
                            if m.HasBody then
                                for i in m.Body.Instructions do
                                    match i.Operand with
                                    | :? MethodReference as r when r.DeclaringType.Scope.Name = "TorchSharp" ->
                                        let made = if r.Name = ".ctor" then r.DeclaringType else r.ReturnType
                                        if made.Namespace = "TorchSharp.Modules" then
                                            match (try made.Resolve() with _ -> null) with
                                            | null -> ()
                                            | d -> yield d
                                    | _ -> () ]
                |> List.distinctBy (fun d -> d.FullName)
            Expect.isTrue (made |> List.exists (fun d -> d.Name = "Linear")) $"the engine's Linear is among the modules found ({made |> List.map (fun d -> d.Name)})"
            let rec forwards (d: TypeDefinition) =
                [ for m in d.Methods do
                    if m.Name = "forward" then yield m.FullName
                  match d.BaseType with
                  | null -> ()
                  | b when b.Scope.Name = "TorchSharp" ->
                      match (try b.Resolve() with _ -> null) with
                      | null -> ()
                      | bd -> yield! forwards bd
                  | _ -> () ]
            use torchSharpAsm = read typeof<TorchSharp.Scalar>.Assembly.Location
            let leaky = torchSharpAsm.MainModule.GetType "TorchSharp.Modules.LeakyReLU"
            Expect.isTrue (forwards leaky |> List.exists racy.Contains) "the check would find LeakyReLU's forward (its slope is a temporary)"
            let found = [ for d in made do for f in forwards d do if racy.Contains f then yield f ]
            Expect.isEmpty found "forwards of TorchSharp modules SeqDsl makes that leave a Scalar to the finalizer"
        }

        test "every optimizer SeqDsl makes runs a step of its own, not TorchSharp's" {
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
        }
    ]
