/// seqdsl serve: the service started on a loopback port and talked to over HTTP, with the ONNX and the torch backends:
/// predictions equal the predictor's own, concurrent requests share forward passes, bad requests get clear 400s,
/// /metrics is Prometheus text, shutdown finishes requests in flight; and the CLI process serves and stops on SIGTERM.
module SeqDsl.Tests.ServeTests

open System
open System.IO
open System.Net
open System.Net.Http
open System.Text
open System.Text.Json
open Expecto
open SeqDsl.Spec
open SeqDsl.Workflows
open SeqDsl.Export
open SeqDsl.Runtime
open SeqDsl.Serving
open SeqDsl.Tests.Support

let private http = new HttpClient(Timeout = TimeSpan.FromSeconds 60.0)

let private post (url: string) (body: string) =
    use content = new StringContent(body, Encoding.UTF8, "application/json")
    use r = http.PostAsync(url, content).Result
    int r.StatusCode, r.Content.ReadAsStringAsync().Result

let private json (s: string) = JsonDocument.Parse(s).RootElement

/// A trained model directory, made once: a text classifier, a series model and a language model.
let private trained =
    lazy (
        let quick = TrainingSpec(Epochs = 1, BatchSize = 64, Threads = Nullable 1)
        let save (e: ExperimentSpec) =
            let dir = tempFolder "serve-model"
            (use r = Experiment.Run e in r.Save dir)
            dir
        let corpus = Path.Combine(tempFolder "serve-lm", "rhymes.txt")
        File.WriteAllText(corpus, String.replicate 30 "the cat sat on the mat. ")
        let distinct = File.ReadAllText corpus |> Seq.distinct |> Seq.length
        {| Text = save (ExperimentSpec(Model = "Embed(8).Gru(8).Dense(1, Sigmoid)", Data = "synthetic:negation", Training = quick))
           Series = save (ExperimentSpec(Model = "Lstm(6).Dense(1)", Data = "synthetic:seasonal", Training = quick))
           Lm = save (ExperimentSpec(Model = $"Embed(6).Gru(8, returnSequences: true).Dense({distinct})", Data = "text:" + corpus,
                                     Preprocessing = PreprocessingSpec(Steps = 8), Training = TrainingSpec(Epochs = 1, BatchSize = 4, Threads = Nullable 1))) |})

let private onnxOf (dir: string) : IPredictor =
    use m = TrainedModel.Load dir
    OnnxModel.FromBytes(OnnxExport.ToBytes(m.Network, m.Info, m.Text), dir, OnnxModelOptions(Threads = Nullable 1))

/// Starts a service for a predictor on a free loopback port; returns its base URL and the service.
let private start (predictor: IPredictor) (options: ServeOptions) =
    let service = ModelService.Create(predictor, options)
    service.StartAsync().Wait()
    (service.Urls |> Seq.head), service

let private stop (service: ModelService) =
    service.StopAsync().Wait()
    service.DisposeAsync().AsTask().Wait()

let private texts = [ "not bad the film was long"; "indeed awful the plot"; "good"; "" ]

