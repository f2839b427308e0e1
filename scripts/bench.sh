#!/usr/bin/env bash
# Benchmarks; prints tables for BENCHMARKS.md.
#  1. planning 1,000,000 listed objects and reading one chunk of the manifest (cargo bench)
#  2. local executor overhead: 10,000 children of `true`, 2 at a time, against xargs -P 2 and
#     GNU parallel -j 2 running the same program 10,000 times
#  3. AWS Batch requests of a 10,000-chunk run against a per-chunk submitter, on moto
#  4. SQS queue runs on moto: messages sent per second by `batchfan enqueue`, SQS requests per chunk
#     on the worker side
#  5. S3 data plane on s3s-fs against curl and awscli
# Installs GNU parallel from Debian's packages, moto into .venv-moto, s3s-fs and awscli under
# target/bench-tools when they are missing.
#  6. scaling policies on three traces against an oracle (pure simulation)
#  7. the worker's read path on s3s-fs: against raw concurrent curl GETs, a 10 GiB object's memory
#     peak, prefetch on a chunk of many small objects
#  8. exec --stdin on s3s-fs: a program fed one object on stdin against four concurrent curl ranges
#     and the in-process count handler, median of interleaved rounds
#  9. listing at scale: `plan` of 10,000,000 keys from the simulated S3 listing (tests crate's
#     s3_list_sim, 30 ms a request) at --list-concurrency 1, 8, 32, 64, 128: wall time, requests,
#     peak RSS
# 10. the HTML report of 1,000 / 10,000 / 100,000 chunks: render time and size (cargo bench), and
#     the 100,000-chunk page loaded in headless Chromium (when installed)
# 11. enqueue of 1,000,000 chunks to the simulator's SQS SendMessageBatch at 30 ms a request:
#     messages per second at BATCHFAN_SQS_RPS 500 (the default) and 1000
# 12. planning from an S3 Inventory: `plan --input-inventory` of 1,000,000 rows (BENCH_INVENTORY_ROWS)
#     in 10 CSV.gz, then 10 Parquet data files (tests crate's inventory_gen, a local copy), the
#     input bucket on the simulated S3: wall time, peak RSS
#   bash scripts/bench.sh [plan|local|batch|queue|scale|s3|worker|exec|list|enqueue|inventory|report]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_CHILDREN:-10000}
only=${1:-all}
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }

if want plan; then
  echo "## plan (cargo bench -p batchfan --bench plan)"
  cargo bench --quiet -p batchfan --bench plan 2>/dev/null | grep -E '^(\||machine)'
fi

if want report; then
  echo "## report (cargo bench -p batchfan --bench report_html)"
  pages=$(mktemp -d)
  BENCH_REPORT_HTML_DIR=$pages cargo bench --quiet -p batchfan --bench report_html 2>/dev/null | grep -E '^\|'
  if command -v chromium >/dev/null; then
    start=$(date +%s.%N)
    chromium --headless --no-sandbox --disable-gpu --user-data-dir="$pages/profile" \
      --screenshot="$pages/shot.png" --window-size=1400,2000 "file://$pages/report-100000.html" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "chromium: 100,000-chunk page loaded and screenshot taken in $(python3 -c "print(round($end - $start, 2))") s (browser start included)"
  fi
  rm -rf "$pages"
fi

if want local && ! command -v parallel >/dev/null; then
  (apt-get install -y -qq parallel || (apt-get update -qq && apt-get install -y -qq parallel)) >/dev/null
fi
# The scaling section is a pure simulation: it needs neither binary.
[ "$only" = scale ] || cargo build --quiet --release -p batchfan-cli -p batchfan-worker-image
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

if want local; then
echo
echo "## local executor overhead: $N children of \`true\`, 2 at a time ($(nproc) CPUs)"
echo "| runner                                       |   wall s | ms/child |"
echo "|----------------------------------------------|----------|----------|"
time_it "batchfan run --local --parallel 2" target/release/batchfan run --local --input "$work/in" \
  --output "$work/out" --max-items-per-chunk 1 --parallel 2 --log-dir "$work/logs" -- "$TRUE"
