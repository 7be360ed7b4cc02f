/// The IMDB loader: folder and .tar.gz layouts, labels, ratings, errors; the real archive when present.
module SeqDsl.Tests.ImdbTests

open System.Formats.Tar
open System.IO
open System.IO.Compression
open System.Text
open Expecto
open Microsoft.Data.Analysis
open SeqDsl.Data
open SeqDsl.Tests.Support

let private reviews =
    [ "train/pos/1_9.txt", "Great <br />movie :)"
      "train/neg/2_2.txt", "Awful."
      "test/pos/3_10.txt", "Loved it"
      "test/neg/4_1.txt", "Boring" ]

let private makeFolder () =
    let d = tempFolder "imdb"
    for name, text in reviews do
        let p = Path.Combine(d, "aclImdb", name)
        Directory.CreateDirectory(Path.GetDirectoryName p) |> ignore
        File.WriteAllText(p, text)
    d

let private makeTarGz () =
    let d = makeFolder ()
    let tar = Path.Combine(tempFolder "imdbtgz", "aclImdb_v1.tar.gz")
    using (new GZipStream(File.Create tar, CompressionLevel.Fastest)) (fun gz ->
        TarFile.CreateFromDirectory(Path.Combine(d, "aclImdb"), gz, true))
    tar

let private check (f: DataFrame) =
    Expect.equal f.Rows.Count 4L "rows"
    Expect.equal [ for i in 0L .. 3L -> string f.Columns.["split"].[i], f.Columns.["label"].[i] :?> int, f.Columns.["rating"].[i] :?> int ]
        [ "train", 1, 9; "train", 0, 2; "test", 1, 10; "test", 0, 1 ] "split, label, rating (train first, positive first)"
    Expect.equal (string f.Columns.["text"].[0L]) "Great <br />movie :)" "text"

[<Tests>]
let tests =
    testList "Imdb" [
        test "from the extracted folder" { check (Imdb.Load(makeFolder ())) }
        test "straight from the .tar.gz" { check (Imdb.Load(makeTarGz ())) }
        test "one split only" { Expect.equal (Imdb.Load(makeFolder (), "test")).Rows.Count 2L "test only" }
        test "a classifier of IMDB reviews names its classes neg and pos (label 0 and 1)" {
            let data = "imdb:" + makeFolder ()
            let e = SeqDsl.Workflows.ExperimentSpec(Model = "Embed(4).Gru(4).Dense(1, Sigmoid)", Data = data)
            let task = SeqDsl.Workflows.SeqTask.For(SeqDsl.Workflows.DataSource.Parse data, e.Preprocessing)
            let prepared = task.Prepare(e, SeqDsl.Workflows.Experiment.ParseModel e.Model, null, null)
            Expect.equal (List.ofSeq prepared.Info.ClassNames) [ "neg"; "pos" ] "names of labels 0 and 1"
            // the test reviews in order: pos ("Loved it") is label 1, neg ("Boring") label 0
            Expect.equal (prepared.Test.Targets.data<float32>().ToArray()) [| 1.0f; 0.0f |] "pos is class 1"
        }
        test "a folder without the layout is a clear error" {
            let e = expectSeqDslError "layout" (fun () -> Imdb.Load(tempFolder "empty"))
            Expect.stringContains e.Message "does not have the IMDB layout" "message"
            let e2 = expectSeqDslError "missing" (fun () -> Imdb.Load "/nonexistent/aclImdb")
            Expect.stringContains e2.Message "IMDB data not found" "message"
        }
        test "the real archive: 25,000 + 25,000 reviews, half positive" {
            withSharedFile "aclImdb_v1_labeled.tar.gz" (fun p ->
                let f = Imdb.Load p
                let count split label =
                    Seq.zip (f.Columns.["split"] :?> StringDataFrameColumn) (f.Columns.["label"] :?> Int32DataFrameColumn)
                    |> Seq.filter (fun (s, l) -> s = split && l.Value = label) |> Seq.length
                Expect.equal (count "train" 1, count "train" 0, count "test" 1, count "test" 0) (12500, 12500, 12500, 12500) "counts")
        }
    ]
