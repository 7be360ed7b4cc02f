/// The loop kernel against libtorch's fused kernels: same weights, same outputs and gradients.
module SeqDsl.Tests.LoopKernelTests

open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec
open SeqDsl.Tests.TorchSupport

let private pair (fused: ModelSpec) (loop: ModelSpec) input =
    let f = compile fused input Convention.Torch 11L
    let l = compile loop input Convention.Torch 12L
    copyWeights f l
    f, l

[<Tests>]
let tests =
    testList "LoopKernel" [
        for name, build in
            [ "lstm", (fun k -> Model.Embed(5).Lstm(6, returnSequences = true, kernel = k).Stack(2).Bidirectional())
              "gru", (fun k -> Model.Embed(5).Gru(6, returnSequences = true, kernel = k).Bidirectional())
              "rnn tanh", (fun k -> Model.Embed(5).SimpleRnn(6, returnSequences = true, kernel = k))
              "rnn relu, last step", (fun k -> Model.Embed(5).SimpleRnn(6, Activation.Relu, kernel = k).Bidirectional(Merge.Sum)) ] do
            test $"{name}: loop = fused, outputs and gradients, padded batch" {
                let f, l = pair (build Kernel.Fused) (build Kernel.Loop) (InputSpec(Vocab = 10))
                use _f = f
                use _l = l
                use x = torch.randint(1L, 10L, [| 3L; 7L |], dtype = torch.ScalarType.Int64)
                use lens = torch.tensor([| 7L; 3L; 5L |])
                use yf = f.Forward(x, lens)
                use yl = l.Forward(x, lens)
                Expect.isLessThan (maxDiff yf yl) 1e-5f "outputs"
                yf.square().sum().backward()
                yl.square().sum().backward()
                for n in paramNames f do
                    Expect.isLessThan (maxDiff (param f n).grad (param l n).grad) 1e-5f $"gradient of {n}"
            }
    ]