time_it "xargs -P 2 -n 1" sh -c "seq $N | xargs -P 2 -n 1 $TRUE"
time_it "GNU parallel -j 2" sh -c "seq $N | parallel -j 2 $TRUE"
fi

moto_pid= s3s_pid= sim_pid=
trap 'exec 3>&- 2>/dev/null; kill $moto_pid $s3s_pid $sim_pid 2>/dev/null || true; wait $moto_pid $s3s_pid $sim_pid 2>/dev/null || true; rm -rf "$work"' EXIT
MOTO=
start_moto() { # once per run of this script
  [ -n "$MOTO" ] && return
  if ! .venv-moto/bin/python -c 'import moto.server' 2>/dev/null; then
    python3 -m venv .venv-moto
    .venv-moto/bin/pip install --quiet --disable-pip-version-check "moto[server,batch]==5.2.5"
  fi
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkfifo "$work/moto.in"
  .venv-moto/bin/python tests/moto_server.py "$port" < "$work/moto.in" > "$work/moto.out" 2>/dev/null &
  moto_pid=$!
  exec 3> "$work/moto.in" # moto runs while this end is open
  until grep -q ready "$work/moto.out" 2>/dev/null; do sleep 0.2; done
  MOTO="http://127.0.0.1:$port"
}
moto_version() { .venv-moto/bin/python -c 'import moto; print(moto.__version__)' 2>/dev/null || echo '?'; }
aws_env=(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true)

if want batch; then
start_moto
echo
echo "## AWS Batch requests of a $N-chunk run (moto $(moto_version))"
.venv-moto/bin/python tests/moto_batch.py "$MOTO" bench >/dev/null
env "${aws_env[@]}" AWS_ENDPOINT_URL="$MOTO" BATCHFAN_BATCH_RPS=1000 BENCH_QUEUE=bench \
  BATCHFAN_HOME="$work/home" cargo bench --quiet -p batchfan --bench batch_requests 2>/dev/null | grep -E '^\|'
fi

