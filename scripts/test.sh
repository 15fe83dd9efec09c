#!/usr/bin/env bash
# Runs the whole test suite against a real Kafka broker.
#
# Broker selection, in order:
#   1. KAFKA_BROKERS is set        -> use it as is;
#   2. a Docker engine answers     -> the integration tests start Kafka through testcontainers-go;
#   3. otherwise                   -> scripts/kafka.sh fetches Apache Kafka from Maven Central,
#                                     starts it on 127.0.0.1 (KRaft) and stops it afterwards.
#
# The secured-Kafka tests (integration/secure_test.go) need the secured broker of
# scripts/kafka.sh (KAFKA_SECURITY=secure: TLS, mTLS, SASL PLAIN/SCRAM, ACLs):
#   KAFKA_SECURE_SASL_SSL is set   -> use the KAFKA_SECURE_* variables as they are;
#   otherwise                      -> start one (ports KAFKA_SECURE_PORT, default 19192, and the
#                                     four above it; controller KAFKA_SECURE_CONTROLLER_PORT,
#                                     default 19193; state KAFKA_SECURE_STATE, default
#                                     /tmp/rtm2kafka-kafka-secure), export what its `env`
#                                     prints, and stop it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
started_kafka=0
started_secure=0
secure=(KAFKA_SECURITY=secure "KAFKA_PORT=${KAFKA_SECURE_PORT:-19192}"
  "KAFKA_CONTROLLER_PORT=${KAFKA_SECURE_CONTROLLER_PORT:-19193}"
  "RTM2KAFKA_STATE=${KAFKA_SECURE_STATE:-/tmp/rtm2kafka-kafka-secure}" "KAFKA_HEAP=-Xms128m -Xmx512m")
cleanup() {
  if [ "$started_kafka" = 1 ]; then
    bash scripts/kafka.sh stop || true
  fi
  if [ "$started_secure" = 1 ]; then
    env "${secure[@]}" bash scripts/kafka.sh stop || true
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

if [ -z "${KAFKA_SECURE_SASL_SSL:-}" ]; then
  echo "test: no KAFKA_SECURE_SASL_SSL: starting the secured Kafka with KAFKA_SECURITY=secure scripts/kafka.sh"
  env "${secure[@]}" bash scripts/kafka.sh start
  started_secure=1
  set -a
  eval "$(env "${secure[@]}" bash scripts/kafka.sh env)"
  set +a
fi
echo "test: secured Kafka KAFKA_SECURE_SASL_SSL=${KAFKA_SECURE_SASL_SSL}"

echo "test: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "test: go vet"
go vet ./...

echo "test: go test -race"
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/rtm2kafka-test.log

echo "test: short fuzz runs ($FUZZTIME each)"
go test -run '^$' -fuzz '^FuzzReadFrame$' -fuzztime "$FUZZTIME" ./rtm/
go test -run '^$' -fuzz '^FuzzDecodePush$' -fuzztime "$FUZZTIME" ./rtm/
