#!/usr/bin/env bash
# Static release binaries of `batchfan` and `batchfan-worker` for Linux, stripped, each with its
# debug info apart, and SHA-256 checksums, in dist/VERSION/:
#   batchfan-VERSION-ARCH-linux.tar.gz (both binaries, LICENSE, README.md), its .debug files,
#   SHA256SUMS
# usage: bash scripts/release.sh [--arch x86_64|aarch64]... [--no-build]
# Default: every architecture this machine can build (its own, and aarch64 or x86_64 when that
# Rust target and its cross linker are installed); one it cannot build is named with what is
# missing, and the script exits 1 after building the others.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=() build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) archs+=("${2:?--arch needs x86_64 or aarch64}"); shift ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "release.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
host=$(uname -m)
[ ${#archs[@]} -gt 0 ] || archs=(x86_64 aarch64)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
installed=$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')
out=dist/$version
mkdir -p "$out"
missing=0
for arch in "${archs[@]}"; do
  case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac
  if grep -qx "$arch-unknown-linux-musl" <<<"$installed"; then
    triple=$arch-unknown-linux-musl rustflags=
  else
    triple=$arch-unknown-linux-gnu rustflags='-C target-feature=+crt-static'
  fi
  if ! grep -qx "$triple" <<<"$installed"; then
    echo "release.sh: $arch: the Rust target $triple is not installed (rustup target add $triple)" >&2
    missing=1; continue
  fi
  if [ "$arch" != "$host" ]; then
    linker=$arch-linux-gnu-gcc
    if ! command -v "$linker" >/dev/null; then
      echo "release.sh: $arch: the cross linker $linker is missing (Debian: apt-get install gcc-${arch//_/-}-linux-gnu)" >&2
      missing=1; continue
    fi
    export "CARGO_TARGET_$(tr a-z- A-Z_ <<<"$triple")_LINKER=$linker"
  fi
  if [ "$build" = 1 ]; then
    BATCHFAN_COMMIT=$commit RUSTFLAGS="$rustflags" cargo build --quiet --release --locked --target "$triple" \
      -p batchfan-cli -p batchfan-worker-image
  fi
  name=batchfan-$version-$arch-linux
  stage=$out/$name
  rm -rf "$stage" && mkdir -p "$stage"
  for bin in batchfan batchfan-worker; do
    src=target/$triple/release/$bin
    [ -f "$src" ] || { echo "release.sh: $src is not built (drop --no-build)" >&2; exit 2; }
    objcopy --only-keep-debug "$src" "$out/$bin-$version-$arch.debug"
    objcopy --strip-all --add-gnu-debuglink="$out/$bin-$version-$arch.debug" "$src" "$stage/$bin"
  done
  cp LICENSE README.md "$stage/"
  tar -C "$out" -czf "$out/$name.tar.gz" "$name"
  rm -rf "$stage"
  echo "$out/$name.tar.gz"
done
(cd "$out" && sha256sum -- *.tar.gz *.debug > SHA256SUMS)
echo "$out/SHA256SUMS"
exit "$missing"