if want queue; then
start_moto
queue() { # name -> url
  .venv-moto/bin/python -c 'import boto3, sys
c = boto3.client("sqs", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
print(c.create_queue(QueueName=sys.argv[2])["QueueUrl"])' "$MOTO" "$1"
}
# moto's SQS slows down as a queue deepens (one 10,000-message enqueue did not finish in 20
# minutes of moto CPU), so the queue rows use QN chunks.
QN=${BENCH_QUEUE_CHUNKS:-1000}
mkdir -p "$work/qin-enqueue"
(cd "$work/qin-enqueue" && seq -f "%05g" 1 "$QN" | xargs touch)
echo
echo "## SQS queue runs (moto $(moto_version), $(nproc) CPUs)"
echo "| step                                               | messages | requests |   wall s | messages/s | note |"
echo "|----------------------------------------------------|----------|----------|----------|------------|------|"
for rps in 100 1000; do
  url=$(queue "bench-enqueue-$rps")
  env "${aws_env[@]}" AWS_ENDPOINT_URL="$MOTO" BATCHFAN_SQS_RPS=$rps BATCHFAN_HOME="$work/home" \
    target/release/batchfan enqueue --queue-url "$url" --input "$work/qin-enqueue" --output "$work/qout-$rps" \
    --max-items-per-chunk 1 --format json > "$work/enqueue-$rps.json"
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
chunks, sent, req, s = r["chunk_count"], r["sent"], r["requests"], r["seconds"]
name = f"enqueue {chunks} chunks, BATCHFAN_SQS_RPS={sys.argv[2]}"
print(f"| {name:<50} | {sent:>8} | {req:>8} | {s:>8.2f} | {sent/s:>10.0f} | SendMessageBatch of 10, 4 in flight; sending only (planning and the manifest excluded) |")' "$work/enqueue-$rps.json" "$rps"
done
mkdir -p "$work/qin"
for i in $(seq -f "%03g" 1 200); do echo "the quick brown fox $i" > "$work/qin/$i.txt"; done
for concurrency in 1 4; do
  url=$(queue "bench-work-$concurrency")
  env "${aws_env[@]}" AWS_ENDPOINT_URL="$MOTO" BATCHFAN_HOME="$work/home" target/release/batchfan enqueue \
    --queue-url "$url" --input "$work/qin" --output "$work/qwork-$concurrency" --max-items-per-chunk 1 >/dev/null
  start=$(date +%s.%N)
  env "${aws_env[@]}" AWS_ENDPOINT_URL="$MOTO" BATCHFAN_QUEUE_URL="$url" BATCHFAN_QUEUE_IDLE_EXIT=1 \
    BATCHFAN_QUEUE_CONCURRENCY=$concurrency BATCHFAN_LOG_FORMAT=json \
    target/release/batchfan-worker wordcount 2> "$work/worker-$concurrency.log"
  end=$(date +%s.%N)
  python3 -c 'import json, sys
line = [l for l in open(sys.argv[1]) if "worker stopped" in l][-1]
f = json.loads(line)
n, req, s = f["succeeded"], f["sqs_requests"], float(sys.argv[4]) - float(sys.argv[3])
name = f"worker, BATCHFAN_QUEUE_CONCURRENCY={sys.argv[2]}"
print(f"| {name:<50} | {n:>8} | {req:>8} | {s:>8.2f} | {n/s:>10.0f} | {req/n:.2f} SQS requests per chunk: receive (up to 10 a call), delete, 1 GetQueueAttributes at start, idle polls at the end; chunks of one tiny file, local output |")' \
    "$work/worker-$concurrency.log" "$concurrency" "$start" "$end"
done
fi

if want scale; then
echo
echo "## scaling policies on three traces (cargo bench -p batchfan-scale --no-default-features --bench policies)"
# The policy engine alone: no AWS SDK to build.
cargo bench --quiet -p batchfan-scale --no-default-features --bench policies 2>/dev/null | grep -E '^(\||service)'
fi

LAT=${BENCH_LIST_LATENCY_MS:-30}
start_sim() { # KEYS: the simulated S3 listing and SQS (tests crate; a load target, not moto) in $SIM
  cargo build --quiet --release -p batchfan-tests --bin s3_list_sim
  target/release/s3_list_sim --keys "$1" --latency-ms "$LAT" > "$work/sim.out" &
  sim_pid=$!
  until [ -s "$work/sim.out" ]; do sleep 0.1; done
  SIM=$(head -1 "$work/sim.out")
}

if want list; then
LN=${BENCH_LIST_KEYS:-10000000}
echo
echo "## listing $LN keys (one folder, data/00000000 ...) at $LAT ms a request: \`batchfan plan\` ($(nproc) CPUs)"
echo "| --list-concurrency |   wall s | requests | peak RSS MiB | speed-up | note |"
echo "|--------------------|----------|----------|--------------|----------|------|"
start_sim "$LN"
one=
for c in ${BENCH_LIST_CONCURRENCY:-1 8 32 64 128}; do
  before=$(curl -s "$SIM/_stats")
  json=$(env "${aws_env[@]}" AWS_ENDPOINT_URL="$SIM" python3 scripts/measure.py target/release/batchfan plan \
    --input s3://sim/data/ --list-concurrency "$c" --format json)
  after=$(curl -s "$SIM/_stats")
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); c, req = sys.argv[2], int(sys.argv[4]) - int(sys.argv[3])
one = float(sys.argv[5]) if sys.argv[5] else r["seconds"]
print(f"| {c:>18} | {r['"'"'seconds'"'"']:8.2f} | {req:8} | {r['"'"'peak_rss_mib'"'"']:12.0f} | {one / r['"'"'seconds'"'"']:7.1f}x | exit {r['"'"'exit'"'"']} |")' "$json" "$c" "$before" "$after" "$one"
  [ -n "$one" ] || one=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["seconds"])' "$json")
