using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>Small tensor helpers the engine and the loops share.</summary>
public static class Tensors
{
    /// <summary>One-hot encoding of ids: (…) → (…, classes) float32 (language models without Embed).</summary>
    public static Tensor OneHot(Tensor ids, int classes) => nn.functional.one_hot(ids, classes).to_type(ScalarType.Float32);
}
