using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Generation;

/// <summary>Generation with a compiled network and carried state (<see cref="StatefulRunner"/>); the choice of each
/// token is <see cref="Sampler"/>'s, shared with the ONNX runtime.</summary>
public static class Decoding
{
    /// <summary>Generates <paramref name="count"/> tokens after <paramref name="prefix"/>; returns the prefix followed by them.</summary>
    public static int[] Generate(Network net, IReadOnlyList<int> prefix, int count, DecodeOptions options)
    {
        options.Check();
        if (prefix.Count == 0) throw new SeqDslException(ErrorKind.Data, "Generation needs a prefix of at least one token.");
        using var runner = new StatefulRunner(net);
        return Sampler.Generate(token =>
        {
            using var y = runner.Next([token]);
            return y.reshape(-1).data<float>().ToArray();
        }, prefix, count, options, net.OutputActivation == Activation.Softmax);
    }

    /// <summary>Picks a token from one step's output (1, V) or (V).</summary>
    public static int Choose(Tensor step, bool outputIsProbabilities, DecodeOptions o, Random rng)
    {
        using var flat = step.reshape(-1).to_type(ScalarType.Float32).cpu();
        return Sampler.Choose(flat.data<float>().ToArray(), outputIsProbabilities, o, rng);
    }
}