done
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
fi

if want enqueue; then
EN=${BENCH_ENQUEUE_CHUNKS:-1000000}
echo
echo "## enqueue of $EN one-object chunks to the simulated SQS at $LAT ms a request ($(nproc) CPUs)"
echo "| BATCHFAN_SQS_RPS | messages | requests | sending s | messages/s | whole enqueue s | peak RSS MiB | note |"
echo "|------------------|----------|----------|-----------|------------|-----------------|--------------|------|"
start_sim "$EN"
for rps in ${BENCH_ENQUEUE_RPS:-500 1000}; do
  rm -rf "$work/enqueue-out"
  before=$(curl -s "$SIM/_sqs_stats")
  json=$(env "${aws_env[@]}" AWS_ENDPOINT_URL="$SIM" BATCHFAN_SQS_RPS="$rps" BATCHFAN_HOME="$work/home" \
    MEASURE_STDOUT="$work/enqueue.json" python3 scripts/measure.py target/release/batchfan enqueue --input s3://sim/data/ \
    --output "$work/enqueue-out" --max-items-per-chunk 1 --queue-url "$SIM/123456789012/bench" --format json)
  after=$(curl -s "$SIM/_sqs_stats")
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); text = open(sys.argv[5]).read().strip(); out = json.loads(text) if text else {}
(r0, m0), (r1, m1) = (map(int, sys.argv[3].split())), (map(int, sys.argv[4].split()))
secs = out.get("seconds") or float("nan")
print(f"| {sys.argv[2]:>16} | {m1 - m0:8} | {r1 - r0:8} | {secs:9.1f} | {(m1 - m0) / secs:10.0f} | {r['"'"'seconds'"'"']:15.1f} | {r['"'"'peak_rss_mib'"'"']:12.0f} | exit {r['"'"'exit'"'"']}; 32 requests in flight |")' "$json" "$rps" "$before" "$after" "$work/enqueue.json"
done
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
fi

if want inventory; then
# --- Planning from an S3 Inventory (the input bucket's HeadBucket from the simulated S3) ---
cargo build --quiet --release -p batchfan-tests --bin s3_list_sim --bin inventory_gen
IN=${BENCH_INVENTORY_ROWS:-1000000}
echo
echo "## planning $IN objects from an S3 Inventory: \`batchfan plan --input-inventory\` ($(nproc) CPUs)"
echo "| inventory (10 data files)    | data MiB |   wall s | objects/s | peak RSS MiB | note |"
echo "|------------------------------|----------|----------|-----------|--------------|------|"
target/release/s3_list_sim --keys 1 --latency-ms 0 > "$work/isim.out" &
sim_pid=$!
until [ -s "$work/isim.out" ]; do sleep 0.1; done
SIM=$(head -1 "$work/isim.out")
for fmt in csv parquet; do
  manifest=$(target/release/inventory_gen --rows "$IN" --format "$fmt" --dir "$work/inventory-$fmt" --bucket sim --files 10)
  mib=$(du -sm "$work/inventory-$fmt/sim/bench/data" | cut -f1)
  json=$(env "${aws_env[@]}" AWS_ENDPOINT_URL="$SIM" python3 scripts/measure.py target/release/batchfan plan \
    --input s3://sim/data/ --input-inventory "$manifest" --format json)
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); n = int(sys.argv[3])
print(f"| {sys.argv[2]:<28} | {sys.argv[4]:>8} | {r['"'"'seconds'"'"']:8.2f} | {n / r['"'"'seconds'"'"']:9.0f} | {r['"'"'peak_rss_mib'"'"']:12.0f} | exit {r['"'"'exit'"'"']} |")' "$json" "$fmt" "$IN" "$mib"
  rm -rf "$work/inventory-$fmt"
