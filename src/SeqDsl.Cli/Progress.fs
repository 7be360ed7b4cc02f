/// Training progress on the console: a live bar on a terminal, one line per epoch otherwise.
module SeqDsl.Cli.Progress

open System
open System.Globalization
open SeqDsl.Training

let private fmt (v: float) = v.ToString("0.0000", CultureInfo.InvariantCulture)

let private timeSpan (t: TimeSpan) =
    if t.TotalHours >= 1.0 then t.ToString(@"h\:mm\:ss") else t.ToString(@"mm\:ss")

/// One line per epoch: "epoch 3/10: loss 0.4123, accuracy 0.8123, val_loss …, 12.3 s".
let epochLine (e: EpochRecord) (epochs: int) =
    let values = e.Values |> Seq.map (fun kv -> $"{kv.Key} {fmt kv.Value}") |> String.concat ", "
    let seconds = e.Seconds.ToString("0.0", CultureInfo.InvariantCulture)
    $"epoch {e.Epoch}/{epochs}: {values}, {seconds} s"

/// The reporter: a bar redrawn in place when stdout is a terminal, plain lines when it is redirected.
type ConsoleProgress(live: bool) =
    let mutable lastDraw = DateTime.MinValue
    let mutable barShown = false
    member _.Report(p: TrainingProgress) =
        match p.EpochEnd with
        | null ->
            if live && (DateTime.UtcNow - lastDraw).TotalMilliseconds > 100.0 then
                lastDraw <- DateTime.UtcNow
                let doneSteps = float (p.Epoch - 1) * float p.Batches + float p.Batch
                let total = float p.Epochs * float p.Batches
                let eta = if doneSteps > 0.0 then TimeSpan.FromSeconds(p.Elapsed.TotalSeconds / doneSteps * (total - doneSteps)) else TimeSpan.Zero
                let width = 24
                let filled = int (float width * float p.Batch / float p.Batches)
                let bar = String('#', filled) + String('.', width - filled)
                let line = $"epoch {p.Epoch}/{p.Epochs} [{bar}] batch {p.Batch}/{p.Batches} loss {fmt p.Loss} ETA {timeSpan eta}"
                Console.Write("\r" + line.PadRight(Console.WindowWidth - 1 |> max 20 |> min 120))
                barShown <- true
        | e ->
            if barShown then
                Console.Write("\r" + String(' ', Console.WindowWidth - 1 |> max 20 |> min 120) + "\r")
                barShown <- false
            Console.WriteLine(epochLine e p.Epochs)
    interface IProgress<TrainingProgress> with
        member this.Report p = this.Report p
