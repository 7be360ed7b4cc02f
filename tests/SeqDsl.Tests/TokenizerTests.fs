/// Tokenizers (Keras, seed 002, characters, white space) and the vocabulary.
module SeqDsl.Tests.TokenizerTests

open Expecto
open FsCheck.FSharp
open Microsoft.Data.Analysis
open SeqDsl.Data
open SeqDsl.Tests.Support

let private toks (t: Tokenizer) s = List.ofSeq (t.Tokenize s)

[<Tests>]
let tests =
    testList "Tokenizer" [
        test "Keras text_to_word_sequence: lower-case, filters, split on spaces" {
            Expect.equal (toks Tokenizer.Keras "Hello, World! It's\tfine--really.") [ "hello"; "world"; "it's"; "fine"; "really" ] "tokens"
        }

        test "seed 002: tags stripped, non-word runs collapsed, emoticons appended (as the book's code glues them)" {
            Expect.equal (toks Tokenizer.Seed002 "This <br />movie is GREAT :) ;-( wow") [ "this"; "movie"; "is"; "great"; "wow:)"; ";(" ] "tokens"
            Expect.equal (toks Tokenizer.Seed002 "Ends with a smile :-)") [ "ends"; "with"; "a"; "smile"; ":)" ] "trailing emoticon"
            Expect.equal (toks Tokenizer.Seed002 "café déjà-vu ½ x_y") [ "café"; "déjà"; "vu"; "½"; "x_y" ] "Python's word characters"
        }

        test "characters are code points; whitespace splits on runs" {
            Expect.equal (toks Tokenizer.Characters "分开 a😀") [ "分"; "开"; " "; "a"; "😀" ] "runes"
            Expect.equal (toks Tokenizer.Whitespace "  a\tb\n c ") [ "a"; "b"; "c" ] "whitespace"
        }

        test "tokenizers round-trip through their names" {
            for t in Tokenizer.All do Expect.equal (Tokenizer.FromName t.Name) t t.Name
            let e = expectSeqDslError "unknown" (fun () -> Tokenizer.FromName "spacy")
            Expect.stringContains e.Message "one of keras, seed002, chars, whitespace" "lists names"
        }

        test "seed 003's Keras Tokenizer example: [[2,3,1],[1,2],[1]]" {
            let texts = [ "life is good"; "good life"; "good" ]
            let v = Vocabulary.Build([ for t in texts -> Tokenizer.Keras.Tokenize t ], VocabularyOptions.Keras())
            Expect.equal [ for t in texts -> List.ofArray (v.Encode(Tokenizer.Keras.Tokenize t)) ] [ [ 2; 3; 1 ]; [ 1; 2 ]; [ 1 ] ] "sequences"
        }

        test "Keras num_words keeps indices below N and drops the rest; an oov token takes index 1" {
            let texts = [ [| "a"; "a"; "a"; "b"; "b"; "c" |] :> System.Collections.Generic.IReadOnlyList<string> ]
            let v = Vocabulary.Build(texts, VocabularyOptions.Keras(numWords = 3))
            Expect.equal (List.ofArray (v.Encode [| "a"; "b"; "c"; "zz" |])) [ 1; 2 ] "c (index 3) and unknown dropped"
            let o = Vocabulary.Build(texts, VocabularyOptions.Keras(numWords = 3, oovToken = "<OOV>"))
            Expect.equal (List.ofArray (o.Encode [| "a"; "b"; "c" |])) [ 2; 1; 1 ] "oov = 1, a = 2, b (index 3) out of range → oov"
        }

        test "seed 002 vocabulary: <pad> 0, <unk> 1, frequency order with first-seen tie-break, unknown → 1" {
            let texts = [ [| "x"; "y"; "y"; "z"; "x"; "w" |] :> System.Collections.Generic.IReadOnlyList<string> ]
            let v = Vocabulary.Build(texts, VocabularyOptions.Seed002())
            Expect.equal (List.ofSeq v.Tokens) [ "<pad>"; "<unk>"; "x"; "y"; "z"; "w" ] "x and y tie at 2: x seen first"
            Expect.equal (List.ofArray (v.Encode [| "w"; "nope" |])) [ 5; 1 ] "unknown → 1"
            let m = Vocabulary.Build(texts, VocabularyOptions.Seed002(minFreq = 2))
            Expect.equal m.Size 4 "minFreq 2 keeps x, y"
        }

        testProperty "a vocabulary round-trips through JSON" (fun (words: FsCheck.NonNull<string> list) ->
            let texts = [ words |> List.map (fun w -> w.Get) |> Array.ofList :> System.Collections.Generic.IReadOnlyList<string> ]
            let v = Vocabulary.Build(texts, VocabularyOptions.Seed002())
            let back = Vocabulary.FromJson(v.ToJson())
            List.ofSeq back.Tokens = List.ofSeq v.Tokens && back.UnknownIndex = v.UnknownIndex)

        test "seed 002's tokenizer on the 25,000 IMDB training reviews: 75,977 distinct words" {
            withSharedFile "aclImdb_v1_labeled.tar.gz" (fun p ->
                let f = Imdb.Load(p, "train")
                let texts = f.Columns.["text"] :?> StringDataFrameColumn
                let v = Vocabulary.Build(texts |> Seq.map Tokenizer.Seed002.Tokenize, VocabularyOptions.Seed002())
                Expect.equal (v.Size - 2) 75977 "words besides <pad> and <unk>")
        }
    ]