done
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
fi

want s3 || want worker || want exec || exit 0
# --- S3 data plane on s3s-fs (a fast S3 server from crates.io), against curl and awscli ---
MIB=${BENCH_MIB:-256}
tools=target/bench-tools
if [ ! -x "$tools/bin/s3s-fs" ]; then
  cargo install --quiet s3s-fs@0.14.1 --locked --features binary --root "$tools"
fi
if [ ! -x "$tools/awscli/bin/aws" ]; then
  python3 -m venv "$tools/awscli"
  "$tools/awscli/bin/pip" install --quiet --disable-pip-version-check awscli
fi
s3port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/s3/bench-data"
"$tools/bin/s3s-fs" --host 127.0.0.1 --port "$s3port" --access-key test --secret-key test "$work/s3" >/dev/null 2>&1 &
s3s_pid=$!
until curl -s -o /dev/null "http://127.0.0.1:$s3port/"; do sleep 0.2; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true BENCH_BUCKET=bench-data BENCH_MIB=$MIB
if want s3; then
echo
echo "## S3 data plane: one $MIB MiB object on s3s-fs 0.14.1, single stream"
echo "| reader                                   |   wall s |    MiB/s | note |"
echo "|------------------------------------------|----------|----------|------|"
cargo bench --quiet -p batchfan --bench s3_read 2>/dev/null | grep -E '^\|'
read -r size secs < <(curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  -o /dev/null -w '%{size_download} %{time_total}\n' "http://127.0.0.1:$s3port/bench-data/text.txt")
python3 -c "import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print(f'| {\"curl --aws-sigv4, one GET\":<40} | {s:8.2f} | {b/s/2**20:8.0f} | raw HTTP, same server |')" "$size" "$secs"
start=$(date +%s.%N)
"$tools/awscli/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp s3://bench-data/text.txt - >/dev/null
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'| {\"aws s3 cp s3://... - (awscli)\":<40} | {s:8.2f} | {int(sys.argv[3])/s:8.0f} | includes CLI start-up |')" "$start" "$end" "$MIB"
start=$(date +%s.%N)
target/release/batchfan run --local --input s3://bench-data/ --output "$work/wc-out" --split-bytes 64MiB \
  --children 4 --parallel 2 --log-dir "$work/wc-logs" -- "$PWD/target/release/batchfan-worker" wordcount >/dev/null 2>&1
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'| {\"batchfan run --local ... wordcount\":<40} | {s:8.2f} | {int(sys.argv[3])/s:8.0f} | 4 children of one 64 MiB range, 2 at a time, counting words |')" "$start" "$end" "$MIB"
fi
want worker || want exec || exit 0
# --- The worker's read path against the physical limit, its memory bound, and prefetch ---
sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user test:test -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
WMIB=${BENCH_WORKER_MIB:-1024}
# Objects are written straight into s3s-fs's folders (it serves a bucket folder's files), each
# with the ETag s3s-fs keeps for uploaded objects: without it s3s-fs hashes the whole file on
# every GET (a 10 GiB object read as 8 MiB parts did not finish in 9 minutes).
etag_all() { # bucket: writes s3s-fs's info file for every object of the bucket folder
  python3 -c 'import base64, hashlib, json, os, sys
root, bucket = sys.argv[1], sys.argv[2]
enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
for name in os.listdir(os.path.join(root, bucket)):
    size = os.path.getsize(os.path.join(root, bucket, name))
    with open(os.path.join(root, f".bucket-{enc(bucket)}.object-{enc(name)}.internal.json"), "w") as f:
        json.dump({"e_tag": hashlib.md5(f"{name}:{size}".encode()).hexdigest()}, f)' "$work/s3" "$1"
}
mkdir -p "$work/s3/worker-data"
python3 -c 'import sys
line = b"the quick brown fox jumps over the lazy dog 0123456789 batchfan worker read path\n"
n = int(sys.argv[2]) << 20
with open(sys.argv[1], "wb") as f:
    block = line * (4 << 20 // len(line) + 1)
    while n > 0:
        f.write(block[:min(n, len(block))]); n -= len(block)' "$work/s3/worker-data/text.txt" "$WMIB"
etag_all worker-data
bytes=$((WMIB << 20))
url="http://127.0.0.1:$s3port/worker-data/text.txt"
curl -s "${sig[@]}" -o /dev/null "$url" # warm the page cache
measure=(python3 scripts/measure.py)
harness() { # concurrency, output -> JSON
  env BATCHFAN_READ_CONCURRENCY="$1" "${measure[@]}" target/release/batchfan run --local --input s3://worker-data/ \
    --include text.txt --output "$2" --log-dir "$work/logs-$1" -- "$PWD/target/release/batchfan-worker" count
}
curl_ranges() { # n -> MiB/s of n concurrent ranged GETs of the whole object, discarded
  local n=$1 start end part first last pids=()
  start=$(date +%s.%N)
  part=$((bytes / n))
  for i in $(seq 0 $((n - 1))); do
    first=$((i * part)); last=$(( i == n - 1 ? bytes - 1 : first + part - 1 ))
    curl -s "${sig[@]}" -r "$first-$last" -o /dev/null "$url" &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  python3 -c "import sys; print(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])) / 2**20)" "$bytes" "$start" "$end"
}
if want exec; then
# A whole `run --local` (listing, plan, manifest, child start to exit, commit) per round, so the
# ratio is a lower bound on the child's own. Rounds interleave the three readers, so a slow
# moment of this shared machine falls on all of them; the table has each reader's median.
ROUNDS=${BENCH_ROUNDS:-5}
echo
echo "## exec --stdin: one $WMIB MiB object on s3s-fs 0.14.1 ($(nproc) CPUs), median of $ROUNDS interleaved rounds"
echo "| reader                                                  |   wall s |    MiB/s | peak RSS MiB | note |"
echo "|---------------------------------------------------------|----------|----------|--------------|------|"
: >"$work/exec-rounds"
for r in $(seq 1 "$ROUNDS"); do
  echo "curl $(curl_ranges 4)" >>"$work/exec-rounds"
  for how in count stdin; do
    rm -rf "$work/x-$how"
    case $how in
      count) prog=("$PWD/target/release/batchfan-worker" count) ;;
      stdin) prog=("$PWD/target/release/batchfan-worker" exec --stdin -- wc -c) ;;
    esac
    json=$("${measure[@]}" target/release/batchfan run --local --input s3://worker-data/ --include text.txt \
      --output "$work/x-$how" --log-dir "$work/logs-x-$how" -- "${prog[@]}")
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r["exit"] == 0, r
print(sys.argv[2], int(sys.argv[3]) / 2**20 / r["seconds"], r["peak_rss_mib"])' "$json" "$how" "$bytes" >>"$work/exec-rounds"
  done
