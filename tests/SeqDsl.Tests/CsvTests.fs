/// The CSV loader: types, dates, quoting, and errors that name file, line and column.
module SeqDsl.Tests.CsvTests

open System
open System.IO
open Expecto
open Microsoft.Data.Analysis
open SeqDsl.Data
open SeqDsl.Tests.Support

let private csv text = Csv.Parse(text, CsvOptions(), "prices.csv")

[<Tests>]
let tests =
    testList "Csv" [
        test "typed columns: numbers as Double, ISO dates as DateTime, the rest as text" {
            let r = csv "Date,Close,Volume,Name\n2020-01-02,10.5,4661120000,a\n2020-01-03,11,5,b\n"
            let f = r.Frame
            Expect.equal f.Rows.Count 2L "rows"
            Expect.equal (f.Columns.["Close"].DataType) typeof<double> "Close"
            Expect.equal (f.Columns.["Volume"].[0L]) (box 4661120000.0) "volume kept exactly as double"
            Expect.equal (f.Columns.["Date"].[1L]) (box (DateTime(2020, 1, 3))) "date"
            Expect.equal (f.Columns.["Name"].DataType) typeof<string> "text"
        }

        test "a duplicate header, a header without rows and invalid UTF-8 are data errors naming the file" {
            let dup = expectSeqDslError "duplicate header" (fun () -> csv "Date,Close,Close\n2020-01-02,1,2\n" |> ignore)
            Expect.stringContains dup.Message "prices.csv, line 1: the header names column 'Close' twice" "duplicate"
            let empty = expectSeqDslError "header only" (fun () -> csv "text,label\n" |> ignore)
            Expect.stringContains empty.Message "prices.csv: the file has a header but no data rows" "no rows"
            let d = tempFolder "csv-utf8"
            let path = Path.Combine(d, "bad.csv")
            File.WriteAllBytes(path, Array.concat [ "text,label\ngo"B; [| 0xFFuy |]; "od,1\n"B ])
            let bad = expectSeqDslError "invalid UTF-8" (fun () -> Csv.Load(path) |> ignore)
            Expect.stringContains bad.Message "not valid UTF-8 (bytes FF)" "names the bytes"
            Expect.equal bad.Kind SeqDsl.Spec.ErrorKind.Data "a data error (exit 2)"
        }

        test "an empty label or target cell is an error naming its line; skipping bad rows counts it instead" {
            let text = "text,label\ngood,1\n\"multi\nline\",0\nmissing,\nbad,0\n"
            let e = expectSeqDslError "empty label" (fun () -> Csv.Parse(text, CsvOptions(Required = [| "label" |]), "reviews.csv") |> ignore)
            Expect.stringContains e.Message "reviews.csv, line 5, column 'label': the cell is empty" "names the file, line and column"
            let r = Csv.Parse(text, CsvOptions(Required = [| "label" |], SkipBadRows = true), "reviews.csv")
            Expect.equal (r.Frame.Rows.Count, r.SkippedRows) (3L, 1) "three rows kept, one skipped"
            let kept = Csv.Parse(text, CsvOptions(), "reviews.csv")
            Expect.equal kept.Frame.Rows.Count 4L "without Required the empty cell is a missing value, as before"
        }

        test "RFC 4180 quoting: separators, quotes and newlines inside fields; CRLF; no trailing newline" {
            let r = csv "text,label\r\n\"good, \"\"really\"\"\nfine\",1\r\n\"bad\",0"
            Expect.equal (r.Frame.Columns.["text"].[0L]) (box "good, \"really\"\nfine") "quoted field"
            Expect.equal (r.Frame.Columns.["label"].[1L]) (box 0.0) "last row without newline"
        }

        test "chosen columns and explicit types" {
            let o = CsvOptions(Columns = [| "Volume"; "Date" |], Types = readOnlyDict [ "Volume", ColumnType.Int64 ])
            let r = Csv.Parse("Date,Open,Volume\n2020-01-02,1,7\n", o, "x.csv")
            Expect.equal [ for c in r.Frame.Columns -> c.Name ] [ "Volume"; "Date" ] "order and selection"
            Expect.equal (r.Frame.Columns.["Volume"].[0L]) (box 7L) "Int64"
        }

        test "a non-numeric value in a numeric column names file, line and column" {
            let o = CsvOptions(Types = readOnlyDict [ "Close", ColumnType.Double ])
            let e = expectSeqDslError "bad number" (fun () -> Csv.Parse("Date,Close\n2020-01-02,1\n2020-01-03,abc\n", o, "prices.csv"))
            Expect.stringContains e.Message "prices.csv, line 3, column 'Close': 'abc' is not a number" "message"
        }

        test "a wrong field count names the line" {
            let e = expectSeqDslError "fields" (fun () -> csv "a,b\n1,2\n3\n")
            Expect.stringContains e.Message "prices.csv, line 3: 1 fields, but the header has 2 columns" "message"
        }

        test "a bad date names the column" {
            let o = CsvOptions(Types = readOnlyDict [ "Date", ColumnType.Date ])
            let e = expectSeqDslError "date" (fun () -> Csv.Parse("Date,x\n2020-13-45,1\n", o, "d.csv"))
            Expect.stringContains e.Message "d.csv, line 2, column 'Date': '2020-13-45' is not a date" "message"
        }

        test "skipping bad rows counts them and keeps the rest" {
            let o = CsvOptions(SkipBadRows = true, Types = readOnlyDict [ "v", ColumnType.Double ])
            let r = Csv.Parse("k,v\na,1\nb,x\nc\nd,4\n", o, "s.csv")
            Expect.equal r.SkippedRows 2 "two skipped"
            Expect.equal r.Frame.Rows.Count 2L "two kept"
            Expect.equal r.Problems.Count 2 "problems listed"
        }

        test "an unknown column and an unclosed quote are clear errors" {
            let e = expectSeqDslError "column" (fun () -> Csv.Parse("a,b\n1,2\n", CsvOptions(Columns = [| "c" |]), "x.csv"))
            Expect.stringContains e.Message "no column 'c'" "column"
            let e2 = expectSeqDslError "quote" (fun () -> csv "a\n\"open\n")
            Expect.stringContains e2.Message "line 2: a quoted field is not closed" "quote"
        }

        test "text after a closing quote is an error naming its line, and the line an unclosed quote opens on" {
            // a quote left open mid-file swallows the next row up to the next quote: before, two rows became one
            let e = expectSeqDslError "unclosed mid-file" (fun () -> csv "text,label\ngood,pos\n\"open e,pos\nbad,neg\n\"ok\",pos\n" |> ignore)
            Expect.stringContains e.Message "prices.csv, line 5: text after the closing quote of a field that opens on line 3; is a quote on line 3 not closed?" "both lines"
            let e2 = expectSeqDslError "junk after the quote" (fun () -> csv "text,label\n\"e f\" junk,pos\n" |> ignore)
            Expect.stringContains e2.Message "prices.csv, line 2: text after the closing quote of a quoted field" "one line"
            // blanks after the closing quote are kept, as before; doubled quotes and newlines inside stay valid
            let r = csv "text,label\n\"e f\" ,1\n\"a \"\"b\"\"\nc\",0\n"
            Expect.equal (r.Frame.Columns.["text"].[0L]) (box "e f ") "a blank after the quote"
            Expect.equal (r.Frame.Columns.["text"].[1L]) (box "a \"b\"\nc") "doubled quotes and a newline"
            // a tab separator right after a closing quote
            let tabs = Csv.Parse("text\tlabel\n\"x\"\t1\n\"y z\"\t0\n", CsvOptions(Separator = '\t'), "t.tsv")
            Expect.equal (tabs.Frame.Columns.["text"].[1L]) (box "y z") "tab-separated quoted fields"
            // skipping bad rows skips the broken record (to its line's end) and reads on
            let skipped = Csv.Parse("text,label\ngood,1\n\"He said \"hi\" to me\",1\nbad,0\n", CsvOptions(SkipBadRows = true), "q.csv")
            Expect.equal (skipped.Frame.Rows.Count, skipped.SkippedRows) (2L, 1) "one record skipped, the next read"
            Expect.stringContains skipped.Problems.[0] "q.csv, line 3: text after the closing quote" "the problem listed"
        }

        test "a column that may be empty only in the last row: an empty cell in another row names the line" {
            let o = CsvOptions(EmptyInLastRow = [| "value|Close" |])
            let r = Csv.Parse("Date,Close\n2020-01-02,1\n2020-01-03,2\n2020-01-06,\n", o, "s.csv")
            Expect.equal r.Frame.Rows.Count 3L "the last row kept, its cell missing"
            Expect.isNull (r.Frame.Columns.["Close"].[2L]) "a missing value"
            let e = expectSeqDslError "inside" (fun () -> Csv.Parse("Date,Close\n2020-01-02,1\n2020-01-03,\n2020-01-06,3\n", o, "s.csv") |> ignore)
            Expect.stringContains e.Message "s.csv, line 3, column 'Close': the cell is empty (only the last row" "names the line and column"
            let two = expectSeqDslError "two empty last rows" (fun () -> Csv.Parse("Date,Close\n2020-01-02,1\n2020-01-03,\n2020-01-06,\n", o, "s.csv") |> ignore)
            Expect.stringContains two.Message "line 3, column 'Close': the cell is empty" "only the last row"
            let skipped = Csv.Parse("Date,Close\n2020-01-02,1\n2020-01-03,\n2020-01-06,3\n", CsvOptions(EmptyInLastRow = [| "Close" |], SkipBadRows = true), "s.csv")
            Expect.equal (skipped.Frame.Rows.Count, skipped.SkippedRows) (2L, 1) "skipped when asked"
        }

        test "an increasing column: a date not after the one before names both lines, skipping bad rows or not" {
            let o = CsvOptions(Increasing = "Date")
            let text = "Date,Close\n2020-01-02,1\n2020-01-03,2\n2020-01-03,3\n2020-01-06,4\n"
            let e = expectSeqDslError "a repeated date" (fun () -> Csv.Parse(text, o, "s.csv") |> ignore)
            Expect.stringContains e.Message "s.csv, line 4, column 'Date': 2020-01-03 is not after line 3's 2020-01-03" "both lines"
            Expect.stringContains e.Message "(sort the file by Date and remove repeated rows)" "the remedy"
            // never skipped: after one row out of order (a mistyped year) every later row would be
            let e2 = expectSeqDslError "with skipping" (fun () -> Csv.Parse(text, CsvOptions(Increasing = "Date", SkipBadRows = true), "s.csv") |> ignore)
            Expect.stringContains e2.Message "line 4, column 'Date'" "an error with --skip-bad-rows too"
            let back = expectSeqDslError "reversed" (fun () -> Csv.Parse("Date,Close\n2020-01-03,1\n2020-01-02,2\n", o, "s.csv") |> ignore)
            Expect.stringContains back.Message "line 3, column 'Date': 2020-01-02 is not after line 2's 2020-01-03" "reversed"
            Expect.equal (Csv.Parse("k,v\nb,1\na,2\n", o, "s.csv")).Frame.Rows.Count 2L "no such column: no check"
        }

        test "the two stock CSVs load (one has no trailing newline)" {
            withSharedFile "19900101_20230630.csv" (fun p ->
                let f = (Csv.Load p).Frame
                Expect.equal f.Rows.Count 8439L "NASDAQ rows"
                Expect.equal (f.Columns.["Date"].[8438L]) (box (DateTime(2023, 6, 30))) "last row (no trailing newline)"
                Expect.equal (f.Columns.["Volume"].[8438L]) (box 4661120000.0) "volume in the billions, exact")
            withSharedFile "19880101_20161231.csv" (fun p ->
                Expect.equal (Csv.Load p).Frame.Rows.Count 7310L "DJIA rows")
        }
    ]
