#!/usr/bin/env bash
# Benchmarks; prints tables for BENCHMARKS.md.
#  1. planning 1,000,000 listed objects and reading one chunk of the manifest (cargo bench)
#  2. local executor overhead: 10,000 children of `true`, 2 at a time, against xargs -P 2 and
#     GNU parallel -j 2 running the same program 10,000 times
# Installs GNU parallel from Debian's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_CHILDREN:-10000}

echo "## plan (cargo bench -p batchfan --bench plan)"
cargo bench --quiet -p batchfan --bench plan 2>/dev/null | grep -E '^(\||machine)'

if ! command -v parallel >/dev/null; then
  (apt-get install -y -qq parallel || (apt-get update -qq && apt-get install -y -qq parallel)) >/dev/null
fi
cargo build --quiet --release -p batchfan-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in"
(cd "$work/in" && seq -f "%05g" 1 "$N" | xargs touch)
TRUE=$(command -v true)

time_it() { # name, command...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'| {sys.argv[3]:<44} | {s:8.2f} | {s*1000/int(sys.argv[4]):8.3f} |')" "$start" "$end" "$name" "$N"
}

echo
echo "## local executor overhead: $N children of \`true\`, 2 at a time ($(nproc) CPUs)"
echo "| runner                                       |   wall s | ms/child |"
echo "|----------------------------------------------|----------|----------|"
time_it "batchfan run --local --parallel 2" target/release/batchfan run --local --input "$work/in" \
  --output "$work/out" --max-items-per-chunk 1 --parallel 2 --log-dir "$work/logs" -- "$TRUE"
time_it "xargs -P 2 -n 1" sh -c "seq $N | xargs -P 2 -n 1 $TRUE"
time_it "GNU parallel -j 2" sh -c "seq $N | parallel -j 2 $TRUE"
