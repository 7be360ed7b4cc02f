using SeqDsl;
using SeqDsl.Spec;

/// <summary>
/// Seed 003 (The Deep Learning Workshop, ch. 6) declares five Keras models for IMDB sentiment
/// (vocabulary 8000, sequences of 200, Embedding 32, 32 units). This prints their summaries under
/// the Keras convention; the totals are the book's: 258,113 / 264,353 / 262,273 / 272,705 / 272,673.
/// </summary>
public static class Seed003Summaries
{
    public static int Run(string[] args)
    {
        var head = Model.Embed(32).SpatialDropout(0.4);
        var models = new (string name, ModelSpec model)[]
        {
            ("SimpleRNN", head.SimpleRnn(32)),
            ("LSTM", head.Lstm(32)),
            ("GRU (reset_after=False)", head.Gru(32, resetAfter: false)),
            ("Bidirectional LSTM", head.Lstm(32).Bidirectional()),
            ("Stacked LSTM", head.Lstm(32).Stack(2)),
        };
        var input = new InputSpec(Vocab: 8000, SeqLen: 200);
        foreach (var (name, body) in models)
        {
            var model = body.Dropout(0.4).Dense(1, Activation.Sigmoid);
            Console.WriteLine($"== {name}: {model}");
            Console.WriteLine(model.Summary(input, Convention.Keras));
            Console.WriteLine();
        }
        return 0;
    }
}
