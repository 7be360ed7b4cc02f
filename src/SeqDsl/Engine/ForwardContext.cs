using static TorchSharp.torch;

namespace SeqDsl.Engine;

/// <summary>What travels with one forward pass besides the input: true lengths, initial states,
/// and what the caller wants back (final states, attention weights).</summary>
public sealed class ForwardContext
{
    /// <summary>True length of each sequence, (B) int64 on the CPU; null: every sequence fills T.</summary>
    public Tensor? Lengths { get; init; }
    /// <summary>Initial state per recurrent layer index; missing layers start from zeros.</summary>
    public IReadOnlyDictionary<int, RecurrentState>? InitialStates { get; init; }
    /// <summary>When true, <see cref="FinalStates"/> receives each recurrent layer's state after each sequence's last real step.</summary>
    public bool KeepStates { get; init; }
    /// <summary>Final state per recurrent layer index (filled when <see cref="KeepStates"/>).</summary>
    public Dictionary<int, RecurrentState> FinalStates { get; } = new();
    /// <summary>Alignment weights α of the attention layer, (B, T), when the model has one.</summary>
    public Tensor? AttentionWeights { get; internal set; }
    /// <summary>When true, loop-kernel layers keep every step's hidden state h_t in <see cref="StepStates"/> with
    /// its gradient retained (gradient-flow diagnostics).</summary>
    public bool KeepStepStates { get; init; }
    /// <summary>h_t of every step: (layer index, stacked layer, direction) → one (B, H) tensor per time step.</summary>
    public Dictionary<(int layer, int stacked, int direction), Tensor[]> StepStates { get; } = new();
}
