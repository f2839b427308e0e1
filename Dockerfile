# The default worker image: the batchfan-worker program and the files it needs, nothing else.
# Build it with `bash worker-image/build.sh` (stages target/image/rootfs, then runs docker build);
# no base image is pulled.
FROM scratch
COPY rootfs/ /
ENV BATCHFAN_SPOOL_DIR=/tmp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/batchfan-worker"]
CMD ["wordcount"]
