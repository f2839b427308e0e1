#!/bin/sh
# Stub sources for every workspace member, from the manifests alone, so the Dockerfile's builder
# stage compiles the dependencies in a layer that stays cached until a manifest or Cargo.lock
# changes. `stub-sources.sh create` writes them (listing them in .stubs), `remove` deletes them.
set -eu
case "${1:-}" in
  create)
    : > .stubs
    stub() { [ -e "$1" ] && return; mkdir -p "$(dirname "$1")"; echo "$2" > "$1"; echo "$1" >> .stubs; }
    for manifest in */Cargo.toml */*/Cargo.toml; do
      dir=$(dirname "$manifest")
      stub "$dir/src/lib.rs" ''
      # Targets with an explicit path ([[bin]] path = "src/main.rs", ...).
      for p in $(sed -n 's/^path *= *"\(.*\)"/\1/p' "$manifest"); do stub "$dir/$p" 'fn main() {}'; done
      # Benches named without a path live in benches/NAME.rs.
      for n in $(awk '/^\[\[bench\]\]/{b=1;next} /^\[/{b=0} b && /^name *=/{gsub(/^name *= *"|".*$/,""); print}' "$manifest"); do
        stub "$dir/benches/$n.rs" 'fn main() {}'
      done
    done ;;
  remove)
    xargs rm -f < .stubs && rm -f .stubs ;;
  *) echo "usage: stub-sources.sh create|remove" >&2; exit 2 ;;
esac
