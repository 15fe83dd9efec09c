# Multi-stage build: a static rtm2kafka binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/rtm2kafka ./cmd/rtm2kafka

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rtm2kafka /usr/local/bin/rtm2kafka
USER nonroot:nonroot
# The binary's default HTTP_ADDR is 127.0.0.1:9464, safe on a shared host.
# In a container, loopback is unreachable from outside: `docker run -p
# 9464:9464`, Prometheus and Kubernetes httpGet probes (/readyz, /healthz)
# need the ops server on all interfaces. The console's control form stays
# off unless HTTP_CONTROL_TOKEN is set. Override to narrow it.
ENV HTTP_ADDR=0.0.0.0:9464
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/rtm2kafka"]
CMD ["run"]
