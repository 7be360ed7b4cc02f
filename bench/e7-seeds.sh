#!/usr/bin/env bash
# Seed 003's E7 (five models) over seeds, under Keras's or libtorch's optimizer rules: two runs at a time, one
# libtorch thread each; every run writes its model directory, history.csv and metrics.json under OUT, and one line
# "rules model seed test_accuracy val_accuracy_by_epoch wall_s" to OUT/summary.tsv.
#   bash bench/e7-seeds.sh OUT keras|torch "1 2 3" [model names: simplernn lstm gru bilstm stacked-lstm]
#   E7_EXTRA="--kernel simd" bash bench/e7-seeds.sh …   (extra train options for every run)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"; rules="$2"; seeds="$3"; shift 3
models="${*:-simplernn lstm gru bilstm stacked-lstm}"
mkdir -p "$out"
cd "$repo"
# E7_CLI=path/SeqDsl.Cli.dll runs a copy of the tool (so that builds meanwhile cannot touch it); else the Release build
if [ -n "${E7_CLI:-}" ]; then cli="$E7_CLI"; else
  dotnet build -c Release src/SeqDsl.Cli -v q -nologo > /dev/null || exit 1
  cli="$repo/src/SeqDsl.Cli/bin/Release/net10.0/SeqDsl.Cli.dll"
fi
export OMP_WAIT_POLICY=PASSIVE
run() {
  local model=$1 seed=$2 dir="$out/$rules-$1-seed$2"
  local start=$(date +%s)
  if dotnet "$cli" train --experiment "examples/experiments/e7-imdb-$model.json" --seed "$seed" --optimizer-rules "$rules" \
       --threads 1 ${E7_EXTRA:-} --out "$dir" > "$dir.log" 2>&1; then
    local acc=$(python3 -c "import json; print(round(100 * json.load(open('$dir/metrics.json'))['test']['accuracy'], 2))")
    local val=$(python3 -c "
import csv; rows = list(csv.DictReader(open('$dir/history.csv')))
print(' '.join(str(round(100 * float(r['val_accuracy']), 1)) for r in rows))")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rules" "$model" "$seed" "$acc" "$val" "$(( $(date +%s) - start ))" >> "$out/summary.tsv"
  else
    printf '%s\t%s\t%s\tFAILED\t\t%s\n' "$rules" "$model" "$seed" "$(( $(date +%s) - start ))" >> "$out/summary.tsv"
  fi
}
jobs=()
for seed in $seeds; do for model in $models; do jobs+=("$model $seed"); done; done
i=0
for job in "${jobs[@]}"; do
  run $job &
  i=$((i + 1))
  if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
cat "$out/summary.tsv"
