/// Series features (pandas semantics), the scaler, windows, date splits, seeded splits.
module SeqDsl.Tests.SeriesTests

open System
open Expecto
open Microsoft.Data.Analysis
open SeqDsl.Data
open SeqDsl.Tests.Support
open SeqDsl.Tests.TorchSupport

let private opt (xs: float list) = xs |> List.map Nullable |> Array.ofList |> Array.map (fun n -> if n.HasValue then Some n.Value else None)
let private arr (xs: Nullable<float>[]) = xs |> Array.map (fun n -> if n.HasValue then Some (Math.Round(n.Value, 6)) else None) |> List.ofArray

[<Tests>]
let tests =
    testList "Series" [
        test "shift, rolling mean, rolling std (ddof 1), return, ratio — against hand values" {
            let x = [| Nullable 1.0; Nullable 2.0; Nullable 4.0; Nullable 8.0 |]
            Expect.equal (arr (SeriesFeatures.Shift(x, 1))) [ None; Some 1.0; Some 2.0; Some 4.0 ] "shift"
            Expect.equal (arr (SeriesFeatures.RollingMean(x, 2))) [ None; Some 1.5; Some 3.0; Some 6.0 ] "mean"
            Expect.equal (arr (SeriesFeatures.RollingStd(x, 3))) [ None; None; Some (Math.Round(sqrt (7.0 / 3.0), 6)); Some (Math.Round(sqrt (28.0 / 3.0), 6)) ] "std"
            Expect.equal (arr (SeriesFeatures.Return(x, 1))) [ None; Some 1.0; Some 1.0; Some 1.0 ] "return"
            Expect.equal (arr (SeriesFeatures.Ratio(x, SeriesFeatures.Shift(x, 1)))) [ None; Some 2.0; Some 2.0; Some 2.0 ] "ratio"
        }

        test "seed 002's 37 features: names, the first usable row, and a hand-checked value" {
            let n = 300
            let day i = DateTime(2000, 1, 1).AddDays(float i)
            let close = [| for i in 0 .. n - 1 -> 100.0 + float i |]
            let prices =
                DataFrame(PrimitiveDataFrameColumn<DateTime>("Date", [ for i in 0 .. n - 1 -> day i ]),
                          DoubleDataFrameColumn("Open", close |> Array.map (fun c -> c - 0.5)),
                          DoubleDataFrameColumn("High", close |> Array.map (fun c -> c + 1.0)),
                          DoubleDataFrameColumn("Low", close |> Array.map (fun c -> c - 1.0)),
                          DoubleDataFrameColumn("Close", close),
                          DoubleDataFrameColumn("Volume", [| for i in 0 .. n - 1 -> 1000.0 + float (i % 7) |]))
            let f = SeriesFeatures.Seed002 prices
            Expect.equal (f.Columns.Count - 2) 37 "37 features besides Date and close"
            // the longest look-back: moving_avg_365 needs return_1 (2 rows) then 252 more, shifted once
            Expect.equal f.Rows.Count (int64 (n - 254)) "rows dropped until every feature exists"
            Expect.equal (f.Columns.["Date"].[0L]) (box (day 254)) "first usable day"
            Expect.equal (f.Columns.["avg_price_5"].[0L]) (box ((349.0 + 350.0 + 351.0 + 352.0 + 353.0) / 5.0)) "mean of the 5 closes before day 254"
        }

        test "standard scaler fitted on the training rows only; JSON round-trip" {
            let train = DataFrame(DoubleDataFrameColumn("a", [ 1.0; 3.0 ]))
            let test = DataFrame(DoubleDataFrameColumn("a", [ 5.0 ]))
            let s = StandardScaler.Fit(train, [| "a" |])
            Expect.equal (s.Transform train) [| -1.0f; 1.0f |] "population std (sklearn)"
            Expect.equal (s.Transform test) [| 3.0f |] "test scaled with the training statistics"
            let back = StandardScaler.FromJson(s.ToJson())
            Expect.equal (List.ofSeq back.Mean, List.ofSeq back.Std) (List.ofSeq s.Mean, List.ofSeq s.Std) "round-trip"
        }

        test "sliding windows: label = target of the window's last row (seed 002's create_sequences)" {
            let feats = Array.init 10 float32 // 5 rows × 2 features
            let d = Windows.Sliding(feats, 2, [| 10.0; 11.0; 12.0; 13.0; 14.0 |], 3)
            Expect.equal (List.ofArray d.InputShape) [ 2L; 3L; 2L ] "5 − 3 = 2 windows"
            Expect.equal (d.Targets :?> float32[]) [| 12.0f; 13.0f |] "labels of rows 2 and 3"
            Expect.equal (d.Inputs :?> float32[]).[6..11] [| 2f; 3f; 4f; 5f; 6f; 7f |] "second window = rows 1..3"
        }

        test "date split is inclusive" {
            let f = DataFrame(PrimitiveDataFrameColumn<DateTime>("Date", [ DateTime(2022, 12, 30); DateTime(2022, 12, 31); DateTime(2023, 1, 3) ]))
            Expect.equal (Windows.Between(f, DateTime(1990, 1, 1), DateTime(2022, 12, 31))).Rows.Count 2L "train"
            Expect.equal (Windows.Between(f, DateTime(2023, 1, 1), DateTime(2023, 6, 30))).Rows.Count 1L "test"
        }

        test "seeded splits partition the rows; stratified keeps label proportions" {
            let labels = [| for i in 0 .. 99 -> if i < 80 then 0 else 1 |]
            let struct (tr, va, te) = Splits.Split(100, 0.1, 0.2, 5, labels)
            Expect.equal (Array.concat [ tr; va; te ] |> Array.sort) [| 0 .. 99 |] "partition"
            Expect.equal (te |> Array.filter (fun i -> labels.[i] = 1) |> Array.length) 4 "20 % of the 20 positives"
            let struct (tr2, va2, te2) = Splits.Split(100, 0.1, 0.2, 5, labels)
            Expect.equal (tr2, va2, te2) (tr, va, te) "same seed, same split"
            expectSeqDslError "fractions" (fun () -> Splits.Split(10, 0.5, 0.5, 1)) |> ignore
        }

        test "NASDAQ: seed 002's features, train to 2022-12-31, test 2023-H1" {
            withSharedFile "19900101_20230630.csv" (fun p ->
                let f = SeriesFeatures.Seed002 (Csv.Load p).Frame
                let train = Windows.Between(f, DateTime(1990, 1, 1), DateTime(2022, 12, 31))
                let test = Windows.Between(f, DateTime(2023, 1, 1), DateTime(2023, 6, 30))
                Expect.equal test.Rows.Count 124L "trading days in 2023-H1"
                Expect.equal (train.Rows.Count + test.Rows.Count) f.Rows.Count "every row in one part")
        }
    ]
