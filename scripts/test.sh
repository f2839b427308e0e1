#!/usr/bin/env bash
# Runs every test. Installs the moto server (the AWS emulator the integration tests start on
# free 127.0.0.1 ports, one per test binary) into .venv-moto when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
if ! .venv-moto/bin/python -c 'import moto.server, docker' 2>/dev/null; then
  echo "installing moto[server,batch]==$MOTO_VERSION into .venv-moto" >&2
  python3 -m venv .venv-moto
  .venv-moto/bin/pip install --quiet --no-cache-dir --disable-pip-version-check "moto[server,batch]==$MOTO_VERSION"
fi
# The HTML report's browser test (tests/tests/report_html.rs) renders in Debian's Chromium; without
# it the test says so and skips, so a failed install does not stop the tests.
if ! command -v chromium >/dev/null; then
  echo "installing chromium (for the HTML report's browser test)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
    || echo "could not install chromium: the browser test will skip" >&2
fi
# The integration tests run the workspace's binaries (batchfan, batchfan-worker, test workers).
cargo build --workspace --bins --quiet
cargo test --workspace --quiet "$@"
