using SeqDsl.Spec;

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

    /// <summary>Refuses options no sampler can honour, naming the option.</summary>
    public void Check()
    {
        static SeqDslException Bad(string option, string received, string expected) =>
            new(ErrorKind.Spec, $"Invalid decoding option {option}.") { Received = received, Expected = expected };
        if (!(Temperature > 0) || double.IsInfinity(Temperature)) throw Bad("temperature", Temperature.ToString("R"), "a temperature > 0 (1 samples the model's distribution)");
        if (TopK is < 1) throw Bad("top-k", TopK.ToString()!, "top-k ≥ 1");
        if (TopP is double p && !(p > 0 && p <= 1)) throw Bad("top-p", p.ToString("R"), "0 < top-p ≤ 1 (0.9 keeps the most likely tokens that make up 90 %)");
    }
}

/// <summary>Generation from a prefix, whatever runs the model (libtorch or ONNX Runtime): the prefix is fed token by
/// token to warm up the state, then each choice is fed back. One rule for both, so that the same model, prefix and
/// options give the same text on either.</summary>
public static class Sampler
{
    /// <summary>Generates <paramref name="count"/> tokens after <paramref name="prefix"/>; <paramref name="next"/> feeds one
    /// token and returns the model's output for it (V values: probabilities when <paramref name="outputIsProbabilities"/>,
    /// scores otherwise). Returns the prefix followed by the generated tokens.</summary>
    public static int[] Generate(Func<int, float[]> next, IReadOnlyList<int> prefix, int count, DecodeOptions options, bool outputIsProbabilities)
    {
        if (prefix.Count == 0) throw new SeqDslException(ErrorKind.Data, "Generation needs a prefix of at least one token.");
        options.Check();
        if (count < 0) throw new SeqDslException(ErrorKind.Spec, "The number of tokens to generate cannot be negative.") { Received = count.ToString(), Expected = "length ≥ 0" };
        var rng = new Random(options.Seed);
        var output = new List<int>(prefix);
        float[] last = [];
        foreach (var t in prefix) last = next(t);
        for (var i = 0; i < count; i++)
        {
            var chosen = Choose(last, outputIsProbabilities, options, rng);
            output.Add(chosen);
            if (i < count - 1) last = next(chosen);
        }
        return output.ToArray();
    }

    /// <summary>Picks a token from one step's output: the most likely, or a sample of the tempered distribution
    /// restricted to the top-k / top-p tokens.</summary>
    public static int Choose(ReadOnlySpan<float> step, bool outputIsProbabilities, DecodeOptions o, Random rng)
    {
        if (step.Length == 0) throw new ArgumentException("An output of no values.", nameof(step));
        if (o.Greedy)
        {
            var best = 0;
            for (var i = 1; i < step.Length; i++)
                if (step[i] > step[best]) best = i;
            return best;
        }
        var logits = new double[step.Length];
        for (var i = 0; i < step.Length; i++) logits[i] = (outputIsProbabilities ? Math.Log(Math.Max(step[i], 1e-30)) : step[i]) / o.Temperature;
        var max = logits.Max();
        var p = logits.Select(l => Math.Exp(l - max)).ToArray();
        var sum = p.Sum();
        for (var i = 0; i < p.Length; i++) p[i] /= sum;
        var order = Enumerable.Range(0, p.Length).OrderByDescending(i => p[i]).ToArray(); // stable: ties keep index order
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
