#!/bin/bash
# The longer fuzz run of docs/RELIABILITY.md: every fuzzer of tests/SeqDsl.Tests/FuzzTests.fs with its case count
# multiplied by SCALE (default 25: 100,000 model texts, 60,000 experiment files, 60,000 CSV files, 7,500 model
# directories; about a minute on 2 cores). Prints one line per fuzzer and Expecto's verdict.
#   bash bench/fuzz.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build tests/SeqDsl.Tests -v q -nologo | tail -1
SEQDSL_FUZZ_SCALE="${1:-25}" dotnet run --no-build --project tests/SeqDsl.Tests -- --filter-test-list Fuzz 2>&1 \
  | grep -aE "^fuzz |EXPECTO!" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'
