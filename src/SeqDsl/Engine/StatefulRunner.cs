using SeqDsl.Spec;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>
/// Step-by-step inference with carried state: feed one token per sequence, get the next
/// distribution; the state of every recurrent layer is kept between calls. Batch size 1 or
/// more. For models whose output is per time step (a final Dense after returnSequences).
/// </summary>
public sealed class StatefulRunner : IDisposable
{
    private readonly Network _net;
    private Dictionary<int, RecurrentState> _states = [];
    private readonly bool _wasTraining;

    /// <summary>Wraps a network; a model without Embed reads one-hot vectors of its feature width.</summary>
    public StatefulRunner(Network net)
    {
        _net = net;
        if (!net.Summary.Output.Sequence)
            throw new SeqDslException(ErrorKind.Spec,
                "Step-by-step inference needs an output per time step (returnSequences: true on the last recurrent layer).")
            { Received = $"output {net.Summary.Output}", Expected = "(None, time, vocabulary)" };
        if (net.Spec.Layers.Select((l, i) => (l, i)).FirstOrDefault(p => p.l is RecurrentLayer { Bidirectional: not null }) is ({ } bi, var index))
            throw SeqDslException.ForLayer(index, bi, ErrorKind.Spec,
                "Step-by-step inference is causal, but a bidirectional layer reads the sequence from its end.",
                bi.ToString(), "unidirectional recurrent layers");
        // evaluation mode (no dropout) for the runner's lifetime, not toggled per token
        _wasTraining = net.training;
        net.eval();
    }

    /// <summary>Forgets the state (next call starts from zeros).</summary>
    public void Reset()
    {
        foreach (var s in _states.Values) s.Dispose();
        _states = [];
    }

    /// <summary>Feeds tokens (one per sequence, (B)) and returns the output for that step, (B, V), on the CPU.
    /// The output is what the model's last layer gives (probabilities after a Softmax Dense, raw scores otherwise).</summary>
    public Tensor Next(long[] tokens)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var ids = tensor(tokens, [tokens.Length, 1]).to(_net.Device);          // (B, 1)
        var x = _net.TokenInput(ids);
        var ctx = new ForwardContext { InitialStates = _states, KeepStates = true };
        var y = _net.Forward(x, ctx);                                          // (B, 1, V)
        foreach (var s in _states.Values) s.Dispose();
        _states = ctx.FinalStates.ToDictionary(kv => kv.Key, kv => kv.Value.DetachFromDisposeScope());
        return y.squeeze(1).cpu().MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Reset();
        _net.train(_wasTraining);
    }
}