done
python3 -c 'import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    how, *vals = line.split()
    rows.setdefault(how, []).append([float(v) for v in vals])
mib = int(sys.argv[2]) / 2**20
raw = statistics.median(r[0] for r in rows["curl"])
names = {"curl": "curl: 4 ranged GETs at once (physical limit)", "count": "batchfan-worker count (in process)",
         "stdin": "batchfan-worker exec --stdin -- wc -c"}
for how in ("curl", "count", "stdin"):
    rate = statistics.median(r[0] for r in rows[how])
    rss = f"{max(r[1] for r in rows[how]):12.0f}" if how != "curl" else "-".rjust(12)
    spread = ", ".join(f"{r[0]:.0f}" for r in rows[how])
    note = "raw HTTP, discarded" if how == "curl" else f"{rate / raw:.2f}x the raw figure; whole run --local"
    print(f"| {names[how]:<55} | {mib / rate:8.2f} | {rate:8.0f} | {rss} | {note}; rounds: {spread} |")' "$work/exec-rounds" "$bytes"
fi
want worker || exit 0
echo
echo "## worker read path: one $WMIB MiB object on s3s-fs 0.14.1 ($(nproc) CPUs)"
echo "| reader                                                  |   wall s |    MiB/s | peak RSS MiB | note |"
echo "|---------------------------------------------------------|----------|----------|--------------|------|"
for n in 4 8; do
  raw=$(curl_ranges "$n")
  python3 -c "import sys; r=float(sys.argv[1]); print(f'| {\"curl: \" + sys.argv[2] + \" ranged GETs at once (physical limit)\":<55} | {int(sys.argv[3])/2**20/r:8.2f} | {r:8.0f} |            - | raw HTTP, same server, discarded |')" "$raw" "$n" "$bytes"
  json=$(harness "$n" "$work/h-$n")
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); raw = float(sys.argv[3]); mib = int(sys.argv[4]) / 2**20
secs, rss = r["seconds"], r["peak_rss_mib"]
rate = mib / secs
name = f"batchfan-worker count, BATCHFAN_READ_CONCURRENCY={sys.argv[2]}"
print(f"| {name:<55} | {secs:8.2f} | {rate:8.0f} | {rss:12.0f} | {rate / raw:.2f}x the raw figure; whole run --local (plan, manifest, child start) counted; 8 MiB parts, newlines counted |")' \
    "$json" "$n" "$raw" "$bytes"
