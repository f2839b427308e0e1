#!/usr/bin/env bash
# Builds the worker image FROM scratch: the batchfan-worker binary, the shared libraries it links
# (none for a static build), CA certificates for TLS to AWS, and a writable /tmp for spooling.
#   bash worker-image/build.sh [--debug] [--static] [--no-build] [--tag NAME:TAG]
# --static links the C runtime statically (RUSTFLAGS=-C target-feature=+crt-static, a separate
# build); the default build is dynamic and its libraries are copied in.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release tag=batchfan-worker:dev static=0 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --static) static=1 ;;
    --no-build) build=0 ;; # use the binary already built
    --tag) tag=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
flags=()
[ "$profile" = release ] && flags+=(--release)
if [ "$static" = 1 ]; then
  [ "$build" = 1 ] && RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet "${flags[@]}" --target x86_64-unknown-linux-gnu -p batchfan-worker-image
  bin=target/x86_64-unknown-linux-gnu/$profile/batchfan-worker
else
  [ "$build" = 1 ] && cargo build --quiet "${flags[@]}" -p batchfan-worker-image
  bin=target/$profile/batchfan-worker
fi
ctx=target/image/$profile
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc/ssl/certs"
chmod 1777 "$ctx/rootfs/tmp"
cp "$bin" "$ctx/rootfs/usr/local/bin/batchfan-worker"
# The dynamic loader and libraries, at the paths the binary asks for.
for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp -L "$lib" "$ctx/rootfs$lib"
done
for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$ca" ]; then cp -L "$ca" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"; break; fi
done
printf 'nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n' > "$ctx/rootfs/etc/passwd"
if ! docker build --quiet -t "$tag" -f Dockerfile "$ctx" >"$ctx.log" 2>&1; then
  cat "$ctx.log" >&2
  exit 1
fi
echo "$tag"
