/// The dependency arrows of docs/ARCHITECTURE.md, checked on the compiled assemblies: SeqDsl.Core references no
/// TorchSharp; within SeqDsl.Core and SeqDsl, a namespace uses only the namespaces below it — in signatures and in
/// method bodies (read with Mono.Cecil, so a `using` or a fully qualified name inside a method counts).
module SeqDsl.Tests.ArchitectureTests

open System
open System.Reflection
open Expecto
open Mono.Cecil

open SeqDsl.Spec

/// Layer → the layers it may use (besides itself). The root namespace SeqDsl holds the fluent entry point Model.
let allowed : Map<string, Set<string>> =
    Map [
        "Spec", set []
        "", set [ "Spec" ]
        "Data", set [ "Spec" ]
        "Engine", set [ "Spec" ]
        "Training", set [ "Spec"; "Data"; "Engine" ]
        "Generation", set [ "Spec"; "Engine" ]
        "Diagnostics", set [ "Spec"; "Engine"; "Training" ]
        "Workflows", set [ "Spec"; "Data"; "Engine"; "Training"; "Generation"; "Diagnostics"; "" ]
        "Export", set [ "Spec"; "Data"; "Engine"; "Training"; "Workflows" ]
    ]

let rec private topLevel (t: TypeReference) = if isNull t.DeclaringType then t else topLevel t.DeclaringType

/// Every type a type reference names: itself, its element type, its generic arguments.
let rec private expand (t: TypeReference) : TypeReference seq =
    seq {
        if not (isNull t) then
            match t with
            | :? GenericInstanceType as g ->
                yield! expand g.ElementType
                for a in g.GenericArguments do yield! expand a
            | :? TypeSpecification as s -> yield! expand s.ElementType
            | :? GenericParameter -> ()
            | _ -> yield t
    }

/// The types attributes name: the attribute itself and typeof(…) arguments.
let private attributeTypes (provider: ICustomAttributeProvider) : TypeReference seq =
    seq {
        if provider.HasCustomAttributes then
            for a in provider.CustomAttributes do
                yield! expand a.AttributeType
                for arg in Seq.append a.ConstructorArguments (Seq.append (a.Properties |> Seq.map (fun p -> p.Argument)) (a.Fields |> Seq.map (fun f -> f.Argument))) do
                    match arg.Value with
                    | :? TypeReference as r -> yield! expand r
                    | _ -> ()
    }

let private constraintTypes (provider: IGenericParameterProvider) : TypeReference seq =
    seq {
        if provider.HasGenericParameters then
            for g in provider.GenericParameters do
                for c in g.Constraints do yield! expand c.ConstraintType
    }

/// The types a type definition uses: base, interfaces, attributes, generic constraints, fields, properties, events,
/// method signatures, locals, catch clauses and every type, method or field an instruction names; nested
/// (compiler-generated) types count for their outer type. (Unused `using`s and inlined constants leave nothing in the
/// compiled assembly, so they are not seen.)
let rec private uses (t: TypeDefinition) : TypeReference seq =
    seq {
        yield! expand t.BaseType
        for i in t.Interfaces do yield! expand i.InterfaceType
        yield! attributeTypes t
        yield! constraintTypes t
        for f in t.Fields do
            yield! expand f.FieldType
            yield! attributeTypes f
        for p in t.Properties do
            yield! expand p.PropertyType
            yield! attributeTypes p
        for e in t.Events do yield! expand e.EventType
        for m in t.Methods do
            yield! expand m.ReturnType
            yield! attributeTypes m
            yield! constraintTypes m
            for p in m.Parameters do
                yield! expand p.ParameterType
                yield! attributeTypes p
            if m.HasBody then
                for v in m.Body.Variables do yield! expand v.VariableType
                for h in m.Body.ExceptionHandlers do yield! expand h.CatchType
                for ins in m.Body.Instructions do
                    match ins.Operand with
                    | :? TypeReference as r -> yield! expand r
                    | :? MethodReference as r ->
                        yield! expand r.DeclaringType
                        yield! expand r.ReturnType
                        for p in r.Parameters do yield! expand p.ParameterType
                        match r with
                        | :? GenericInstanceMethod as g -> for a in g.GenericArguments do yield! expand a
                        | _ -> ()
                    | :? FieldReference as r ->
                        yield! expand r.DeclaringType
                        yield! expand r.FieldType
                    | _ -> ()
        for n in t.NestedTypes do yield! uses n
    }

/// The layer of a namespace under a prefix: SeqDsl.Training.X → "Training", SeqDsl → ""; None outside the prefix.
let private layerOf (prefix: string) (ns: string) =
    if ns = prefix then Some ""
    elif ns.StartsWith(prefix + ".", StringComparison.Ordinal) then Some(ns.Substring(prefix.Length + 1).Split('.').[0])
    else None

