#!/usr/bin/env bash
# Draws the README's scaling plot: the policy `batchfan scale init --service-time 1 --slo 300
# --max 100` recommends, simulated on the burst trace, as docs/scale-burst.png.
#   bash scripts/scale-plot.sh
# `scale simulate --plot` writes SVG (plotters); rsvg-convert (Debian's librsvg2-bin, with the
# DejaVu fonts) renders it to PNG and is installed with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v rsvg-convert >/dev/null || ! fc-list 2>/dev/null | grep -qi dejavu; then
  packages="librsvg2-bin fonts-dejavu-core"
  # shellcheck disable=SC2086
  (apt-get install -y -qq --no-install-recommends $packages \
    || (apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages)) >/dev/null
fi
cargo build --quiet -p batchfan-cli
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp crates/batchfan-scale/traces/burst.csv "$work/burst.csv"
cd "$work"
"$root/target/debug/batchfan" scale init --service-time 1 --slo 300 --max 100 --output recommended.json 2>/dev/null
"$root/target/debug/batchfan" scale simulate --policy recommended.json --trace burst.csv --slo 300 --plot burst.svg >/dev/null
mkdir -p "$root/docs"
rsvg-convert --background-color white -o "$root/docs/scale-burst.png" burst.svg
echo docs/scale-burst.png
