using System.Threading.Channels;
using SeqDsl.Workflows;

namespace SeqDsl.Serving;

/// <summary>Inputs of one request waiting for a forward pass: texts to classify or binary strings to count; a request
/// whose client went away (<paramref name="Aborted"/>) is dropped before its pass.</summary>
internal sealed record PendingInputs(bool Bits, IReadOnlyList<string> Items, CancellationToken Aborted)
{
    public TaskCompletionSource<IReadOnlyList<Prediction>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>The longest input, in characters (texts padded together pay for the longest).</summary>
    public int LongestInput { get; } = Items.Count == 0 ? 0 : Items.Max(i => i.Length);
}

/// <summary>A request on its way to the queue (its body being read and checked); the batcher waits for such requests
/// only. Disposing it (or submitting) ends the wait; both are idempotent.</summary>
internal sealed class Arrival(Batcher batcher) : IDisposable
{
    private int _done;
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _done, 1) == 0) batcher.Arrived();
    }
}

/// <summary>
/// Micro-batching: concurrent requests' inputs go through one forward pass; each request gets its own predictions
/// back. The first request of a batch waits only while other prediction requests are arriving (being read), at most
/// <see cref="ServeOptions.BatchWindow"/>, up to <see cref="ServeOptions.MaxBatchRows"/> inputs: a lone client pays no
/// window, many clients share passes. Batching does not change results: rows are padded per batch with their true lengths,
/// or to the model's fixed length. One worker runs the engine; work outside batches (series, generation) takes the same
/// gate, so an engine that is not thread-safe (libtorch) is never entered twice.
/// </summary>
internal sealed class Batcher
{
    private readonly Channel<PendingInputs> _queue = Channel.CreateUnbounded<PendingInputs>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IPredictor _predictor;
    private readonly ServeOptions _options;
    private readonly ServiceMetrics _metrics;
    private long _queuedRows;
    private int _arriving;
    private readonly Task _worker;

    /// <summary>Held while the engine runs.</summary>
    public SemaphoreSlim Gate { get; } = new(1, 1);

    public Batcher(IPredictor predictor, ServeOptions options, ServiceMetrics metrics)
    {
        _predictor = predictor;
        _options = options;
        _metrics = metrics;
        _worker = Task.Run(RunAsync);
    }

    /// <summary>Counts a prediction request that is being read; dispose it when it is queued or refused.</summary>
    public Arrival Arrive()
    {
        Interlocked.Increment(ref _arriving);
        return new Arrival(this);
    }

    internal void Arrived() => Interlocked.Decrement(ref _arriving);

    /// <summary>Queues a request's inputs; null when the queue is full or the service is stopping.</summary>
    public Task<IReadOnlyList<Prediction>>? Submit(Arrival arrival, bool bits, IReadOnlyList<string> items, CancellationToken aborted)
    {
        using var _ = arrival;
        if (Interlocked.Add(ref _queuedRows, items.Count) > _options.MaxQueuedRows)
        {
            Interlocked.Add(ref _queuedRows, -items.Count);
            return null;
        }
        var pending = new PendingInputs(bits, items, aborted);
        if (!_queue.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _queuedRows, -items.Count);
            return null;
        }
        _metrics.Queued(items.Count);
        return pending.Done.Task;
    }

    /// <summary>Stops taking inputs; what is queued is still served. Completes when the worker is done.</summary>
    public Task DrainAsync()
    {
        _queue.Writer.TryComplete();
        return _worker;
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<PendingInputs>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            if (!reader.TryRead(out var first)) continue;
            batch.Clear();
            batch.Add(first);
            var rows = first.Items.Count;
            var longest = first.LongestInput;
            // gather what is queued, and what is arriving within the window, up to the batch size, of the same kind; a
            // request whose texts would pad the batch beyond the character budget waits for the next pass
            var deadline = DateTime.UtcNow + _options.BatchWindow;
            while (rows < _options.MaxBatchRows)
            {
                if (reader.TryPeek(out var next))
                {
                    var widest = Math.Max(longest, next.LongestInput);
                    if (next.Bits != first.Bits || rows + next.Items.Count > _options.MaxBatchRows
                        || (long)(rows + next.Items.Count) * widest > _options.MaxBatchCharacters) break;
                    reader.TryRead(out next);
                    batch.Add(next!);
                    rows += next!.Items.Count;
                    longest = widest;
                    continue;
                }
                // nothing queued: wait only while another prediction request is being read, and not past the window
                if (DateTime.UtcNow >= deadline || Volatile.Read(ref _arriving) == 0 || reader.Completion.IsCompleted) break;
                await Task.Delay(1).ConfigureAwait(false);
            }
            Interlocked.Add(ref _queuedRows, -rows);
            _metrics.Queued(-rows);
            // clients that went away while waiting are not computed for
            foreach (var gone in batch.Where(p => p.Aborted.IsCancellationRequested)) gone.Done.TrySetCanceled(gone.Aborted);
            batch.RemoveAll(p => p.Aborted.IsCancellationRequested);
            if (batch.Count == 0) continue;
            await Gate.WaitAsync().ConfigureAwait(false);
            try
            {
                Serve(batch, batch.Sum(p => p.Items.Count));
            }
            finally
            {
                Gate.Release();
            }
        }
    }

    private void Serve(List<PendingInputs> batch, int rows)
    {
        try
        {
            var all = batch.SelectMany(p => p.Items).ToList();
            var predictions = batch[0].Bits ? _predictor.PredictCounts(all) : _predictor.PredictTexts(all);
            _metrics.Batch(rows, batch.Count);
            var at = 0;
            foreach (var p in batch)
            {
                p.Done.TrySetResult(predictions.Skip(at).Take(p.Items.Count).ToList());
                at += p.Items.Count;
            }
        }
        catch (Exception) when (batch.Count > 1)
        {
            // one request's input failed the batch: serve each alone, so only that request gets the error
            foreach (var p in batch) Serve([p], p.Items.Count);
        }
        catch (Exception e)
        {
            batch[0].Done.TrySetException(e);
        }
    }
}
