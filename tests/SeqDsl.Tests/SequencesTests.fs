/// Padding, truncation, lengths, bucketing, language-model samplers and chunks.
module SeqDsl.Tests.SequencesTests

open Expecto
open TorchSharp
open SeqDsl.Data
open SeqDsl.Engine
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

let private rowsOf (v: int[]) (w: int) =
    [ for i in 0 .. v.Length / w - 1 -> List.ofArray v.[i * w .. i * w + w - 1] ]

let private rows (p: PaddedIds) = rowsOf (p.Ids |> Array.map int) p.Columns

let private arrayRows (a: System.Array) (shape: int64[]) =
    rowsOf (a :?> int64[] |> Array.map int) (int shape.[1])

[<Tests>]
let tests =
    testList "Sequences" [
        test "Keras pad_sequences: pre padding and pre truncation by default; post on request" {
            let s = [| [| 1; 2; 3; 4 |]; [| 5 |] |]
            Expect.equal (rows (Sequences.Pad(s, 3))) [ [ 2; 3; 4 ]; [ 0; 0; 5 ] ] "pre/pre"
            Expect.equal (rows (Sequences.Pad(s, 3, Side.Post, Side.Post))) [ [ 1; 2; 3 ]; [ 5; 0; 0 ] ] "post/post"
        }

        test "per-batch post padding keeps the true lengths" {
            let p = Sequences.PadWithLengths [| [| 1; 2 |]; [| 3; 4; 5 |]; [||] |]
            Expect.equal (rows p) [ [ 1; 2; 0 ]; [ 3; 4; 5 ]; [ 0; 0; 0 ] ] "ids"
            Expect.equal (p.Lengths |> Array.map int |> List.ofArray) [ 2; 3; 1 ] "lengths (an empty text becomes one padding token)"
        }

        test "buckets cover every row once and group similar lengths" {
            let lengths = [| for i in 0 .. 999 -> (i * 7919) % 300 + 1 |]
            let b = Sequences.Buckets(lengths, 20, 3)
            Expect.equal (b |> Seq.concat |> Seq.sort |> List.ofSeq) [ 0 .. 999 ] "a partition"
            let spread = b |> Seq.averageBy (fun batch -> let l = batch |> Array.map (fun i -> lengths.[i]) in float (Array.max l - Array.min l))
            Expect.isLessThan spread 30.0 "mean spread within a batch (random batches would spread ~280)"
        }

        test "d2l random sampling on 0..29, batch 2, 6 steps: 2 minibatches of non-overlapping windows at multiples of 6" {
            let corpus = [| 0 .. 29 |]
            let batches = LanguageModelData.Random(corpus, 2, 6, System.Random 1) |> List.ofSeq
            Expect.equal batches.Length 2 "(30 − 1) / 6 = 4 windows, 4 / 2 = 2 minibatches"
            let starts = [ for struct (x, _) in batches do for b in 0 .. 1 -> int x.[b, 0] ] |> List.sort
            Expect.equal starts [ 0; 6; 12; 18 ] "every window once, starting at a multiple of 6"
            for struct (x, y) in batches do
                for b in 0 .. 1 do
                    for t in 0 .. 5 do
                        Expect.equal y.[b, t] (x.[b, t] + 1L) "target = next character"
        }

        test "d2l consecutive sampling: rows continue across minibatches" {
            let corpus = [| 0 .. 29 |]
            let batches = LanguageModelData.Consecutive(corpus, 2, 6) |> List.ofSeq
            Expect.equal batches.Length 2 "batch_len 15, (15 − 1) / 6 = 2"
            let struct (x0, _) = batches.[0]
            let struct (x1, _) = batches.[1]
            Expect.equal [ for t in 0 .. 5 -> int x0.[1, t] ] [ 15 .. 20 ] "row 1 starts at 15"
            Expect.equal (int x1.[0, 0]) (int x0.[0, 5] + 1) "row 0 of minibatch 2 continues row 0 of minibatch 1"
            Expect.equal (int x1.[1, 0]) (int x0.[1, 5] + 1) "row 1 continues too"
        }

        test "seed 002 chunks: stride 1, input chunk[:-1], target chunk[1:]" {
            let d = LanguageModelData.Chunks([| 10 .. 14 |], 3)
            Expect.equal (arrayRows d.Inputs d.InputShape) [ [ 10; 11 ]; [ 11; 12 ]; [ 12; 13 ] ] "inputs"
            Expect.equal (arrayRows d.Targets d.TargetShape) [ [ 11; 12 ]; [ 12; 13 ]; [ 13; 14 ] ] "targets"
        }

        test "one-hot encoding" {
            use o = Tensors.OneHot(torch.tensor([| 2L; 0L |]), 3)
            Expect.equal (values o) [| 0f; 0f; 1f; 1f; 0f; 0f |] "rows"
        }

        test "too short a corpus is a clear error" {
            let e = expectSeqDslError "short" (fun () -> LanguageModelData.Consecutive([| 1; 2; 3 |], 2, 6) |> List.ofSeq)
            Expect.stringContains e.Message "too short" "message"
        }
    ]
