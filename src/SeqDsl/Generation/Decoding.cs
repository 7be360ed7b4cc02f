using SeqDsl.Engine;
using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Generation;

/// <summary>How the next token is chosen from the model's distribution.</summary>
/// <param name="Greedy">Always the most likely token (d2l's predict_rnn).</param>
/// <param name="Temperature">Divides the logits before sampling (&lt; 1 sharper, &gt; 1 flatter).</param>
/// <param name="TopK">Sample among the k most likely tokens only.</param>
/// <param name="TopP">Sample among the smallest set of tokens whose probability reaches p (nucleus).</param>
/// <param name="Seed">Seed of the sampler; the same seed gives the same text.</param>
public sealed record DecodeOptions(bool Greedy = true, double Temperature = 1.0, int? TopK = null, double? TopP = null, int Seed = 0)
{
    /// <summary>Most likely token every step.</summary>
    public static DecodeOptions ArgMax => new();
    /// <summary>Sampling with a temperature, optionally restricted by top-k / top-p.</summary>
    public static DecodeOptions Sample(double temperature = 1.0, int? topK = null, double? topP = null, int seed = 0) =>
        new(false, temperature, topK, topP, seed);
}

/// <summary>Generation from a prefix: the prefix is fed token by token to warm up the state, then each
/// output is fed back. Returns the prefix followed by the generated tokens.</summary>
public static class Decoding
{
    /// <summary>Generates <paramref name="count"/> tokens after <paramref name="prefix"/>.</summary>
    public static int[] Generate(Network net, IReadOnlyList<int> prefix, int count, DecodeOptions options)
    {
        if (prefix.Count == 0) throw new SeqDslException(ErrorKind.Data, "Generation needs a prefix of at least one token.");
        if (options.Temperature <= 0 || options.TopK is < 1 || options.TopP is <= 0 or > 1)
            throw new SeqDslException(ErrorKind.Spec, "Invalid decoding options.")
            { Received = options.ToString(), Expected = "temperature > 0, topK ≥ 1, 0 < topP ≤ 1" };
        var rng = new Random(options.Seed);
        using var runner = new StatefulRunner(net);
        var softmaxOut = net.OutputActivation == Activation.Softmax;
        var output = new List<int>(prefix);
        Tensor? last = null;
        foreach (var t in prefix)
        {
            last?.Dispose();
            last = runner.Next([t]);
        }
        for (var i = 0; i < count; i++)
        {
            var next = Choose(last!, softmaxOut, options, rng);
            output.Add(next);
            last!.Dispose();
            last = runner.Next([next]);
        }
        last?.Dispose();
        return output.ToArray();
    }

    /// <summary>Picks a token from one step's output (1, V) or (V).</summary>
    public static int Choose(Tensor step, bool outputIsProbabilities, DecodeOptions o, Random rng)
    {
        using var scope = NewDisposeScope();
        var s = step.reshape(-1).to_type(ScalarType.Float64);
        if (o.Greedy) return (int)s.argmax().item<long>();
        var logits = outputIsProbabilities ? s.clamp_min(1e-30).log() : s;
        var p = (logits / o.Temperature).softmax(0).data<double>().ToArray();
        var order = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ToArray();
        var keep = order.Length;
        if (o.TopK is int k) keep = Math.Min(keep, k);
        if (o.TopP is double top)
        {
            double acc = 0;
            for (var i = 0; i < keep; i++)
            {
                acc += p[order[i]];
                if (acc >= top) { keep = i + 1; break; }
            }
        }
        var total = 0.0;
        for (var i = 0; i < keep; i++) total += p[order[i]];
        var u = rng.NextDouble() * total;
        for (var i = 0; i < keep; i++)
        {
            u -= p[order[i]];
            if (u <= 0) return order[i];
        }
        return order[keep - 1];
    }
}
