#!/usr/bin/env bash
# Runs the whole test suite against a real Kafka broker.
#
# Broker selection, in order:
#   1. KAFKA_BROKERS is set        -> use it as is;
#   2. a Docker engine answers     -> the integration tests start Kafka through testcontainers-go;
#   3. otherwise                   -> scripts/kafka.sh fetches Apache Kafka from Maven Central,
#                                     starts it on 127.0.0.1 (KRaft) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
started_kafka=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then
    bash scripts/kafka.sh stop || true
  fi
}
trap cleanup EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
  if docker info >/dev/null 2>&1; then
    echo "test: Docker engine found: integration tests start Kafka with testcontainers-go"
  else
    echo "test: no KAFKA_BROKERS and no Docker engine: starting Kafka with scripts/kafka.sh"
    bash scripts/kafka.sh start
    started_kafka=1
    eval "$(bash scripts/kafka.sh env)"
    export KAFKA_BROKERS
  fi
fi
echo "test: KAFKA_BROKERS=${KAFKA_BROKERS:-<testcontainers>}"

# --- Python for docs/examples/consumer.py (integration/consumer_examples_test.go) ---
# A venv under the cache dir with the pinned confluent-kafka (a wheel that
# bundles librdkafka); made once, reused after. RTM2KAFKA_PYTHON, when set,
# is used as is.
if [ -z "${RTM2KAFKA_PYTHON:-}" ]; then
  py_venv="${XDG_CACHE_HOME:-$HOME/.cache}/rtm2kafka/py-venv"
  if ! "$py_venv/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1; then
    echo "test: installing confluent-kafka into $py_venv (docs/examples/requirements.txt)"
    rm -rf "$py_venv"
    python3 -m venv "$py_venv"
    "$py_venv/bin/python" -m pip install --quiet -r docs/examples/requirements.txt
  fi
  export RTM2KAFKA_PYTHON="$py_venv/bin/python"
fi
echo "test: RTM2KAFKA_PYTHON=$RTM2KAFKA_PYTHON"
# --- end of the Python block ---

echo "test: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "test: go vet"
go vet ./...

echo "test: go test -race"
go test -race -count=1 -timeout 12m ./... 2>&1 | tee /tmp/rtm2kafka-test.log

echo "test: short fuzz runs ($FUZZTIME each)"
go test -run '^$' -fuzz '^FuzzReadFrame$' -fuzztime "$FUZZTIME" ./rtm/
go test -run '^$' -fuzz '^FuzzDecodePush$' -fuzztime "$FUZZTIME" ./rtm/
