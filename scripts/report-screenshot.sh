#!/usr/bin/env bash
# Refreshes docs/report.png, the README's screenshot of the HTML report: the browser test
# (tests/tests/report_html.rs) renders a local run with a failed chunk in headless Chromium and
# keeps its screenshot there.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs chromium: apt-get install -y chromium" >&2; exit 2; }
cargo build --quiet -p batchfan-cli -p batchfan-worker-image -p batchfan-tests --bins
BATCHFAN_REPORT_SCREENSHOT="$PWD/docs/report.png" \
  cargo test --quiet -p batchfan-tests --test report_html -- --nocapture
echo "wrote docs/report.png"