[<Tests>]
let tests =
    testSequenced <| testList "Serve" [
        test "a classifier trained on named labels: /predict gives each prediction's className beside its label" {
            let csv = Path.Combine(tempFolder "serve-named", "named.csv")
            File.WriteAllLines(csv, [| yield "text,label"; for i in 1 .. 40 -> if i % 2 = 0 then "a good film,positive" else "a bad film,negative" |])
            let dir = tempFolder "serve-named-model"
            let spec = ExperimentSpec(Model = "Embed(4).Gru(4).Dense(1, Sigmoid)", Data = "csv:" + csv, Training = TrainingSpec(Epochs = 1, Threads = Nullable 1))
            do
                use r = Experiment.Run spec
                r.Save dir
            use predictor = onnxOf dir
            let url, service = start predictor (ServeOptions(Port = 0))
            try
                let inputs = [ "a good film"; "a bad film" ]
                let code, body = post (url + "/predict") (JsonSerializer.Serialize {| texts = inputs |})
                Expect.equal code 200 body
                let expected = predictor.PredictTexts inputs
                for (p, e) in Seq.zip ((json body).GetProperty("predictions").EnumerateArray()) expected do
                    Expect.contains [ "negative"; "positive" ] e.ClassName "a named class"
                    Expect.equal (p.GetProperty("className").GetString()) e.ClassName "the class name"
                    Expect.equal (p.GetProperty("label").GetInt32()) e.Label.Value "and its index"
            finally
                stop service
        }

        for backend in [ "onnx"; "torch" ] do
            test $"{backend}: /healthz, /predict equals the predictor, validation 400s, /metrics" {
                let predictor = if backend = "onnx" then onnxOf trained.Value.Text else TrainedModel.Load trained.Value.Text :> IPredictor
                use _ = predictor
                let url, service = start predictor (ServeOptions(Port = 0, Backend = backend, MaxInputs = 8, MaxBodyBytes = 4096L))
                try
                    use h = http.GetAsync(url + "/healthz").Result
                    Expect.equal h.StatusCode HttpStatusCode.OK "healthz"
                    let health = json (h.Content.ReadAsStringAsync().Result)
                    Expect.equal (health.GetProperty("backend").GetString()) backend "names the backend"
                    let code, body = post (url + "/predict") (JsonSerializer.Serialize {| texts = texts |})
                    Expect.equal code 200 body
                    let expected = predictor.PredictTexts texts
                    let got = (json body).GetProperty("predictions").EnumerateArray() |> Seq.toList
                    Expect.equal got.Length texts.Length "one prediction per text"
                    for (p, e) in Seq.zip got expected do
                        Expect.equal (p.GetProperty("input").GetString()) e.Input "input"
                        Expect.floatClose Accuracy.veryHigh (p.GetProperty("value").GetDouble()) e.Value "value"
                        Expect.equal (p.GetProperty("label").GetInt32()) e.Label.Value "label"
                        Expect.isFalse (p.TryGetProperty("className") |> fst) "labels that were indices have no names"
                    // bad requests: 400 with the reason and the JSON path
                    for (request, status, says) in
                        [ """{"text": ["x"]}""", 400, "Unknown member 'text'"
                          """{"texts": []}""", 400, "empty"
                          """{"texts": ["a", 3]}""", 400, "must be a string"
                          """{"texts": "a"}""", 400, "array of strings"
                          """{"rows": [{"value": 1}]}""", 400, "give 'texts', not 'rows'"
                          """{"texts": ["a"], "bits": ["1"]}""", 400, "exactly one"
                          """[1, 2]""", 400, "JSON object"
                          """{"texts": ["a",""", 400, "not valid JSON"
                          JsonSerializer.Serialize {| texts = List.replicate 9 "a" |}, 400, "at most 8"
                          JsonSerializer.Serialize {| texts = [ String('a', 5000) ] |}, 413, "larger than the limit" ] do
                        let code, body = post (url + "/predict") request
                        Expect.equal code status $"{request}: {body}"
                        Expect.stringContains ((json body).GetProperty("error").GetString()) says request
                    let code, body = post (url + "/generate") """{"prefix": "a"}"""
                    Expect.equal code 400 "generate on a classifier"
                    Expect.stringContains body "language model" "says why"
                    use plain = new StringContent("texts=a", Encoding.UTF8, "text/plain")
                    use r = http.PostAsync(url + "/predict", plain).Result
                    Expect.equal (int r.StatusCode) 415 "not JSON"
                    let metrics = http.GetStringAsync(url + "/metrics").Result
                    Expect.stringContains metrics "seqdsl_requests_total{endpoint=\"/predict\",code=\"200\"} 1" "requests by status"
                    Expect.stringContains metrics "seqdsl_request_errors_total{endpoint=\"/predict\"}" "errors"
                    Expect.stringContains metrics "seqdsl_request_duration_seconds_bucket{endpoint=\"/predict\",le=\"+Inf\"}" "latency histogram"
                    Expect.stringContains metrics "seqdsl_batch_rows_count 1" "one forward pass so far"
                finally
                    stop service
            }

        test "concurrent requests are batched into shared forward passes and each gets its own predictions" {
            use predictor = onnxOf trained.Value.Text
            let url, service = start predictor (ServeOptions(Port = 0, BatchWindow = TimeSpan.FromMilliseconds 500.0))
            try
                let requests = [ for i in 0 .. 15 -> [ $"not bad number {i}"; String.replicate (i % 4 + 1) "indeed awful " ] ]
                let answers =
                    requests
                    |> List.map (fun t -> Threading.Tasks.Task.Run(fun () -> post (url + "/predict") (JsonSerializer.Serialize {| texts = t |})))
                    |> List.map (fun t -> t.Result)
                for (t, (code, body)) in List.zip requests answers do
                    Expect.equal code 200 body
                    let expected = predictor.PredictTexts t
                    let got = (json body).GetProperty("predictions").EnumerateArray() |> Seq.map (fun p -> p.GetProperty("input").GetString(), p.GetProperty("value").GetDouble()) |> Seq.toList
                    Expect.equal (got |> List.map fst) t "its own inputs, in order"
                    for ((_, v), e) in Seq.zip got expected do Expect.floatClose Accuracy.high v e.Value "the value the model gives alone"
            finally
                stop service
        }

        test "a request still arriving joins the pass of one already queued (the batch window), a lone one does not wait" {
            use predictor = onnxOf trained.Value.Text
            let url, service = start predictor (ServeOptions(Port = 0, BatchWindow = TimeSpan.FromMilliseconds 2000.0))
            try
                // A's body arrives in two parts 300 ms apart; B is posted whole while A is still arriving
                let slow =
                    Threading.Tasks.Task.Run(fun () ->
                        let content =
                            { new HttpContent() with
                                member _.SerializeToStreamAsync(stream, _) =
                                    task {
                                        do! stream.WriteAsync(Encoding.UTF8.GetBytes("""{"texts": ["not bad the film" """))
                                        do! stream.FlushAsync()
                                        do! Threading.Tasks.Task.Delay 300
                                        do! stream.WriteAsync(Encoding.UTF8.GetBytes("""]}"""))
                                    } :> Threading.Tasks.Task
                                member _.TryComputeLength(length) = length <- 0L; false }
                        content.Headers.ContentType <- Headers.MediaTypeHeaderValue("application/json")
                        use r = http.PostAsync(url + "/predict", content).Result
                        int r.StatusCode)
                Threading.Thread.Sleep 100
                let watch = Diagnostics.Stopwatch.StartNew()
                let code, body = post (url + "/predict") """{"texts": ["indeed awful"]}"""
                Expect.equal code 200 body
                Expect.equal slow.Result 200 "the slow request is answered"
                Expect.isGreaterThan watch.ElapsedMilliseconds 150L "B waited for A, which was still arriving"
                let metrics = http.GetStringAsync(url + "/metrics").Result
                let value (key: string) = metrics.Split('\n') |> Array.find (fun l -> l.StartsWith(key + " ")) |> fun l -> float (l.Split(' ').[1])
                Expect.equal (value "seqdsl_batch_requests_count") 1.0 "one forward pass"
                Expect.equal (value "seqdsl_batch_requests_sum") 2.0 "for both requests"
                // alone, nothing arriving: no wait for the 2 s window
                let watch = Diagnostics.Stopwatch.StartNew()
                let code, _ = post (url + "/predict") """{"texts": ["good"]}"""
                Expect.equal code 200 "answered"
                Expect.isLessThan watch.ElapsedMilliseconds 1000L "a lone request does not wait out the window"
            finally
                stop service
        }

        test "series rows and generation over HTTP" {
            use series = onnxOf trained.Value.Series
            let url, service = start series (ServeOptions(Port = 0))
            try
                let rows = [ for i in 0 .. 11 -> dict [ "Date", box $"2024-02-{i + 1:D2}"; "value", box (50.0 + float i) ] ]
                let code, body = post (url + "/predict") (JsonSerializer.Serialize {| rows = rows |})
                Expect.equal code 200 body
                let got = (json body).GetProperty("predictions").EnumerateArray() |> Seq.toList
                Expect.equal got.Length (12 - 1 - 5 + 1) "one per window after the lag, the last ending at the last row"
                Expect.equal ((List.last got).GetProperty("input").GetString()) "2024-02-12" "the last window forecasts the last date"
                // a last row without its value asks for the forecast of that day
                let ahead = rows @ [ dict [ "Date", box "2024-02-13"; "value", null ] ]
                let code, body = post (url + "/predict") (JsonSerializer.Serialize {| rows = ahead |})
                Expect.equal code 200 body
                let last = (json body).GetProperty("predictions").EnumerateArray() |> Seq.last
                Expect.equal (last.GetProperty("input").GetString()) "2024-02-13" "the day after the data"
                Expect.isTrue (Double.IsFinite(last.GetProperty("value").GetDouble())) "a forecast"
                Expect.equal (got.Head.GetProperty("input").GetString()) "2024-02-06" "labelled by the date of the window's last row"
                let code, body = post (url + "/predict") """{"rows": [{"Date": "2024-02-01", "other": 1}]}"""
                Expect.equal code 400 body
                Expect.stringContains body "'value'" "names the missing column"
                let code, body = post (url + "/predict") """{"rows": [{"Date": "01/02/2024", "value": 1}]}"""
                Expect.equal code 400 body
                Expect.stringContains body "$.rows[0].Date" "names the value"
                let code, body = post (url + "/predict") """{"rows": [{"Date": "2024-02-01", "value": 1e400}]}"""
                Expect.equal code 400 body
                Expect.stringContains body "finite" "an infinite value is refused"
            finally
                stop service
            use lm = onnxOf trained.Value.Lm
            let url, service = start lm (ServeOptions(Port = 0, MaxGenerateLength = 100))
            try
                let code, body = post (url + "/generate") """{"prefix": "the c", "length": 30, "temperature": 0.8, "topK": 3, "seed": 5}"""
                Expect.equal code 200 body
                Expect.equal ((json body).GetProperty("text").GetString()) (lm.Generate("the c", 30, SeqDsl.Generation.DecodeOptions.Sample(0.8, topK = 3, seed = 5))) "the text the model generates"
                for (request, says) in
                    [ """{"prefix": "the", "topP": 1.5}""", "$.topP"
                      """{"prefix": "the", "temperature": 0}""", "$.temperature"
                      """{"prefix": "the", "length": 101}""", "'length'"
                      """{"prefix": ""}""", "'prefix'"
                      """{"prefix": "the", "colour": 1}""", "Unknown member 'colour'"
                      """{"prefix": "the Q"}""", "Q"
                      JsonSerializer.Serialize {| prefix = String('t', 1001) |}, "at most 1000" ] do
                    let code, body = post (url + "/generate") request
                    Expect.equal code 400 $"{request}: {body}"
                    Expect.stringContains body says request
            finally
                stop service
        }

        test "shutdown finishes a request in flight; StopAsync returns only when no request uses the model" {
            use lm = onnxOf trained.Value.Lm
            let finished = ref false
            let slow =
                { new IPredictor with
                    member _.Model = lm.Model
                    member _.Info = lm.Info
                    member _.PredictTexts t = lm.PredictTexts t
                    member _.PredictCounts b = lm.PredictCounts b
                    member _.PredictSeries r = lm.PredictSeries r
                    member _.Generate(p, n, o) =
                        let text = lm.Generate(p, n, o)
                        Threading.Thread.Sleep 1500 // outlives the shutdown timeout below
                        finished.Value <- true
                        text
                    member _.Dispose() = () }
            let url, service = start slow (ServeOptions(Port = 0, ShutdownTimeout = TimeSpan.FromMilliseconds 200.0))
            let inFlight = Threading.Tasks.Task.Run(fun () -> try post (url + "/generate") """{"prefix": "the", "length": 20}""" with e -> 0, e.Message)
            let watch = Diagnostics.Stopwatch.StartNew()
            while service.ActiveRequests = 0 && watch.ElapsedMilliseconds < 10000L do Threading.Thread.Sleep 10
            Expect.equal service.ActiveRequests 1 "the request is in flight"
            stop service
            Expect.isTrue finished.Value "StopAsync waited for the model call the server gave up on"
            let code, _ = inFlight.Result
            Expect.isTrue (code = 200 || code = 0) "answered, or cut off by the server after its timeout"
            use lm2 = onnxOf trained.Value.Lm
            let url, service = start lm2 (ServeOptions(Port = 0))
            let inFlight = Threading.Tasks.Task.Run(fun () -> post (url + "/generate") """{"prefix": "the", "length": 2000}""")
            let watch = Diagnostics.Stopwatch.StartNew()
            while service.ActiveRequests = 0 && watch.ElapsedMilliseconds < 10000L do Threading.Thread.Sleep 10
            stop service
            let code, body = inFlight.Result
            Expect.equal code 200 "answered before the service stopped"
            Expect.equal ((json body).GetProperty("text").GetString()).Length (3 + 2000) "the whole text"
        }

        test "the CLI serves an exported file without libtorch and stops on SIGTERM" {
            let dir = trained.Value.Text
            let code, out, err = CliTests.runCli [ "export"; "--model-dir"; dir; "--onnx"; Path.Combine(dir, "m.onnx") ]
            Expect.equal code 0 err
            Expect.stringContains out "verified" "checked before writing"
            // the model's own files are never overwritten; bad hosts and options are usage errors
            for (args, says) in
                [ [ "export"; "--model-dir"; dir; "--onnx"; Path.Combine(dir, "weights.dat") ], "a file of the model itself"
                  [ "export"; "--model-dir"; dir; "--onnx"; Path.Combine(dir, "manifest.json") ], "a file of the model itself"
                  [ "export"; "--model-dir"; Path.Combine(dir, "nope") ], "--model-dir"
                  [ "serve"; "--onnx"; Path.Combine(dir, "m.onnx"); "--host"; "notahost.invalid" ], "not an IP address"
                  [ "serve"; "--onnx"; Path.Combine(dir, "m.onnx"); "--batch-window-ms"; "NaN" ], "--batch-window-ms"
                  [ "serve"; "--onnx"; dir ], "is a directory" ] do
                let code, _, err = CliTests.runCli args
                Expect.equal code 2 $"{args}: {err}"
                Expect.stringContains err says $"{args}"
            Expect.isTrue (File.Exists(Path.Combine(dir, "weights.dat"))) "the weights are untouched"
            let dll = Path.Combine(repoRoot, "src", "SeqDsl.Cli", "bin", configuration, "net10.0", "SeqDsl.Cli.dll")
            let psi = Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
            for a in [ dll; "serve"; "--onnx"; Path.Combine(dir, "m.onnx"); "--port"; "0"; "--threads"; "1" ] do psi.ArgumentList.Add a
            use p = Diagnostics.Process.Start psi
            try
                let line = p.StandardOutput.ReadLine()
                Expect.stringContains line "serving" line
                let url = Text.RegularExpressions.Regex.Match(line, "http://[0-9.]+:[0-9]+").Value
                let code, body = post (url + "/predict") """{"texts": ["not bad"]}"""
                Expect.equal code 200 body
                let libs = File.ReadAllText $"/proc/{p.Id}/maps"
                Expect.isFalse (libs.Contains "libtorch") "no libtorch in the serving process"
                Expect.isTrue (libs.Contains "onnxruntime") "ONNX Runtime is loaded"
                Diagnostics.Process.Start("kill", $"-TERM {p.Id}").WaitForExit()
                Expect.isTrue (p.WaitForExit 20000) "exits after SIGTERM"
                Expect.equal p.ExitCode 0 "cleanly"
            finally
                if not p.HasExited then p.Kill true
        }
    ]
