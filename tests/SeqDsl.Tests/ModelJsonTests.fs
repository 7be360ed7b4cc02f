/// The JSON form of a model: round-trip and errors with a JSON path.
module SeqDsl.Tests.ModelJsonTests

open Expecto
open FsCheck.FSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Tests.Support

[<Tests>]
let tests =
    testList "ModelJson" [
        test "a model round-trips and the JSON is readable" {
            let m = Model.Embed(32, vocab = 8000).Lstm(64).Stack(2, 0.1).Bidirectional(Merge.Sum).Dense(1, Activation.Sigmoid)
            let json = ModelJson.ToJson m
            Expect.stringContains json "\"layer\": \"Recurrent\"" "discriminator"
            Expect.stringContains json "\"cell\": \"Lstm\"" "cell discriminator"
            Expect.stringContains json "\"bidirectional\": \"Sum\"" "enum as name"
            Expect.equal (ModelJson.FromJson json) m "round-trip"
        }

        test "hand-written JSON in any property order" {
            let json = """{ "layers": [ { "dim": 8, "layer": "Embed", "vocab": 50 },
                                          { "units": 4, "cell": { "resetAfter": false, "cell": "Gru" }, "layer": "Recurrent" },
                                          { "layer": "Dense", "units": 1, "activation": "Sigmoid" } ] }"""
            Expect.equal (ModelJson.FromJson json) (Model.Embed(8, vocab = 50).Gru(4, resetAfter = false).Dense(1, Activation.Sigmoid)) "parsed"
        }

        test "malformed JSON names the path" {
            let e = expectSeqDslError "bad type" (fun () -> ModelJson.FromJson """{ "layers": [ { "layer": "Dense", "units": "three" } ] }""")
            Expect.stringContains e.Message "$.layers[0].units" "path"
            Expect.equal e.Kind ErrorKind.Syntax "syntax"
        }

        test "unknown member is rejected with its path" {
            let e = expectSeqDslError "unknown" (fun () -> ModelJson.FromJson """{ "layers": [ { "layer": "Dense", "units": 3, "activaton": "Relu" } ] }""")
            Expect.stringContains e.Message "activaton" "names the member"
        }

        test "unknown layer discriminator" {
            expectSeqDslError "unknown layer" (fun () -> ModelJson.FromJson """{ "layers": [ { "layer": "Conv", "units": 3 } ] }""") |> ignore
        }

        test "an invalid model in JSON is validated like the builder, with the layer path" {
            let e = expectSeqDslError "embed second" (fun () ->
                ModelJson.FromJson """{ "layers": [ { "layer": "Dense", "units": 3 }, { "layer": "Embed", "dim": 4 } ] }""")
            Expect.stringContains e.Message "$.layers[1]" "path"
            Expect.stringContains e.Message "must be the first layer" "reason"
        }

        testPropertyWithConfig { FsCheckConfig.defaultConfig with maxTest = 300 }
            "FromJson(ToJson(m)) = m for generated valid models"
            (Prop.forAll Generators.validModelArb (fun m -> ModelJson.FromJson(ModelJson.ToJson m) = m))
    ]
