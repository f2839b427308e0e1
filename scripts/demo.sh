#!/usr/bin/env bash
# The main job on this machine: generate a small text dataset, count its words with one local
# child per chunk (`batchfan run --local ... -- batchfan-worker wordcount`), print the top words.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p batchfan-cli -p batchfan-worker-image
export PATH="$PWD/target/debug:$PATH"
demo=.demo
rm -rf "$demo"
python3 scripts/gen_text.py --out "$demo/input"
batchfan run --local --input "$demo/input" --output "$demo/output" \
  --children 8 --split-bytes 512KiB --parallel 4 -- batchfan-worker wordcount
echo
echo "top 10 words (count, word):"
awk -F'\t' '{ c[$1] += $2 } END { for (w in c) printf "%d\t%s\n", c[w], w }' "$demo"/output/part-* \
  | sort -k1,1nr -k2,2 | head -n 10
