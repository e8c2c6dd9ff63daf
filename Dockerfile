# syntax=docker/dockerfile:1
# redrain's image: the node and the coordinator as static binaries on distroless (no shell, CA
# certificates for rediss://, user nonroot 65532). One image, two commands:
#   docker build -t redrain:dev .
#   docker run redrain:dev node --id n1 ...        (or: coordinator ...)
# The Kubernetes manifests in deploy/k8s run /usr/local/bin/node and /usr/local/bin/coordinator.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo: distroless/static has no libc), no local paths in the binary, symbol table
# stripped. BuildKit sets TARGETOS/TARGETARCH (multi-platform builds); without them, the
# builder's own platform.
ARG TARGETOS TARGETARCH
RUN for cmd in node coordinator; do \
      CGO_ENABLED=0 GOOS=${TARGETOS:-$(go env GOOS)} GOARCH=${TARGETARCH:-$(go env GOARCH)} \
        go build -trimpath -ldflags=-s -o /out/$cmd ./cmd/$cmd || exit 1; \
    done \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/node /out/coordinator /usr/local/bin/
# The data dir (a node's journal, the coordinator's store) belongs to nonroot, so a fresh volume
# mounted there inherits it; in Kubernetes the pod's fsGroup does the same for a PVC.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV REDRAIN_DATA=/data
VOLUME ["/data"]
# node: claims 8080; coordinator: admin 9090; both: gossip 7946 (TCP and UDP).
EXPOSE 8080 9090 7946 7946/udp
CMD ["node", "-h"]
