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
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/rtm2kafka"]
CMD ["run"]
