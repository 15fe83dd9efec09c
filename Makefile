# rtm2kafka — see README.md.
GO        ?= go
BIN       ?= bin/rtm2kafka
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: build test bench faults demo lint fuzz kafka-start kafka-stop clean

## build: the static rtm2kafka binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/rtm2kafka

## test: format, vet, unit + integration tests against a real Kafka broker (started if needed), short fuzz runs
test:
	bash scripts/test.sh

## bench: end-to-end and RTM-only benchmarks with the ceiling from Kafka's own producer tool
bench: build
	bash scripts/bench.sh

## faults: the fault suite with exact loss accounting
faults: build
	bash scripts/faults.sh

## demo: local Kafka + simulator + bridge, records shown with `rtm2kafka tail`
demo: build
	bash scripts/demo.sh

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: longer fuzz runs of the frame reader and the push decoder
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 60s ./rtm/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePush$$' -fuzztime 60s ./rtm/

kafka-start:
	bash scripts/kafka.sh start

kafka-stop:
	bash scripts/kafka.sh stop

clean:
	rm -rf bin
