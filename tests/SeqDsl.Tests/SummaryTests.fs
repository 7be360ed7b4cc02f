/// Parameter counts: the Keras numbers of seed 003 (golden) and libtorch's real allocations (oracle).
module SeqDsl.Tests.SummaryTests

open Expecto
open TorchSharp
open SeqDsl
open SeqDsl.Spec

let private keras8000 (m: ModelSpec) = m.Summary(InputSpec(Vocab = 8000, SeqLen = 200), Convention.Keras)

/// Builds the libtorch modules a layer stands for, by hand, and counts what they allocate.
let private torchCount (inputWidth: int64) (layer: Layer) (vocab: int64) : int64 =
    let numel (m: torch.nn.Module) = m.parameters() |> Seq.sumBy (fun p -> p.numel())
    match layer with
    | :? EmbedLayer as e -> numel (torch.nn.Embedding(vocab, int64 e.Dim))
    | :? DenseLayer as d -> numel (torch.nn.Linear(inputWidth, int64 d.Units))
    | :? AttentionLayer as a ->
        let u = if a.Units.HasValue then int64 a.Units.Value else inputWidth
        numel (torch.nn.Linear(inputWidth, u)) + numel (torch.nn.Linear(u, 1L, hasBias = false))
    | :? RecurrentLayer as r ->
        let bi = r.Bidirectional.HasValue
        let bias = r.Cell.EffectiveBias(Convention.Torch) <> Bias.None
        match r.Cell with
        | :? LstmCell -> numel (torch.nn.LSTM(inputWidth, int64 r.Units, int64 r.Layers, bias, true, 0.0, bi))
        | :? GruCell -> numel (torch.nn.GRU(inputWidth, int64 r.Units, int64 r.Layers, bias, true, 0.0, bi))
        | :? RnnCell as c ->
            let nl = if c.Activation = Activation.Relu then torch.nn.NonLinearities.ReLU else torch.nn.NonLinearities.Tanh
            numel (torch.nn.RNN(inputWidth, int64 r.Units, int64 r.Layers, nl, bias, true, 0.0, bi))
        | c -> failwithf "no libtorch module for %s" c.Name
    | _ -> 0L

[<Tests>]
let tests =
    testList "Summary" [
        testList "seed 003 (Keras convention, vocab 8000) golden totals" [
            for name, model, total in
                [ "SimpleRNN", Model.Embed(32).SpatialDropout(0.4).SimpleRnn(32).Dropout(0.4).Dense(1, Activation.Sigmoid), 258113L
                  "LSTM", Model.Embed(32).SpatialDropout(0.4).Lstm(32).Dropout(0.4).Dense(1, Activation.Sigmoid), 264353L
                  "GRU reset-before", Model.Embed(32).SpatialDropout(0.4).Gru(32, resetAfter = false).Dropout(0.4).Dense(1, Activation.Sigmoid), 262273L
                  "BiLSTM", Model.Embed(32).SpatialDropout(0.4).Lstm(32).Bidirectional().Dropout(0.4).Dense(1, Activation.Sigmoid), 272705L
                  "stacked LSTM", Model.Embed(32).SpatialDropout(0.4).Lstm(32).Stack(2).Dropout(0.4).Dense(1, Activation.Sigmoid), 272673L ] do
                test name {
                    let s = keras8000 model
                    Expect.equal s.Total total "total"
                    Expect.stringContains (string s) (sprintf "Total params: %s" (ModelSummary.Count total)) "printed with separators"
                }
        ]

        test "seed 003 per-layer numbers" {
            let s = keras8000 (Model.Embed(32).SpatialDropout(0.4).SimpleRnn(32).Dropout(0.4).Dense(1, Activation.Sigmoid))
            Expect.equal [ for r in s.Rows -> r.Params ] [ 256000L; 0L; 2080L; 0L; 33L ] "Embedding, SimpleRNN, Dense"
            Expect.stringContains (string s) "Total params: 258,113" "the printed total"
            let lstm = keras8000 (Model.Embed(32).Lstm(32).Dense(1, Activation.Sigmoid))
            Expect.equal lstm.Rows.[1].Params 8320L "LSTM layer"
            let gru = keras8000 (Model.Embed(32).Gru(32, resetAfter = false).Dense(1, Activation.Sigmoid))
            Expect.equal gru.Rows.[1].Params 6240L "GRU reset-before layer"
            let bi = keras8000 (Model.Embed(32).Lstm(32).Bidirectional().Dense(1, Activation.Sigmoid))
            Expect.equal bi.Rows.[1].Params 16640L "BiLSTM layer"
            Expect.equal bi.Rows.[2].Params 65L "its Dense sees 64"
        }

        test "Keras GRU reset-after keeps a second (recurrent) bias: 3H more" {
            let after = (keras8000 (Model.Embed(32).Gru(32).Dense(1))).Rows.[1].Params
            let before = (keras8000 (Model.Embed(32).Gru(32, resetAfter = false).Dense(1))).Rows.[1].Params
            Expect.equal (after - before) 96L "3 × 32"
        }

        test "a frozen embedding is counted as non-trainable" {
            let s = Model.Embed(4, vocab = 10, trainable = false).Lstm(2).Summary(InputSpec(), Convention.Torch)
            Expect.equal s.NonTrainable 40L "non-trainable"
            Expect.equal s.Trainable (s.Total - 40L) "trainable"
        }

        testList "torch convention equals what libtorch allocates" [
            for name, model in
                [ "embed+lstm+dense", Model.Embed(7).Lstm(5).Dense(3)
                  "gru", Model.Embed(6).Gru(4).Dense(2)
                  "rnn tanh", Model.Embed(6).SimpleRnn(4).Dense(1)
                  "rnn relu no bias", Model.Embed(6).SimpleRnn(4, Activation.Relu, Bias.None).Dense(1)
                  "stacked bi lstm", Model.Embed(5).Lstm(6).Stack(3).Bidirectional().Dense(2)
                  "stacked bi gru sum", Model.Embed(5).Gru(6).Stack(2).Bidirectional(Merge.Sum).Dense(2)
                  "mixed stack", Model.Embed(5).Gru(6).Bidirectional().Lstm(4).Dense(2)
                  "numeric input", Model.Lstm(9).Stack(2).Dense(1)
                  "attention", Model.Embed(5).Lstm(6).Bidirectional().Attention(7).Dense(2)
                  "attention default width", Model.Embed(5).Gru(3, returnSequences = true).Attention().Dense(2)
                  "lstm no bias", Model.Lstm(3, bias = Bias.None).Dense(1) ] do
                test name {
                    let input = InputSpec(Vocab = 11, Features = 4)
                    let s = model.Summary(input, Convention.Torch)
                    let mutable width = if model.Layers.[0] :? EmbedLayer then 0L else 4L
                    for i in 0 .. model.Layers.Length - 1 do
                        let layer = model.Layers.[i]
                        let expected = torchCount width layer 11L
                        Expect.equal s.Rows.[i].Params expected (sprintf "layer %d (%s)" i layer.Kind)
                        width <- s.Rows.[i].Output.Features
                }
        ]
    ]
