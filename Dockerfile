# kvstore: a static musl binary in an otherwise empty image.
#   docker build -t kvstore:0.1.0 .
# Where no image can be pulled, tests/deploy/base-image.sh makes the build
# stage's base image locally (debootstrap) under exactly the tag below.

# Build: a static binary against musl. The tag is pinned to a point release.
FROM debian:12.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc make musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile *.c *.h ./
# The web console's sources; the build packs them into the binary.
COPY ui/ ui/
# The console packer is a build-time tool: musl-gcc builds it as well.
RUN make HOSTCC=musl-gcc && mkdir /src/data

# Run: the binary alone, as a numeric non-root user (scratch has no /etc/passwd).
FROM scratch
ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="kvstore" \
      org.opencontainers.image.description="A small replicated key-value store: one primary, read-only replicas, HTTP API on port 8080" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /src/kvstore /kvstore
# An empty /data owned by the runtime user, so a plain `docker run` can write
# it; Kubernetes mounts a volume over it (see the chart's volumePermissions).
COPY --from=build --chown=65532:65532 /src/data /data
ENV DATA_DIR=/data
USER 65532:65532
EXPOSE 8080
HEALTHCHECK CMD ["/kvstore", "health"]
ENTRYPOINT ["/kvstore"]