done

# Memory bound: a sparse 10 GiB object (zeros, one endless record) read at the default settings.
GIB=${BENCH_BIG_GIB:-10}
truncate -s "${GIB}G" "$work/s3/worker-data/big.bin"
etag_all worker-data
json=$("${measure[@]}" target/release/batchfan run --local --input s3://worker-data/ --include big.bin \
  --output "$work/big-out" --log-dir "$work/logs-big" -- "$PWD/target/release/batchfan-worker" count)
python3 -c 'import json, sys
r = json.loads(sys.argv[1]); gib = int(sys.argv[2])
secs, rss, code = r["seconds"], r["peak_rss_mib"], r["exit"]
ok = "under" if rss * 2**20 < 256e6 else "OVER"
name = f"batchfan-worker count, one {gib} GiB object, defaults"
print(f"| {name:<55} | {secs:8.2f} | {gib * 1024 / secs:8.0f} | {rss:12.0f} | {ok} the 256 MB goal; 4 x 8 MiB parts in flight; exit {code} |")' "$json" "$GIB"
rm -f "$work/s3/worker-data/big.bin"

# Prefetch: one chunk of many small objects, the next item opened while the handler reads this one.
SMALL=${BENCH_SMALL_OBJECTS:-2000}
mkdir -p "$work/s3/small-data"
python3 -c 'import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], f"obj-{i:05}.txt"), "w") as f:
        f.write(f"small object {i} " * 200 + "\n")' "$work/s3/small-data" "$SMALL"
etag_all small-data
echo
echo "| prefetch: one chunk of $SMALL objects of 3.5 KiB          |   wall s |  items/s | peak RSS MiB | note |"
echo "|---------------------------------------------------------|----------|----------|--------------|------|"
for p in 0 1; do
  json=$(env BATCHFAN_PREFETCH=$p "${measure[@]}" target/release/batchfan run --local --input s3://small-data/ --children 1 \
    --output "$work/small-$p" --log-dir "$work/logs-small-$p" -- "$PWD/target/release/batchfan-worker" count)
  python3 -c 'import json, sys
r = json.loads(sys.argv[1]); n = int(sys.argv[3])
secs, rss = r["seconds"], r["peak_rss_mib"]
name = f"batchfan-worker count, BATCHFAN_PREFETCH={sys.argv[2]}"
print(f"| {name:<55} | {secs:8.2f} | {n / secs:8.0f} | {rss:12.0f} | whole run --local counted (listing {n} objects, planning, one child) |")' "$json" "$p" "$SMALL"
done

