/// Plain-text corpora: files, .gz, zip members, BOM, newlines, invalid UTF-8.
module SeqDsl.Tests.TextCorpusTests

open System.IO
open System.IO.Compression
open System.Text
open Expecto
open SeqDsl.Data
open SeqDsl.Tests.Support

[<Tests>]
let tests =
    testList "TextCorpus" [
        test "file with BOM and CRLF: BOM removed, newlines normalised, lower-cased on request" {
            let d = tempFolder "text"
            let p = Path.Combine(d, "a.txt")
            File.WriteAllBytes(p, Array.append [| 0xEFuy; 0xBBuy; 0xBFuy |] (Encoding.UTF8.GetBytes "Hello\r\nWorld"))
            Expect.equal (TextCorpus.Load p) "Hello\r\nWorld" "BOM removed"
            Expect.equal (TextCorpus.Load(p, TextOptions(NormalizeNewlines = true, Lowercase = true))) "hello\nworld" "options"
            Expect.equal (TextCorpus.Load(p, TextOptions(KeepBom = true))).[0] '\uFEFF' "kept on request"
        }

        test "zip member and .gz" {
            let d = tempFolder "zip"
            let z = Path.Combine(d, "c.zip")
            using (ZipFile.Open(z, ZipArchiveMode.Create)) (fun zip ->
                for name, text in [ "a.txt", "alpha"; "b.txt", "beta" ] do
                    use w = new StreamWriter(zip.CreateEntry(name).Open())
                    w.Write(text: string))
            Expect.equal (TextCorpus.Load(z, TextOptions(ZipMember = "b.txt"))) "beta" "member"
            let e = expectSeqDslError "which member" (fun () -> TextCorpus.Load z)
            Expect.stringContains e.Message "has 2 members" "ambiguous"
            let e2 = expectSeqDslError "missing member" (fun () -> TextCorpus.Load(z, TextOptions(ZipMember = "c.txt")))
            Expect.stringContains e2.Message "one of a.txt, b.txt" "lists members"
            let g = Path.Combine(d, "c.txt.gz")
            using (new GZipStream(File.Create g, CompressionLevel.Fastest)) (fun s -> s.Write(Encoding.UTF8.GetBytes "gamma"))
            Expect.equal (TextCorpus.Load g) "gamma" "gz"
        }

        test "invalid UTF-8 is an error with the byte offset" {
            let d = tempFolder "bad"
            let p = Path.Combine(d, "bad.txt")
            File.WriteAllBytes(p, Array.concat [ Encoding.UTF8.GetBytes "abcé"; [| 0xFFuy |]; Encoding.UTF8.GetBytes "z" ])
            let e = expectSeqDslError "utf8" (fun () -> TextCorpus.Load p)
            Expect.stringContains e.Message "invalid UTF-8 at byte offset 5 (0xFF)" "offset after 'abcé' (5 bytes)"
        }

        test "Jay Chou: newlines replaced, first 10,000 characters → 1,027 distinct (seed 004)" {
            withSharedFile "jaychou_lyrics.txt.zip" (fun p ->
                let text = (TextCorpus.Load p).Replace('\n', ' ').Replace('\r', ' ').Substring(0, 10000)
                Expect.equal (Vocabulary.Characters text).Size 1027 "distinct characters")
        }

        test "War and Peace lower-cased with CRLF→LF: 3,196,213 characters, 57 distinct (BOM kept, as Python reads it)" {
            withSharedFile "warpeace_input.txt.gz" (fun p ->
                let text = TextCorpus.Load(p, TextOptions(NormalizeNewlines = true, Lowercase = true, KeepBom = true))
                Expect.equal (text.EnumerateRunes() |> Seq.length) 3196213 "characters"
                Expect.equal (Vocabulary.Characters text).Size 57 "distinct"
                let noBom = TextCorpus.Load(p, TextOptions(NormalizeNewlines = true, Lowercase = true))
                Expect.equal (Vocabulary.Characters noBom).Size 56 "56 without the BOM")
        }
    ]
