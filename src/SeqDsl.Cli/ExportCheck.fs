/// The check that an exported model computes what SeqDsl computes: both engines on the same random batches (token ids
/// or features, padded rows with their lengths and full rows), the largest absolute difference of their outputs. Run by
/// `seqdsl export` on the file it wrote (read back), and by the test suite for every layer kind and seed model.
module SeqDsl.Cli.ExportCheck

open System
open TorchSharp
open SeqDsl.Spec
open SeqDsl.Engine
open SeqDsl.Workflows
open SeqDsl.Runtime

/// The tolerance the export promises (float32 engines, different kernels): |ONNX − SeqDsl| ≤ 1e-5 · max(1, |SeqDsl|),
/// absolute for outputs up to 1, relative beyond (a forecast in the hundreds differs by float32 ulps of 3e-5).
let tolerance = 1e-5f

/// The error of one value against the reference; NaN when either is NaN.
let private error (onnx: float32) (reference: float32) =
    if Single.IsNaN onnx || Single.IsNaN reference then nanf else abs (onnx - reference) / max 1.0f (abs reference)

/// The largest error, NaN as soon as one is NaN (F#'s max would drop it depending on the order).
let private worst (errors: float32 seq) =
    errors |> Seq.fold (fun m e -> if Single.IsNaN m || Single.IsNaN e then nanf elif e > m then e else m) 0.0f

/// Whether an error is within the tolerance (false for NaN).
let within (e: float32) = e <= tolerance

/// A random batch: ids below the model's input width (language models and Embed) or features in [−1, 1], and lengths
/// 1…T with the first row full.
let batch (model: OnnxModel) (rows: int) (steps: int) (seed: int) =
    let rng = Random seed
    let lengths = Array.init rows (fun i -> if i = 0 then int64 steps else int64 (rng.Next(1, steps + 1)))
    let g = model.Interface
    if g.InputKind = GraphInput.Ids then
        let vocab = int g.InputWidth
        let ids = Array.init (rows * steps) (fun k -> if int64 (k % steps) < lengths.[k / steps] then int64 (rng.Next(min 1 (vocab - 1), vocab)) else 0L)
        (ids :> Array), [| int64 rows; int64 steps |], lengths
    else
        let f = int g.InputWidth
        (Array.init (rows * steps * f) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0)) :> Array), [| int64 rows; int64 steps; int64 f |], lengths

/// The network's input for a batch: token ids as the network reads them (one-hot without Embed), or features.
let private inputTensor (net: Network) (input: Array) (shape: int64[]) =
    match input with
    | :? (int64[]) as ids -> net.TokenInput(torch.tensor(ids).reshape(shape))
    | :? (float32[]) as f -> torch.tensor(f).reshape(shape)
    | _ -> invalidArg "input" "long[] ids or float[] features"

/// SeqDsl's output for a batch, with or without lengths (Trainer.Predict: evaluation mode, no gradients).
let torchOutput (net: Network) (input: Array) (shape: int64[]) (lengths: int64[] option) : float32[] =
    // every tensor of the check, temporaries included, stays referenced until the scope ends (TorchSharp frees a
    // tensor in its finalizer; README, Backend decisions)
    use _scope = torch.NewDisposeScope()
    use x = inputTensor net input shape
    use y =
        match lengths with
        | Some l ->
            use lt = torch.tensor l
            SeqDsl.Training.Trainer.Predict(net, x, lt)
        | None -> SeqDsl.Training.Trainer.Predict(net, x)
    y.contiguous().data<float32>().ToArray()

/// The final states SeqDsl keeps for a batch, per recurrent layer index: h (and c), each (layers·directions, B, H) flat.
let private torchStates (net: Network) (input: Array) (shape: int64[]) (lengths: int64[]) =
    let wasTraining = net.training
    net.eval()
    try
        use _scope = torch.NewDisposeScope()
        use _ = torch.no_grad()
        use x = inputTensor net input shape
        use l = torch.tensor lengths
        let ctx = ForwardContext(Lengths = l, KeepStates = true)
        use _y = net.Forward(x, ctx)
        let flat (t: torch.Tensor) = (use c = t.detach().cpu().contiguous() in c.data<float32>().ToArray())
        let states =
            ctx.FinalStates
            |> Seq.collect (fun kv ->
                [ yield $"state_h_{kv.Key}", flat kv.Value.H
                  match kv.Value.C with
                  | null -> ()
                  | c -> yield $"state_c_{kv.Key}", flat c ])
            |> Map.ofSeq
        for kv in ctx.FinalStates do kv.Value.Dispose()
        states
    finally
        net.train wasTraining

/// The largest error (see <see cref="tolerance"/>) of ONNX Runtime against SeqDsl over batches of 5×9, 3×4 and 1×1,
/// each with lengths and without; for a graph with states, the next states too.
let agreement (net: Network) (model: OnnxModel) : float32 =
    [ for (rows, steps, seed) in [ (5, 9, 1); (3, 4, 2); (1, 1, 3) ] do
        let input, shape, lengths = batch model rows steps seed
        for l in [ Some lengths; None ] do
            let struct (onnx, _, next) = model.Run(input, shape, defaultArg l (Array.create rows (int64 steps)))
            let torch = torchOutput net input shape l
            if onnx.Length <> torch.Length then failwithf "output sizes differ: ONNX %d, SeqDsl %d" onnx.Length torch.Length
            yield worst (Seq.map2 error onnx torch)
            if model.Interface.States.Count > 0 && l.IsSome then
                let reference = torchStates net input shape lengths
                for s in model.Interface.States do
                    match Map.tryFind s.Input reference, next.TryGetValue s.Input with
                    | Some r, (true, o) when r.Length = o.Length -> yield worst (Seq.map2 error o r)
                    | _ -> yield nanf ]
    |> worst
