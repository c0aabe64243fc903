# syntax=docker/dockerfile:1.7
# driftwatch image: the operator (`driftwatch controller`), its Jobs (`driftwatch check`, `driftwatch
# package`, run by the controller with command ["driftwatch"]) and the kubectl plugin (`kubectl-drift`).
#
# Build (from the repository root):
#   docker build -t ghcr.io/driftwatch/driftwatch:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/driftwatch/driftwatch:0.1.0 --push .
# Run locally:
#   docker run --rm ghcr.io/driftwatch/driftwatch:0.1.0 --help
#   docker run --rm --entrypoint kubectl-drift ghcr.io/driftwatch/driftwatch:0.1.0 --help
#
# Runtime: distroless cc (glibc, libgcc, CA certificates, tzdata; no shell, no package manager), numeric
# non-root user 65532, nothing writable needed besides /tmp (the chart mounts an emptyDir there and sets a
# read-only root filesystem). TLS is rustls; no OpenSSL is linked.

ARG RUST_VERSION=1.95
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the registry and target folder between builds (no stub-crate tricks, so
# include_str! assets such as dashboard/ and any bench/test targets in Cargo.toml just work).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/driftwatch target/release/kubectl-drift /out/ \
 && /out/driftwatch --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="driftwatch" \
      org.opencontainers.image.description="Kubernetes operator that watches ML embeddings in Qdrant for drift" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/driftwatch /usr/local/bin/driftwatch
COPY --from=builder /out/kubectl-drift /usr/local/bin/kubectl-drift
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/driftwatch"]
CMD ["--help"]
