#!/bin/bash
# Issue 13's reproductions against one Release build of the CLI (dotnet build -c Release src/SeqDsl.Cli in REPO):
# prints, per case, the exit code and the last line of its output.  Usage: bash bench/reliability.sh [REPO]
repo=$(cd "${1:-.}" && pwd); cli="dotnet $repo/src/SeqDsl.Cli/bin/Release/net10.0/SeqDsl.Cli.dll"
t=$(mktemp -d); cd $repo
r() { label=$1; shift; out=$("$@" 2>&1); rc=$?; echo "$label | rc=$rc | $(echo "$out" | grep -v '^\s*$' | tail -1 | cut -c1-160)"; }
printf 'text,label\n' > $t/r.csv; for i in $(seq 1 40); do if [ $((i%2)) = 0 ]; then echo "a good film,1"; else echo "a bad film,0"; fi >> $t/r.csv; done
printf 'an unlabelled film,\n' >> $t/r.csv
r "empty label" $cli train --model "Embed(4).Gru(4).Dense(1, Sigmoid)" --data csv:$t/r.csv --epochs 1 --threads 1
r "summary overflow" $cli summary --model "Lstm(2000000000).Dense(1)" --features 3
r "embed 2e9" timeout 60 $cli train --model "Embed(2000000000).Lstm(4).Dense(1, Sigmoid)" --data synthetic:negation --epochs 1 --threads 1
r "chars int.min" $cli train --model "Gru(8, returnSequences: true).Dense(5)" --data text:/nonexistent.txt --chars -2147483648
r "trainEnd 0001" $cli train --model "Lstm(4).Dense(1)" --data synthetic:seasonal --train-end 0001-01-01 --epochs 1 --threads 1
$cli train --model "Embed(4).Gru(4).Dense(1, Sigmoid)" --data synthetic:negation --epochs 1 --threads 1 --out $t/m > /dev/null 2>&1
python3 - "$t/m/weights.dat" <<'PY'
import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)-3]^=0x40; open(p,'wb').write(b)
PY
r "bit flip in weights" $cli predict --model-dir $t/m --text "not good"
r "resume flag" $cli train --model "Embed(4).Gru(4).Dense(1, Sigmoid)" --data synthetic:negation --epochs 1 --out $t/m2 --resume
rm -rf $t