/// Every use of one layer by another that <paramref name="rules"/> does not allow, as "A.Type → B.Type".
let backArrows (prefix: string) (rules: Map<string, Set<string>>) (assemblyPath: string) =
    use asm = AssemblyDefinition.ReadAssembly(assemblyPath)
    [ for t in asm.MainModule.Types do
        match layerOf prefix t.Namespace with
        | Some from when rules.ContainsKey from ->
            for r in uses t |> Seq.distinctBy (fun r -> r.FullName) do
                match layerOf prefix (topLevel r).Namespace with
                | Some target when target <> from && not (rules.[from].Contains target) ->
                    yield sprintf "%s (%s) → %s (%s)" t.FullName from r.FullName target
                | _ -> ()
        | Some from -> yield sprintf "%s: layer '%s' has no rule in docs/ARCHITECTURE.md" t.FullName from
        | None -> () ]
    |> List.distinct

let private path (a: Assembly) = a.Location
let private core = typeof<ModelSpec>.Assembly
let private engine = typeof<SeqDsl.Engine.Network>.Assembly

let private specTypes = core.GetTypes() |> Array.filter (fun t -> t.Namespace = "SeqDsl.Spec")

[<Tests>]
let tests =
    testList "Architecture" [
        test "SeqDsl.Core references no TorchSharp, ScottPlot or SeqDsl engine assembly" {
            Expect.equal (core.GetName().Name) "SeqDsl.Core" "Spec lives in SeqDsl.Core"
            let refs = core.GetReferencedAssemblies() |> Array.map (fun a -> a.Name) |> List.ofArray
            let foreign =
                refs |> List.filter (fun n ->
                    not (n = "netstandard" || n.StartsWith("System", StringComparison.Ordinal) || n = "Microsoft.Data.Analysis"))
            Expect.isEmpty foreign (sprintf "SeqDsl.Core references only the BCL and Microsoft.Data.Analysis (it references %A)" refs)
        }

        test "the checker finds back-arrows that only a method body or an attribute holds" {
            let found = backArrows "SeqDsl.Tests.ArchitectureFixture" allowed (Assembly.GetExecutingAssembly().Location) |> List.sort
            Expect.equal found
                [ "SeqDsl.Tests.ArchitectureFixture.Data.LoaderLike (Data) → SeqDsl.Tests.ArchitectureFixture.Training.TrainerLike (Training)"
                  "SeqDsl.Tests.ArchitectureFixture.Spec.Tagged (Spec) → SeqDsl.Tests.ArchitectureFixture.Training.TrainerLike (Training)" ]
                "the fixture's Data → Training and Spec → Training uses, and nothing from the clean Engine type"
        }

        test "SeqDsl.Serving references neither engine: no TorchSharp, no ONNX Runtime, no SeqDsl engine assembly" {
            let serving = typeof<SeqDsl.Serving.ModelService>.Assembly
            let refs = serving.GetReferencedAssemblies() |> Array.map (fun a -> a.Name) |> List.ofArray
            let foreign =
                refs |> List.filter (fun n ->
                    not (n = "netstandard" || n.StartsWith("System", StringComparison.Ordinal) || n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal)
                         || n.StartsWith("Microsoft.Extensions", StringComparison.Ordinal) || n = "Microsoft.Data.Analysis" || n = "SeqDsl.Core"))
            Expect.isEmpty foreign (sprintf "SeqDsl.Serving references only the BCL, ASP.NET Core and SeqDsl.Core (it references %A)" refs)
        }

        test "SeqDsl.Core: every namespace uses only the layers below it" {
            Expect.isEmpty (backArrows "SeqDsl" allowed (path core)) "back-arrows"
        }

        test "SeqDsl: every namespace uses only the layers below it" {
            Expect.isEmpty (backArrows "SeqDsl" allowed (path engine)) "back-arrows"
        }

        test "Spec records are immutable: no public setters except init" {
            let mutableProps =
                [ for t in specTypes do
                    if not t.IsEnum && not (typeof<Exception>.IsAssignableFrom t) then
                        for p in t.GetProperties(BindingFlags.Public ||| BindingFlags.Instance ||| BindingFlags.DeclaredOnly) do
                            match p.SetMethod with
                            | null -> ()
                            | setter when setter.IsPublic ->
                                let isInit =
                                    setter.ReturnParameter.GetRequiredCustomModifiers()
                                    |> Array.exists (fun m -> m.FullName = "System.Runtime.CompilerServices.IsExternalInit")
                                if not isInit then yield sprintf "%s.%s" t.Name p.Name
                            | _ -> () ]
            Expect.isEmpty mutableProps "public mutable properties"
        }
    ]
