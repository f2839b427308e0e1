#!/usr/bin/env bash
# Builds the worker image from a binary built on this machine: the Dockerfile's `prebuilt` target,
# with the same layout as `docker build .` (see the Dockerfile). No base image is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'EOF'
usage: bash worker-image/build.sh [OPTIONS]

Builds the worker binary on this machine, strips it (its debug info kept beside it), and packages
it FROM scratch with CA certificates, a writable /tmp and user 65534: the Dockerfile's `prebuilt`
target, the same layout as `docker build .`, without pulling any image. Prints the image's tag.

Options:
  --release        the release profile (default)
  --debug          the debug profile: quicker to build, bigger and slower
  --static         link the C runtime statically (default): the musl target when it is installed,
                   else `-C target-feature=+crt-static` on the gnu target; the image holds no
                   shared library, and the binary runs in any image (bring your own base image)
  --dynamic        link dynamically and copy the libraries `ldd` names into the image (Linux
                   hosts only; for quick test images from the debug build the tests already made)
  --arch ARCH      amd64 (x86_64) or arm64 (aarch64); default: this machine's. Another
                   architecture needs its Rust target (rustup target add ...) and a cross linker
                   (aarch64-linux-gnu-gcc, or x86_64-linux-gnu-gcc); what is missing is named
  --worker NAME    the binary of the workspace that goes in (default batchfan-worker; a handler
                   crate of yours in this workspace works the same)
  --no-build       package the binary already built with the same options (no cargo build)
  --no-image       build, strip and stage only: no Docker engine needed
  --tag NAME:TAG   the image's tag (default batchfan-worker:dev)
  -h, --help       this help

Files (PROFILE is release or debug, TRIPLE the Rust target):
  target/image/PROFILE/context/               the build context: the Dockerfile and
                                              worker-image/rootfs/, the image's file system
  target/image/PROFILE/WORKER.debug           the debug info (objcopy --only-keep-debug); the
                                              stripped binary names it in .gnu_debuglink
EOF
}

profile=release tag=batchfan-worker:dev link=static build=1 image=1 worker=batchfan-worker arch=
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --debug) profile=debug ;;
    --static) link=static ;;
    --dynamic) link=dynamic ;;
    --arch) arch=${2:?--arch needs amd64 or arm64}; shift ;;
    --worker) worker=${2:?--worker needs a binary name}; shift ;;
    --no-build) build=0 ;;
    --no-image) image=0 ;;
    --tag) tag=${2:?--tag needs NAME:TAG}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

host=$(uname -m)
case "${arch:-$host}" in
  amd64 | x86_64) cpu=x86_64 ;;
  arm64 | aarch64) cpu=aarch64 ;;
  *) echo "build.sh: --arch $arch: use amd64 or arm64" >&2; exit 2 ;;
esac
installed=$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')
if [ "$link" = static ] && grep -qx "$cpu-unknown-linux-musl" <<<"$installed"; then
  triple=$cpu-unknown-linux-musl rustflags=
else
  triple=$cpu-unknown-linux-gnu rustflags=
  [ "$link" = static ] && rustflags='-C target-feature=+crt-static'
fi
if [ "$link" = dynamic ] && [ "$cpu" != "$host" ]; then
  echo "build.sh: --dynamic copies this machine's libraries, so it builds for $host only" >&2; exit 2
fi
if [ "$build" = 1 ] && ! grep -qx "$triple" <<<"$installed"; then
  echo "build.sh: the Rust target $triple is not installed: rustup target add $triple" >&2; exit 2
fi
if [ "$build" = 1 ] && [ "$cpu" != "$host" ]; then
  linker=$cpu-linux-gnu-gcc
  if ! command -v "$linker" >/dev/null; then
    echo "build.sh: cross building for $cpu needs the linker $linker (Debian: apt-get install gcc-${cpu//_/-}-linux-gnu)" >&2; exit 2
  fi
  export "CARGO_TARGET_$(tr a-z- A-Z_ <<<"$triple")_LINKER=$linker"
fi

flags=(--bin "$worker")
[ "$profile" = release ] && flags+=(--release)
if [ "$link" = static ]; then
  # --target keeps build scripts and proc macros dynamic (only the worker is static).
  [ "$build" = 1 ] && RUSTFLAGS="$rustflags" cargo build --quiet "${flags[@]}" --target "$triple"
  bin=target/$triple/$profile/$worker
else
  [ "$build" = 1 ] && cargo build --quiet "${flags[@]}"
  bin=target/$profile/$worker
fi
[ -f "$bin" ] || { echo "build.sh: $bin does not exist: build it (drop --no-build)" >&2; exit 2; }

out=target/image/$profile
ctx=$out/context
rootfs=$ctx/worker-image/rootfs
rm -rf "$out"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/tmp" "$rootfs/etc/ssl/certs"
chmod 1777 "$rootfs/tmp"
cp -a worker-image/rootfs/. "$rootfs/"
# Stripped into the image; the debug info stays here, named by the binary's .gnu_debuglink.
objcopy --only-keep-debug "$bin" "$out/$worker.debug"
objcopy --strip-all --add-gnu-debuglink="$out/$worker.debug" "$bin" "$rootfs/usr/local/bin/$worker"
ln -s "$worker" "$rootfs/usr/local/bin/worker"
if [ "$link" = dynamic ]; then
  # The dynamic loader and libraries, at the paths the binary asks for.
  for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
fi
found=0
for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
  if [ -f "$ca" ]; then cp -L "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"; found=1; break; fi
done
[ "$found" = 1 ] || echo "build.sh: warning: no CA certificates found on this machine; TLS to AWS will fail" >&2
cp Dockerfile "$ctx/Dockerfile"
[ "$image" = 1 ] || { echo "$rootfs"; exit 0; }
if ! docker build --quiet --target prebuilt -t "$tag" "$ctx" >"$out/docker-build.log" 2>&1; then
  cat "$out/docker-build.log" >&2
  exit 1
fi
echo "$tag"
