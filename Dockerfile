# The batchfan worker image: a static, stripped worker binary FROM scratch, as PID 1.
#
#   docker build -t batchfan-worker .                              from source (target `runtime`, the default)
#   docker build --build-arg WORKER=my-worker -t my-worker .       another binary of the workspace (your handler crate)
#   docker buildx build --platform linux/amd64,linux/arm64 -t REPO:TAG --push .     both architectures
#   bash worker-image/build.sh                                     a binary built outside Docker (target `prebuilt`):
#                                                                  no base image is pulled (machines without a registry)
#
# Both targets give one runtime layout:
#   /usr/local/bin/$WORKER          the worker (static, stripped; its debug info stays outside the image)
#   /usr/local/bin/worker           -> $WORKER, the ENTRYPOINT (so ENTRYPOINT needs no build argument)
#   /etc/ssl/certs/ca-certificates.crt   CA certificates for TLS to AWS
#   /etc/passwd, /etc/group         user and group 65534 (nobody), the user the worker runs as
#   /tmp                            writable (1777), the spool directory; mount a tmpfs there when the
#                                   root file system is read-only (readonlyRootFilesystem: true)
# The container's command is the worker's arguments: `wordcount` by default, `exec -- PROGRAM ...`.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG WORKER=batchfan-worker

# A binary built outside Docker: worker-image/build.sh stages worker-image/rootfs (the binary, the
# link, the certificates, /tmp) in a build context of its own and builds this target. It comes
# first because the legacy builder (no BuildKit) builds every stage up to its target; with the
# repository as context it copies only the committed passwd and group, so `docker build .` passes it.
FROM scratch AS prebuilt
COPY worker-image/rootfs/ /
ENV BATCHFAN_SPOOL_DIR=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["wordcount"]

# The builder: the official Rust image. Under `buildx --platform` it runs as the target platform
# (emulated for the other architecture), so the build is native and needs no cross linker.
FROM ${RUST_IMAGE} AS builder
ARG WORKER
# The commit `--version` prints (.git is not in the build context): --build-arg BATCHFAN_COMMIT=$(git rev-parse --short HEAD)
ARG BATCHFAN_COMMIT=unknown
WORKDIR /src
# Dependencies first: manifests and stub sources only, so this layer is rebuilt only when a
# manifest or Cargo.lock changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY crates/batchfan/Cargo.toml crates/batchfan/
COPY crates/batchfan-worker/Cargo.toml crates/batchfan-worker/
COPY crates/batchfan-cli/Cargo.toml crates/batchfan-cli/
COPY crates/batchfan-scale/Cargo.toml crates/batchfan-scale/
COPY worker-image/Cargo.toml worker-image/stub-sources.sh worker-image/
COPY examples/Cargo.toml examples/
COPY tests/Cargo.toml tests/
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN triple=$(rustc -vV | sed -n 's/^host: //p') \
 && sh worker-image/stub-sources.sh create \
 && cargo build --locked --release --target "$triple" --bin "$WORKER" \
 && sh worker-image/stub-sources.sh remove
COPY . .
# COPY keeps the context's modification times, which can be older than the stub build's outputs.
RUN find crates worker-image examples tests -name '*.rs' -exec touch {} + \
 && triple=$(rustc -vV | sed -n 's/^host: //p') \
 && BATCHFAN_COMMIT="$BATCHFAN_COMMIT" cargo build --locked --release --target "$triple" --bin "$WORKER" \
 && bin="target/$triple/release/$WORKER" \
 && mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/tmp /debug \
 && objcopy --only-keep-debug "$bin" "/debug/$WORKER.debug" \
 && objcopy --strip-all --add-gnu-debuglink="/debug/$WORKER.debug" "$bin" "/rootfs/usr/local/bin/$WORKER" \
 && ln -s "$WORKER" /rootfs/usr/local/bin/worker \
 && cp -L /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp -a worker-image/rootfs/. /rootfs/ \
 && chmod 1777 /rootfs/tmp

# The worker's debug info, for symbolizing a crash: docker build --target debuginfo -o out .
FROM scratch AS debuginfo
COPY --from=builder /debug/ /

# The image (default target): the same layout as `prebuilt`.
FROM scratch AS runtime
COPY --from=builder /rootfs/ /
ENV BATCHFAN_SPOOL_DIR=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["wordcount"]
