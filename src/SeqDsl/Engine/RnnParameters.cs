using SeqDsl.Spec;

namespace SeqDsl.Engine;

/// <summary>
/// libtorch's names and layout of a recurrent layer's parameters, shared by the kernels, the ONNX export and the PyTorch
/// interop: <c>layers.N.rnn.weight_ih_l{layer}[_reverse]</c>, <c>weight_hh_…</c>, <c>bias_ih_…</c>, <c>bias_hh_…</c>, each
/// with the gate blocks stacked in libtorch's order (LSTM i, f, g, o; GRU r, z, n; one block for a simple RNN).
/// </summary>
internal static class RnnParameters
{
    /// <summary>The prefix of layer <paramref name="index"/>'s recurrent parameters.</summary>
    public static string Prefix(int index) => $"layers.{index}.rnn";

    /// <summary>The suffix of one stacked layer and direction (1: backward).</summary>
    public static string Suffix(int layer, int direction) => $"_l{layer}" + (direction == 1 ? "_reverse" : "");

    /// <summary>Gate blocks stacked in a cell's weights.</summary>
    public static int Gates(CellSpec cell) => cell switch { LstmCell => 4, GruCell => 3, _ => 1 };

    /// <summary>The libtorch (and PyTorch) module whose equations the cell has, LSTM, GRU or RNN; null when it has none
    /// (<see cref="CellSpec.FusedUnavailableReason"/> says why).</summary>
    public static string? TorchModule(CellSpec cell) =>
        cell.FusedUnavailableReason is not null ? null : cell switch { LstmCell => "LSTM", GruCell => "GRU", _ => "RNN" };
}
