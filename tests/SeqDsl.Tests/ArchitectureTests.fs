/// The dependency arrows of ARCHITECTURE.md: Spec depends on nothing but the BCL.
module SeqDsl.Tests.ArchitectureTests

open System
open System.Reflection
open Expecto
open SeqDsl.Spec

let private specTypes =
    typeof<ModelSpec>.Assembly.GetTypes()
    |> Array.filter (fun t -> t.Namespace = "SeqDsl.Spec")

let rec private mentioned (t: Type) : Type seq =
    seq {
        yield t
        if t.HasElementType then yield! mentioned (t.GetElementType())
        if t.IsGenericType then
            for a in t.GetGenericArguments() do
                yield! mentioned a
    }

let private signatureTypes (t: Type) =
    let flags = BindingFlags.Public ||| BindingFlags.NonPublic ||| BindingFlags.Instance ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly
    seq {
        if not (isNull t.BaseType) then yield t.BaseType
        yield! t.GetInterfaces()
        for f in t.GetFields flags do yield f.FieldType
        for p in t.GetProperties flags do yield p.PropertyType
        for m in t.GetMethods flags do
            yield m.ReturnType
            for p in m.GetParameters() do yield p.ParameterType
        for c in t.GetConstructors flags do
            for p in c.GetParameters() do yield p.ParameterType
    }
    |> Seq.collect mentioned

[<Tests>]
let tests =
    testList "Architecture" [
        test "Spec types mention no TorchSharp type in any signature" {
            Expect.isNonEmpty specTypes "found Spec types"
            let offenders =
                [ for t in specTypes do
                    for s in signatureTypes t do
                        let asm = s.Assembly.GetName().Name
                        if asm.StartsWith("TorchSharp", StringComparison.Ordinal) then
                            yield sprintf "%s -> %s" t.FullName s.FullName ]
            Expect.isEmpty offenders "Spec must not reference TorchSharp"
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
