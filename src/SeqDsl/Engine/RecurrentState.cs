using TorchSharp;
using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>
/// The carried state of one recurrent layer, the same type for every cell: H (and C for LSTM),
/// each (layers·directions, B, H) as libtorch lays them out. Detach it between minibatches for
/// truncated BPTT; move it out of a dispose scope to keep it across steps.
/// </summary>
public sealed class RecurrentState : IDisposable
{
    /// <summary>Hidden state, (L·D, B, H).</summary>
    public Tensor H { get; }
    /// <summary>Cell state for LSTM, (L·D, B, H); null for GRU and RNN.</summary>
    public Tensor? C { get; }

    /// <summary>Wraps the tensors (the state owns them).</summary>
    public RecurrentState(Tensor h, Tensor? c = null)
    {
        H = h;
        C = c;
    }

    /// <summary>A state cut from the autograd graph (for truncated BPTT).</summary>
    public RecurrentState Detach() => new(H.detach(), C?.detach());

    /// <summary>Moves the tensors to the enclosing dispose scope so they outlive the current one.</summary>
    public RecurrentState MoveToOuterDisposeScope()
    {
        H.MoveToOuterDisposeScope();
        C?.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Takes the tensors out of every dispose scope; the caller disposes the state.</summary>
    public RecurrentState DetachFromDisposeScope()
    {
        H.DetachFromDisposeScope();
        C?.DetachFromDisposeScope();
        return this;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        H.Dispose();
        C?.Dispose();
    }
}
