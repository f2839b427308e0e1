#!/usr/bin/env bash
# The worker image's figures for BENCHMARKS.md: the static binary's size (stripped and not), the
# image's size, and a child's cold start: from `docker run` (and from the container's start) to
# the worker's first GET. The GET goes to a local HTTP server that records when it arrives and
# answers 404 (the manifest is "missing": the worker then exits), so nothing but start-up is timed.
#   bash scripts/bench-image.sh [--no-build] [--rounds N] [--debug]
# --debug measures the test image instead (debug build, linked dynamically, libraries copied in).
set -euo pipefail
cd "$(dirname "$0")/.."
build=1 rounds=7 profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --rounds) rounds=$2; shift ;;
    --debug) profile=debug ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-image.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
tag=batchfan-worker:bench
flags=(--release --static --tag "$tag")
[ "$profile" = debug ] && flags=(--debug --dynamic --tag "$tag")
[ "$build" = 1 ] || flags+=(--no-build)
bash worker-image/build.sh "${flags[@]}" >/dev/null
triple=$(rustup target list --installed | grep -m1 -E "^$(uname -m)-unknown-linux-musl$" || echo "$(uname -m)-unknown-linux-gnu")
unstripped=target/$triple/release/batchfan-worker
[ "$profile" = debug ] && unstripped=target/debug/batchfan-worker
stripped=target/image/$profile/context/worker-image/rootfs/usr/local/bin/batchfan-worker
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "binary: $(mib "$(stat -c %s "$unstripped")") unstripped, $(mib "$(stat -c %s "$stripped")") stripped ($(file -b "$stripped" | grep -oE 'static-pie linked|statically linked|dynamically linked'))"
echo "debug info: $(mib "$(stat -c %s target/image/$profile/batchfan-worker.debug)") (target/image/$profile/batchfan-worker.debug)"
echo "image $tag: $(mib "$(docker image inspect --format '{{.Size}}' "$tag")")"

dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY' &
import http.server, os, sys, time
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = os.path.join(d, "first-get")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"{time.time()}\n")
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        body = b"<Error><Code>NoSuchKey</Code><Message>bench</Message></Error>"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_HEAD = do_GET
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(os.path.join(d, "port"), "w").write(str(s.server_address[1]))
s.serve_forever()
PY
server=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.05; done
port=$(cat "$dir/port")
from_run=() from_start=()
for i in $(seq "$rounds"); do
  rm -f "$dir/first-get"
  name=batchfan-bench-$$-$i
  t0=$(date +%s.%N)
  docker run --name "$name" --network host -e AWS_ENDPOINT_URL="http://127.0.0.1:$port" -e AWS_REGION=us-east-1 \
    -e AWS_ACCESS_KEY_ID=bench -e AWS_SECRET_ACCESS_KEY=bench -e AWS_EC2_METADATA_DISABLED=true \
    -e BATCHFAN_MANIFEST=s3://bench/manifest.jsonl -e AWS_BATCH_JOB_ARRAY_INDEX=0 "$tag" wordcount >/dev/null 2>&1 || true
  started=$(docker inspect --format '{{.State.StartedAt}}' "$name")
  docker rm "$name" >/dev/null
  [ -s "$dir/first-get" ] || { echo "round $i: no GET arrived" >&2; continue; }
  t1=$(cat "$dir/first-get")
  from_run+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
  from_start+=("$(python3 -c "import datetime,sys; s=sys.argv[1]; s=s[:26]+'+00:00' if s.endswith('Z') else s; print(round(($t1 - datetime.datetime.fromisoformat(s).timestamp()) * 1000))" "$started")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "cold start, docker run -> first GET: median $(median "${from_run[@]}") ms (rounds: ${from_run[*]})"
echo "cold start, container started -> first GET: median $(median "${from_start[@]}") ms (rounds: ${from_start[*]})"
