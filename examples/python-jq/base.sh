#!/usr/bin/env bash
# Builds a base image with python3 and jq FROM scratch out of this machine's own files (the
# programs, Python's standard library, the shared libraries they load, CA certificates), for
# machines that cannot pull `python:3.12-slim` (the Docker-mode test runs here). Where images can
# be pulled, build the base from Dockerfile.base instead: both serve the example's Dockerfile.
#   bash examples/python-jq/base.sh [--tag NAME:TAG] [--libs-of FILE]...
# --libs-of FILE also copies the shared libraries FILE needs (a dynamically linked debug worker).
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=batchfan-python-jq-base:local extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=${2:?--tag needs NAME:TAG}; shift ;;
    --libs-of) extra+=("${2:?--libs-of needs a file}"); shift ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
# The system's python3 (a pyenv shim is a script, not the program).
python=$(readlink -f /usr/bin/python3 2>/dev/null || readlink -f "$(command -v python3)")
head -c 4 "$python" | grep -q ELF || { echo "base.sh: $python is not a program (install python3 from the distribution)" >&2; exit 2; }
jq=$(command -v jq) || { echo "base.sh: jq is not installed (apt-get install jq)" >&2; exit 2; }
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
dynload=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["platstdlib"])')/lib-dynload

ctx=target/image/python-jq-base
rm -rf "$ctx"
rootfs=$ctx/rootfs
mkdir -p "$rootfs/usr/bin" "$rootfs/tmp" "$rootfs/etc/ssl/certs" "$rootfs$stdlib"
chmod 1777 "$rootfs/tmp"
cp -a worker-image/rootfs/. "$rootfs/"
cp -L "$python" "$rootfs/usr/bin/$(basename "$python")"
ln -s "$(basename "$python")" "$rootfs/usr/bin/python3"
cp -L "$jq" "$rootfs/usr/bin/jq"
# The standard library without its tests, GUI and bytecode caches.
tar -C "$stdlib" --exclude=__pycache__ --exclude=test --exclude=idlelib --exclude=tkinter \
  --exclude=ensurepip --exclude=lib2to3 --exclude=site-packages --exclude=dist-packages -cf - . | tar -C "$rootfs$stdlib" -xf -
mkdir -p "$rootfs$dynload" && cp -a "$dynload/." "$rootfs$dynload/" 2>/dev/null || true
for bin in "$python" "$jq" "$dynload"/*.so "${extra[@]}"; do
  for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    [ -e "$rootfs$lib" ] && continue
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
done
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/" 2>/dev/null || true
printf 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin\n' > "$ctx/Dockerfile"
docker build --quiet -t "$tag" "$ctx" >"$ctx.log" 2>&1 || { cat "$ctx.log" >&2; exit 1; }
echo "$tag"
