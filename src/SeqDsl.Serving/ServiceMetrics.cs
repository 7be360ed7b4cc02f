using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SeqDsl.Serving;

/// <summary>A Prometheus histogram: cumulative bucket counts, sum and count.</summary>
internal sealed class Histogram(double[] bounds)
{
    private readonly long[] _buckets = new long[bounds.Length + 1];
    private double _sum;
    private long _count;
    private readonly object _lock = new();

    public void Observe(double value)
    {
        lock (_lock)
        {
            var i = Array.FindIndex(bounds, b => value <= b);
            _buckets[i < 0 ? bounds.Length : i]++;
            _sum += value;
            _count++;
        }
    }

    public void Write(StringBuilder sb, string name, string labels)
    {
        lock (_lock)
        {
            long cumulative = 0;
            var sep = labels.Length > 0 ? labels + "," : "";
            for (var i = 0; i < bounds.Length; i++)
            {
                cumulative += _buckets[i];
                sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{sep}le=\"{bounds[i].ToString("R", CultureInfo.InvariantCulture)}\"}} {cumulative}\n");
            }
            cumulative += _buckets[^1];
            sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{sep}le=\"+Inf\"}} {cumulative}\n");
            var braces = labels.Length > 0 ? "{" + labels + "}" : "";
            sb.Append(CultureInfo.InvariantCulture, $"{name}_sum{braces} {_sum.ToString("R", CultureInfo.InvariantCulture)}\n");
            sb.Append(CultureInfo.InvariantCulture, $"{name}_count{braces} {_count}\n");
        }
    }
}

/// <summary>The service's counters in Prometheus's text format (<c>GET /metrics</c>): requests by endpoint and status,
/// errors, request latency and forward-pass batch sizes as histograms, and the rows waiting for a batch.</summary>
public sealed class ServiceMetrics
{
    private static readonly double[] LatencyBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    private static readonly double[] BatchBounds = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

    private readonly ConcurrentDictionary<(string endpoint, int status), long> _requests = new();
    private readonly ConcurrentDictionary<string, long> _errors = new();
    private readonly ConcurrentDictionary<string, Histogram> _latency = new();
    private readonly Histogram _batchRows = new(BatchBounds);
    private readonly Histogram _batchRequests = new(BatchBounds);
    private long _queued;

    /// <summary>Records one finished request.</summary>
    public void Request(string endpoint, int status, double seconds)
    {
        _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);
        if (status >= 400) _errors.AddOrUpdate(endpoint, 1, (_, n) => n + 1);
        _latency.GetOrAdd(endpoint, _ => new Histogram(LatencyBounds)).Observe(seconds);
    }

    /// <summary>Records one forward pass over <paramref name="rows"/> inputs gathered from <paramref name="requests"/> requests.</summary>
    public void Batch(int rows, int requests)
    {
        _batchRows.Observe(rows);
        _batchRequests.Observe(requests);
    }

    /// <summary>Rows waiting to be batched.</summary>
    public void Queued(long delta) => Interlocked.Add(ref _queued, delta);

    /// <summary>Prometheus text exposition format 0.0.4.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP seqdsl_requests_total HTTP requests by endpoint and status code.\n# TYPE seqdsl_requests_total counter\n");
        foreach (var ((endpoint, status), n) in _requests.OrderBy(kv => kv.Key.endpoint, StringComparer.Ordinal).ThenBy(kv => kv.Key.status))
            sb.Append(CultureInfo.InvariantCulture, $"seqdsl_requests_total{{endpoint=\"{endpoint}\",code=\"{status}\"}} {n}\n");
        sb.Append("# HELP seqdsl_request_errors_total Requests answered with a 4xx or 5xx status, by endpoint.\n# TYPE seqdsl_request_errors_total counter\n");
        foreach (var (endpoint, n) in _errors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.Append(CultureInfo.InvariantCulture, $"seqdsl_request_errors_total{{endpoint=\"{endpoint}\"}} {n}\n");
        sb.Append("# HELP seqdsl_request_duration_seconds Time from request to response, by endpoint.\n# TYPE seqdsl_request_duration_seconds histogram\n");
        foreach (var (endpoint, h) in _latency.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            h.Write(sb, "seqdsl_request_duration_seconds", $"endpoint=\"{endpoint}\"");
        sb.Append("# HELP seqdsl_batch_rows Inputs per forward pass (micro-batches of concurrent requests).\n# TYPE seqdsl_batch_rows histogram\n");
        _batchRows.Write(sb, "seqdsl_batch_rows", "");
        sb.Append("# HELP seqdsl_batch_requests Requests served by one forward pass.\n# TYPE seqdsl_batch_requests histogram\n");
        _batchRequests.Write(sb, "seqdsl_batch_requests", "");
        sb.Append("# HELP seqdsl_queued_rows Inputs waiting for a forward pass.\n# TYPE seqdsl_queued_rows gauge\n");
        sb.Append(CultureInfo.InvariantCulture, $"seqdsl_queued_rows {Interlocked.Read(ref _queued)}\n");
        return sb.ToString();
    }
}
