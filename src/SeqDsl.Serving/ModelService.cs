using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Data.Analysis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SeqDsl.Generation;
using SeqDsl.Spec;
using SeqDsl.Workflows;

namespace SeqDsl.Serving;

/// <summary>How the service listens, batches and limits requests.</summary>
public sealed record ServeOptions
{
    /// <summary>Address to listen on: 127.0.0.1 (this machine only, the default) or 0.0.0.0 (every interface, e.g. in a container).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (<see cref="ModelService.Urls"/> tells which).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Name of the engine behind the service (shown by /healthz).</summary>
    public string Backend { get; init; } = "onnx";
    /// <summary>How long the first request of a batch may wait for others that are arriving (none: no wait).</summary>
    public TimeSpan BatchWindow { get; init; } = TimeSpan.FromMilliseconds(2);
    /// <summary>Most inputs in one forward pass.</summary>
    public int MaxBatchRows { get; init; } = 256;
    /// <summary>Most inputs × the longest input's characters in one forward pass (texts padded together pay for the
    /// longest); a request beyond it waits for the next pass, and one alone always runs.</summary>
    public long MaxBatchCharacters { get; init; } = 256L * 4000;
    /// <summary>Most inputs waiting at once; beyond it requests get 503 with Retry-After.</summary>
    public int MaxQueuedRows { get; init; } = 8192;
    /// <summary>Most /generate and series requests waiting for the engine at once; beyond it 503 with Retry-After.</summary>
    public int MaxWaiting { get; init; } = 64;
    /// <summary>Largest request body (413 beyond it).</summary>
    public long MaxBodyBytes { get; init; } = 4 << 20;
    /// <summary>Most texts, binary strings or series rows in one request.</summary>
    public int MaxInputs { get; init; } = 1024;
    /// <summary>Longest text (characters).</summary>
    public int MaxTextLength { get; init; } = 100_000;
    /// <summary>Most characters one /generate request may ask for.</summary>
    public int MaxGenerateLength { get; init; } = 2000;
    /// <summary>Longest /generate prefix (characters; each is one step of the model).</summary>
    public int MaxPrefixLength { get; init; } = 1000;
    /// <summary>How long shutdown waits for requests in flight.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>A request the service refuses: status 400 (or 413, 503) and a one-line reason naming the JSON path.</summary>
public sealed class BadRequest(int status, string message, string? path = null) : Exception(message)
{
    /// <summary>HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary>JSON path of the offending value, when there is one.</summary>
    public string? Path { get; } = path;
}

/// <summary>
/// <c>seqdsl serve</c>: a trained model behind HTTP, on ASP.NET Core. <c>POST /predict</c> takes
/// <c>{"texts": [...]}</c> (text classifiers), <c>{"bits": [...]}</c> (counting) or <c>{"rows": [{...}]}</c> (series rows
/// with the training CSV's columns) and answers predictions with labels and class probabilities; <c>POST /generate</c>
/// takes <c>{"prefix", "length", "temperature", "topK", "topP", "seed"}</c>; <c>GET /healthz</c> and <c>GET /metrics</c>
/// (Prometheus). Concurrent predictions are micro-batched into one forward pass; bad requests get a 400 with the reason;
/// SIGTERM / Ctrl+C stop taking connections, finish what is in flight and exit.
/// </summary>
public sealed class ModelService : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // JSON bodies, never HTML: quotes and dashes stay readable
    };

    private readonly WebApplication _app;
    private readonly IPredictor _predictor;
    private readonly ServeOptions _options;
    private readonly Batcher _batcher;
    private int _active, _waiting, _stopped;

    /// <summary>The counters /metrics shows.</summary>
    public ServiceMetrics Metrics { get; } = new();

    private ModelService(IPredictor predictor, ServeOptions options, Action<string>? log)
    {
        _predictor = predictor;
        _options = options;
        _logFailure = log;
        _batcher = new Batcher(predictor, options, Metrics);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // a failure to start is the caller's to report, once (the host would log it a second time)
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        if (log is not null) builder.Logging.AddProvider(new LineLoggerProvider(log));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        _app = builder.Build();
        // requests in flight are finished by the server before it stops; then the batcher's worker ends
        _app.Lifetime.ApplicationStopped.Register(() => _batcher.DrainAsync().Wait(options.ShutdownTimeout));
        _app.Use(async (ctx, next) =>
        {
            var watch = Stopwatch.StartNew();
            Interlocked.Increment(ref _active);
            try
            {
                await next(ctx);
            }
            finally
            {
                Interlocked.Decrement(ref _active);
                var endpoint = ctx.Request.Path.Value is "/predict" or "/generate" or "/healthz" or "/metrics" ? ctx.Request.Path.Value : "other";
                Metrics.Request(endpoint, ctx.Response.StatusCode, watch.Elapsed.TotalSeconds);
            }
        });
        _app.UseStatusCodePages(async context =>
        {
            var r = context.HttpContext.Response;
            if (r.HasStarted) return;
            var message = r.StatusCode switch
            {
                404 => $"No such endpoint {context.HttpContext.Request.Path}: POST /predict, POST /generate, GET /healthz, GET /metrics.",
                405 => $"{context.HttpContext.Request.Method} is not allowed on {context.HttpContext.Request.Path} (allowed: {r.Headers.Allow}).",
                _ => $"HTTP {r.StatusCode}.",
            };
            await r.WriteAsJsonAsync(new { error = message }, Json);
        });
        _app.MapPost("/predict", (RequestDelegate)PredictEndpoint);
        _app.MapPost("/generate", ctx => Handle(ctx, GenerateAsync));
        _app.MapGet("/healthz", ctx => ctx.Response.WriteAsJsonAsync(new
        {
            status = "ok", model = predictor.Model, task = predictor.Info.Kind.ToString(), data = PublicSource(predictor.Info.Data), backend = options.Backend,
            endpoints = predictor.Info.Kind == TaskKind.LanguageModel ? new[] { "POST /generate" } : ["POST /predict"],
        }, Json));
        _app.MapGet("/metrics", ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return ctx.Response.WriteAsync(Metrics.Render());
        });
    }

    /// <summary>The training data's source without the machine's folders (a service may face the network).</summary>
    public static string PublicSource(string data)
    {
        DataSource source;
        try
        {
            source = DataSource.Parse(data);
        }
        catch (SeqDslException)
        {
            return "";
        }
        return source.Kind == "synthetic" ? source.ToString()
            : $"{source.Kind}:{Path.GetFileName(source.Path)}" + (source.Member is string m ? $"!{m}" : "");
    }

    /// <summary>Builds the service (not yet listening) for a model.</summary>
    public static ModelService Create(IPredictor predictor, ServeOptions? options = null, Action<string>? log = null) =>
        new(predictor, options ?? new ServeOptions(), log);

    /// <summary>Starts listening.</summary>
    public Task StartAsync(CancellationToken cancellation = default) => _app.StartAsync(cancellation);

    /// <summary>Stops: no new connections; requests in flight and queued inputs are finished first. When it returns, no
    /// request uses the predictor any more (the engine is held: a handler the server gave up on after
    /// <see cref="ServeOptions.ShutdownTimeout"/> is waited for), so the caller may dispose it.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        await _app.StopAsync();
        await _batcher.DrainAsync();
        await _batcher.Gate.WaitAsync(); // held from now on: nothing enters the engine after the stop
    }

    /// <summary>Requests being handled now.</summary>
    public int ActiveRequests => Volatile.Read(ref _active);

    /// <summary>The addresses it listens on (after <see cref="StartAsync"/>).</summary>
    public IReadOnlyList<string> Urls => _app.Urls.ToList();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Runs <paramref name="work"/> on the engine (one at a time, with the batcher's passes); 503 when too many
    /// requests already wait for it.</summary>
    private async Task<T> OnEngine<T>(Func<T> work, CancellationToken cancellation)
    {
        if (Interlocked.Increment(ref _waiting) > _options.MaxWaiting)
        {
            Interlocked.Decrement(ref _waiting);
            throw new BadRequest(503, "The service is busy; try again shortly.");
        }
        try
        {
            await _batcher.Gate.WaitAsync(cancellation);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        try
        {
            return work();
        }
        finally
        {
            _batcher.Gate.Release();
        }
    }

    private readonly Action<string>? _logFailure;

    private async Task Handle(HttpContext ctx, Func<JsonElement, CancellationToken, Task<object>> handler)
    {
        try
        {
            if (ctx.Request.ContentType is string type && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
                throw new BadRequest(415, $"The body must be JSON (Content-Type: application/json), not {type}.");
            JsonDocument doc;
            try
            {
                doc = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
            }
            catch (JsonException e)
            {
                var reason = e.Message.Split(" Change the reader options.")[0].Split(" LineNumber:")[0].TrimEnd('.');
                throw new BadRequest(400, $"The body is not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}): {reason}.");
            }
            catch (BadHttpRequestException e) when (e.StatusCode == 413)
            {
                throw new BadRequest(413, $"The body is larger than the limit of {ctx.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize} bytes.");
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new BadRequest(400, "The body must be a JSON object.", "$");
                var result = await handler(doc.RootElement, ctx.RequestAborted);
                await ctx.Response.WriteAsJsonAsync(result, Json, ctx.RequestAborted);
            }
        }
        catch (BadRequest e)
        {
            await Error(ctx, e.Status, e.Message, e.Path);
        }
        catch (SeqDslException e) when (e.Kind != ErrorKind.Runtime)
        {
            await Error(ctx, 400, e.Message, null);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away
        }
        catch (Exception e) when (IsInvalidUtf8(e))
        {
            await Error(ctx, 400, "The body is not valid UTF-8 text.", null);
        }
        catch (Exception e)
        {
            var reason = e.GetBaseException().Message.Split('\n')[0];
            _logFailure?.Invoke($"error: {ctx.Request.Path} failed ({e.GetBaseException().GetType().Name}): {reason}");
            await Error(ctx, 500, $"The model failed on this request: {reason}", null);
        }
    }

    private static bool IsInvalidUtf8(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is System.Text.DecoderFallbackException || (x is InvalidOperationException && x.Message.Contains("UTF-8", StringComparison.Ordinal))) return true;
        return false;
    }

    private static Task Error(HttpContext ctx, int status, string message, string? path)
    {
        if (ctx.Response.HasStarted) return Task.CompletedTask;
        ctx.Response.StatusCode = status;
        if (status == 503) ctx.Response.Headers.RetryAfter = "1";
        return ctx.Response.WriteAsJsonAsync(new { error = message, path }, Json);
    }

    private static void OnlyMembers(JsonElement body, params string[] allowed)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in body.EnumerateObject())
        {
            if (!allowed.Contains(p.Name))
                throw new BadRequest(400, $"Unknown member '{p.Name}'; expected {string.Join(", ", allowed)}.", $"$.{p.Name}");
            if (!seen.Add(p.Name)) throw new BadRequest(400, $"Member '{p.Name}' appears twice.", $"$.{p.Name}");
        }
    }

    private IReadOnlyList<string> Strings(JsonElement body, string name, int maxLength)
    {
        var array = body.GetProperty(name);
        if (array.ValueKind != JsonValueKind.Array) throw new BadRequest(400, $"'{name}' must be an array of strings.", $"$.{name}");
        var n = array.GetArrayLength();
        if (n == 0) throw new BadRequest(400, $"'{name}' is empty; give at least one.", $"$.{name}");
        if (n > _options.MaxInputs) throw new BadRequest(400, $"'{name}' holds {n} items; at most {_options.MaxInputs} per request.", $"$.{name}");
        var items = new List<string>(n);
        var i = 0;
        foreach (var e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw new BadRequest(400, $"Every item of '{name}' must be a string{(name == "bits" ? " of 0s and 1s, e.g. [\"0110\", \"111\"]" : "")}, not {e.ValueKind}.", $"$.{name}[{i}]");
            var s = e.GetString()!;
            if (s.Length > maxLength) throw new BadRequest(400, $"Item {i} of '{name}' has {s.Length} characters; at most {maxLength}.", $"$.{name}[{i}]");
            if (name == "bits" && (s.Trim().Length == 0 || s.Trim().Any(c => c is not ('0' or '1'))))
                throw new BadRequest(400, $"Item {i} of 'bits' must be a string of 0s and 1s, e.g. \"0110\".", $"$.{name}[{i}]");
            items.Add(s);
            i++;
        }
        return items;
    }

    private async Task PredictEndpoint(HttpContext ctx)
    {
        using var arrival = _batcher.Arrive();
        await Handle(ctx, (body, cancellation) => PredictAsync(body, arrival, cancellation));
    }

    private async Task<object> PredictAsync(JsonElement body, Arrival arrival, CancellationToken cancellation)
    {
        OnlyMembers(body, "texts", "bits", "rows");
        var given = body.EnumerateObject().Select(p => p.Name).ToList();
        if (given.Count != 1) throw new BadRequest(400, "Give exactly one of 'texts' (text classifiers), 'bits' (counting) or 'rows' (series).", "$");
        var kind = given[0];
        var info = _predictor.Info;
        var expected = info.Kind == TaskKind.Classification ? "texts" : info.Data == "synthetic:counting" ? "bits" : info.Scaler is not null ? "rows" : "none";
        if (kind != expected)
            throw new BadRequest(400, expected == "none"
                ? $"This model was trained for {info.Kind} ({PublicSource(info.Data)}); it predicts nothing here — POST /generate."
                : $"This model was trained for {info.Kind} ({PublicSource(info.Data)}); give '{expected}', not '{kind}'.", $"$.{kind}");
        IReadOnlyList<Prediction> predictions;
        if (kind == "rows")
        {
            arrival.Dispose(); // series rows are not batched
            var frame = Rows(body.GetProperty("rows"), info);
            predictions = await OnEngine(() => _predictor.PredictSeries(frame), cancellation);
        }
        else
        {
            var items = Strings(body, kind, _options.MaxTextLength);
            predictions = await (_batcher.Submit(arrival, kind == "bits", items, cancellation)
                ?? throw new BadRequest(503, "The service is busy (or stopping); try again shortly."));
        }
        return new
        {
            model = _predictor.Model,
            predictions = predictions.Select(p => new { input = p.Input, value = p.Value, label = p.Label, className = p.ClassName, probabilities = p.Probabilities }),
        };
    }

    /// <summary>Series rows as a frame: <c>Date</c> as a date (yyyy-MM-dd), every other member a number; the columns the
    /// model reads must be in every row.</summary>
    private DataFrame Rows(JsonElement rows, TaskInfo info)
    {
        if (rows.ValueKind != JsonValueKind.Array) throw new BadRequest(400, "'rows' must be an array of objects (one per row, the training CSV's columns).", "$.rows");
        var n = rows.GetArrayLength();
        if (n == 0) throw new BadRequest(400, "'rows' is empty.", "$.rows");
        if (n > _options.MaxInputs * 100) throw new BadRequest(400, $"'rows' holds {n} rows; at most {_options.MaxInputs * 100} per request.", "$.rows");
        var required = SeriesPreparation.RequiredColumns(info.FeatureSet ?? "raw", info.TargetColumn, info.FeatureColumns);
        var numbers = new Dictionary<string, double?[]>(StringComparer.Ordinal);
        DateTime?[]? dates = null;
        var i = 0;
        foreach (var row in rows.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Object) throw new BadRequest(400, $"Row {i} is {row.ValueKind}, not an object.", $"$.rows[{i}]");
            foreach (var p in row.EnumerateObject())
            {
                if (p.Name != "Date" && p.Name.Equals("Date", StringComparison.OrdinalIgnoreCase))
                    throw new BadRequest(400, $"The date column is named 'Date', not '{p.Name}'.", $"$.rows[{i}].{p.Name}");
                if (p.Name == "Date")
                {
                    dates ??= new DateTime?[n];
                    if (p.Value.ValueKind != JsonValueKind.String || !DateTime.TryParseExact(p.Value.GetString(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                        throw new BadRequest(400, $"Date of row {i} is not a date written yyyy-MM-dd (received {p.Value.GetRawText()}).", $"$.rows[{i}].Date");
                    if (i > 0 && dates[i - 1] is DateTime before && d <= before)
                        throw new BadRequest(400, $"Row {i} ({d:yyyy-MM-dd}) does not come after row {i - 1} ({before:yyyy-MM-dd}): rows must be in date order, one per date.", $"$.rows[{i}].Date");
                    dates[i] = d;
                    continue;
                }
                var read = required.Any(r => r.Split('|').Contains(p.Name));
                if (!read && p.Value.ValueKind != JsonValueKind.Number) continue; // a column the model does not read (text, flags …)
                if (!numbers.TryGetValue(p.Name, out var column)) numbers[p.Name] = column = new double?[n];
                column[i] = p.Value.ValueKind switch
                {
                    JsonValueKind.Number when double.IsFinite(p.Value.GetDouble()) => p.Value.GetDouble(),
                    JsonValueKind.Number => throw new BadRequest(400, $"'{p.Name}' of row {i} is not a finite number.", $"$.rows[{i}].{p.Name}"),
                    JsonValueKind.Null => null,
                    _ => throw new BadRequest(400, $"'{p.Name}' of row {i} must be a number or null.", $"$.rows[{i}].{p.Name}"),
                };
            }
            i++;
        }
        foreach (var r in required)
        {
            var names = r.Split('|');
            var name = names.FirstOrDefault(numbers.ContainsKey)
                ?? throw new BadRequest(400, $"The rows have no '{string.Join("' or '", names)}' column, which this model reads.", "$.rows");
            // the target may be unknown in the last row: that is the value to forecast
            var isTarget = (info.FeatureSet ?? "raw") == "raw" && name == (info.TargetColumn ?? name);
            var column = numbers[name];
            var missing = Array.FindIndex(column, v => v is null);
            if (missing >= 0 && !(isTarget && missing == n - 1))
                throw new BadRequest(400, $"Row {missing} has no value for '{name}', which this model reads"
                    + (isTarget ? " (only the last row may leave the target empty: the day to forecast)." : "."), $"$.rows[{missing}].{name}");
        }
        var frame = new DataFrame();
        if (dates is not null)
        {
            var missing = Array.FindIndex(dates, d => d is null);
            if (missing >= 0) throw new BadRequest(400, $"Row {missing} has no Date while others do.", $"$.rows[{missing}].Date");
            frame.Columns.Add(new PrimitiveDataFrameColumn<DateTime>("Date", dates.Select(d => d!.Value)));
        }
        foreach (var (name, values) in numbers) frame.Columns.Add(new DoubleDataFrameColumn(name, values));
        return frame;
    }

    private async Task<object> GenerateAsync(JsonElement body, CancellationToken cancellation)
    {
        OnlyMembers(body, "prefix", "length", "temperature", "topK", "topP", "seed");
        if (_predictor.Info.Kind != TaskKind.LanguageModel)
            throw new BadRequest(400, $"This model was trained for {_predictor.Info.Kind} ({PublicSource(_predictor.Info.Data)}); generation needs a language model — POST /predict.");
        if (!body.TryGetProperty("prefix", out var prefixElement) || prefixElement.ValueKind != JsonValueKind.String || prefixElement.GetString()!.Length == 0)
            throw new BadRequest(400, "'prefix' must be a non-empty string to start from.", "$.prefix");
        var prefix = prefixElement.GetString()!;
        if (prefix.Length > _options.MaxPrefixLength) throw new BadRequest(400, $"'prefix' has {prefix.Length} characters; at most {_options.MaxPrefixLength}.", "$.prefix");
        int Int(string name, int fallback, int min, int max)
        {
            if (!body.TryGetProperty(name, out var e)) return fallback;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var v) || v < min || v > max)
                throw new BadRequest(400, $"'{name}' must be an integer from {min} to {max}.", $"$.{name}");
            return v;
        }
        double? Number(string name)
        {
            if (!body.TryGetProperty(name, out var e)) return null;
            if (e.ValueKind != JsonValueKind.Number || !double.IsFinite(e.GetDouble())) throw new BadRequest(400, $"'{name}' must be a finite number.", $"$.{name}");
            return e.GetDouble();
        }
        var length = Int("length", 50, 0, _options.MaxGenerateLength);
        var temperature = Number("temperature");
        var topK = body.TryGetProperty("topK", out _) ? Int("topK", 0, 1, int.MaxValue) : (int?)null;
        var topP = Number("topP");
        var seed = Int("seed", 0, int.MinValue, int.MaxValue);
        var options = temperature is not null || topK is not null || topP is not null
            ? DecodeOptions.Sample(temperature ?? 1.0, topK, topP, seed) : DecodeOptions.ArgMax;
        if (temperature is double tv && !(tv > 0)) throw new BadRequest(400, "'temperature' must be greater than 0 (1 samples the model's distribution).", "$.temperature");
        if (topP is double pv && !(pv > 0 && pv <= 1)) throw new BadRequest(400, "'topP' must be in (0, 1] (0.9 keeps the most likely characters that make up 90 %).", "$.topP");
        string text;
        try
        {
            text = await OnEngine(() => _predictor.Generate(prefix, length, options), cancellation);
        }
        catch (SeqDslException e) when (e.Kind == ErrorKind.Data)
        {
            throw new BadRequest(400, e.Message, "$.prefix");
        }
        return new { model = _predictor.Model, prefix, text };
    }

    /// <summary>Writes the host's warnings and errors as single lines (no stack traces for a user).</summary>
    private sealed class LineLoggerProvider(Action<string> write) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new LineLogger(write);
        public void Dispose() { }
    }

    private sealed class LineLogger(Action<string> write) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) write($"{logLevel}: {formatter(state, exception)}" + (exception is null ? "" : $" ({exception.GetBaseException().Message.Split('\n')[0]})"));
        }
    }
}
