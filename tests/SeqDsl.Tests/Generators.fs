/// FsCheck generators of valid models: random builder operations, keeping the ones the builder accepts.
module SeqDsl.Tests.Generators

open FsCheck
open FsCheck.FSharp
open SeqDsl.Spec

let private rate = Gen.choose (0, 999) |> Gen.map (fun k -> float k / 1000.0)
let private units = Gen.choose (1, 300)
let private anyEnum<'e when 'e :> System.Enum> () = Gen.elements (System.Enum.GetValues(typeof<'e>) |> Seq.cast<'e> |> List.ofSeq)
let private optionOf g = Gen.oneof [ Gen.constant None; Gen.map Some g ]
let private finite =
    Gen.oneof [ rate; Gen.choose (-5, 5) |> Gen.map float
                ArbMap.defaults |> ArbMap.generate<NormalFloat> |> Gen.map (fun (NormalFloat f) -> f) ]
let private text =
    ArbMap.defaults |> ArbMap.generate<NonNull<string>> |> Gen.map (fun (NonNull s) -> s)

let private nullable (o: 'a option) = match o with Some v -> System.Nullable v | None -> System.Nullable()

type private Op = ModelSpec -> ModelSpec

let private embed : Gen<Op> =
    gen {
        let! dim = units
        let! vocab = optionOf (Gen.choose (1, 20000))
        let! padding = optionOf (Gen.choose (0, 3))
        let! pretrained = optionOf text
        let! trainable = Gen.elements [ true; false ]
        return fun m -> m.Embed(dim, nullable vocab, nullable padding, Option.toObj pretrained, trainable)
    }

let private recurrent : Gen<Op> =
    gen {
        let! u = units
        let! kind = Gen.choose (0, 2)
        let! bias = anyEnum<Bias> ()
        let! rs = optionOf (Gen.elements [ true; false ])
        let! kernel = anyEnum<Kernel> ()
        let! act = Gen.elements [ Activation.Tanh; Activation.Relu; Activation.Linear ]
        let! fb = optionOf finite
        let! peep = Gen.elements [ true; false ]
        let! ln = Gen.elements [ true; false ]
        let! ra = Gen.elements [ true; false ]
        return fun (m: ModelSpec) ->
            match kind with
            | 0 -> m.SimpleRnn(u, act, bias, nullable rs, kernel)
            | 1 -> m.Lstm(u, bias, nullable fb, peep, ln, nullable rs, kernel)
            | _ -> m.Gru(u, ra, bias, nullable rs, kernel)
    }

let private other : Gen<Op> =
    Gen.oneof [
        gen { let! n = Gen.choose (1, 4)
              let! d = Gen.oneof [ Gen.constant 0.0; rate ]
              return fun (m: ModelSpec) -> m.Stack(n, d) }
        gen { let! merge = anyEnum<Merge> ()
              return fun (m: ModelSpec) -> m.Bidirectional(merge) }
        gen { let! r = rate in return fun (m: ModelSpec) -> m.Dropout(r) }
        gen { let! r = rate in return fun (m: ModelSpec) -> m.SpatialDropout(r) }
        gen { let! u = units
              let! a = anyEnum<Activation> ()
              return fun (m: ModelSpec) -> m.Dense(u, a) }
        gen { let! u = optionOf units in return fun (m: ModelSpec) -> m.Attention(nullable u) }
    ]

/// A non-empty valid model built from up to eight random builder calls.
let validModel : Gen<ModelSpec> =
    gen {
        let! first = Gen.oneof [ embed; recurrent; other ]
        let! n = Gen.choose (1, 8)
        let! rest = Gen.listOfLength n (Gen.frequency [ 3, recurrent; 3, other ])
        let apply (m: ModelSpec) (op: Op) = try op m with :? SeqDslException -> m
        let m = List.fold apply ModelSpec.Empty (first :: rest)
        return m
    }
    |> Gen.filter (fun m -> m.Layers.Length > 0)

let validModelArb = Arb.fromGenShrink (validModel, fun _ -> Seq.empty)
