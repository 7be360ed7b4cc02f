/// Stateful step-by-step inference, decoding, and language-model training with d2l's samplers.
module SeqDsl.Tests.GenerationTests

open System
open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Training
open SeqDsl.Generation
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

let private lm vocab = Model.Embed(8).Lstm(16, returnSequences = true).Stack(2).Dense(vocab)

[<Tests>]
let tests =
    testSequenced <| testList "Generation" [
        test "feeding tokens one by one with carried state equals one pass over the sequence" {
            for model in [ lm 6; Model.Gru(5, returnSequences = true).SimpleRnn(4, Activation.Linear, returnSequences = true).Dense(6, Activation.Softmax) ] do
                let oneHot = not (model.Layers.[0] :? EmbedLayer)
                use net = compile model (InputSpec(Vocab = 6, Features = 6)) Convention.Torch 3L
                net.eval()
                let tokens = [| 1L; 4L; 2L; 5L; 0L |]
                use ids = torch.tensor(tokens).unsqueeze(0L)
                use x = if oneHot then torch.nn.functional.one_hot(ids, 6L).to_type(torch.ScalarType.Float32) else ids.alias()
                use whole = net.forward x
                use runner = new StatefulRunner(net)
                for t in 0 .. tokens.Length - 1 do
                    use step = runner.Next [| tokens.[t] |]
                    Expect.isLessThan (maxDiff step (whole.select(1, int64 t))) 1e-5f $"{model}: step {t}"
        }

        test "runner batches several sequences and resets" {
            use net = compile (lm 6) (InputSpec(Vocab = 6)) Convention.Torch 3L
            use runner = new StatefulRunner(net)
            use a = runner.Next [| 1L; 2L |]
            Expect.equal (List.ofArray a.shape) [ 2L; 6L ] "(B, V)"
            runner.Reset()
            use b = runner.Next [| 1L; 2L |]
            Expect.isLessThan (maxDiff a b) 1e-6f "same after reset"
        }

        test "the runner evaluates without dropout and gives the network back in its training mode" {
            use net = compile (Model.Embed(8).Lstm(16, returnSequences = true).Dropout(0.5).Dense(6)) (InputSpec(Vocab = 6)) Convention.Torch 3L
            net.train()
            do
                use runner = new StatefulRunner(net)
                Expect.isFalse net.training "evaluation mode while running"
                use a = runner.Next [| 1L |]
                runner.Reset()
                use b = runner.Next [| 1L |]
                Expect.isLessThan (maxDiff a b) 1e-6f "no dropout: the same output twice"
            Expect.isTrue net.training "training mode restored on dispose"
        }

        test "many-to-one and bidirectional models are refused for step-by-step inference" {
            use net = compile (Model.Embed(4).Lstm(3).Dense(2)) (InputSpec(Vocab = 6)) Convention.Torch 3L
            let e = expectSeqDslError "many-to-one" (fun () -> new StatefulRunner(net))
            Expect.stringContains e.Message "output per time step" "reason"
            use bi = compile (Model.Embed(4).Lstm(3, returnSequences = true).Bidirectional().Dense(2)) (InputSpec(Vocab = 6)) Convention.Torch 3L
            let e2 = expectSeqDslError "bidirectional" (fun () -> new StatefulRunner(bi))
            Expect.equal e2.LayerIndex (System.Nullable 1) "names the layer"
        }

        test "decoding: prefix kept, greedy deterministic, top-k 1 = greedy, sampling seeded" {
            use net = compile (lm 6) (InputSpec(Vocab = 6)) Convention.Torch 3L
            let g = Decoding.Generate(net, [| 1; 2 |], 8, DecodeOptions.ArgMax)
            Expect.equal g.Length 10 "prefix + 8"
            Expect.equal g.[0..1] [| 1; 2 |] "prefix"
            Expect.equal (Decoding.Generate(net, [| 1; 2 |], 8, DecodeOptions.ArgMax)) g "greedy is deterministic"
            Expect.equal (Decoding.Generate(net, [| 1; 2 |], 8, DecodeOptions.Sample(1.0, topK = 1, seed = 5))) g "top-k 1 is greedy"
            let s1 = Decoding.Generate(net, [| 1 |], 20, DecodeOptions.Sample(1.5, seed = 7))
            let s2 = Decoding.Generate(net, [| 1 |], 20, DecodeOptions.Sample(1.5, seed = 7))
            Expect.equal s1 s2 "same seed, same text"
            Expect.notEqual (Decoding.Generate(net, [| 1 |], 20, DecodeOptions.Sample(1.5, seed = 8))) s1 "another seed, another text"
        }

        test "top-p keeps the smallest set reaching p" {
            use probs = torch.tensor([| 0.05; 0.6; 0.3; 0.05 |])
            let picks = [ for s in 0 .. 199 -> Decoding.Choose(probs, true, DecodeOptions.Sample(1.0, topP = 0.85), Random s) ] |> Set.ofList
            Expect.equal picks (set [ 1; 2 ]) "only the two tokens that make up 0.9 ≥ 0.85"
            let e = expectSeqDslError "bad" (fun () -> Decoding.Generate(null, [| 1 |], 1, DecodeOptions.Sample(0.0)))
            Expect.stringContains e.Message "Invalid decoding option temperature" "validation names the option"
        }

        test "language model learns a periodic corpus with both samplers (perplexity → 1)" {
            let corpus = [| for i in 0 .. 2999 -> i % 7 |]
            for sampling in [ Sampling.Consecutive; Sampling.Random ] do
                use net = compile (Model.Gru(24, returnSequences = true).Dense(7)) (InputSpec(Features = 7)) Convention.Torch 2L
                let h = LanguageModelTrainer.Fit(net, corpus, LanguageModelOptions(Epochs = 15, BatchSize = 8, Steps = 10, Sampling = sampling,
                                                                                   Optimizer = OptimizerSpec.Adam(1e-2), Clip = Clip.ByNorm(1.0), Seed = 1))
                Expect.isGreaterThan (h.Epochs.[0].["perplexity"]) 2.0 $"{sampling}: starts uncertain"
                Expect.isLessThan (h.Epochs.[14].["perplexity"]) 1.1 $"{sampling}: learns the cycle"
                Expect.floatClose Accuracy.high (h.Epochs.[14].["perplexity"]) (exp h.Epochs.[14].["loss"]) "perplexity = exp(loss)"
                Expect.equal (Decoding.Generate(net, [| 3 |], 6, DecodeOptions.ArgMax)) [| 3; 4; 5; 6; 0; 1; 2 |] $"{sampling}: continues the cycle"
        }
    ]
