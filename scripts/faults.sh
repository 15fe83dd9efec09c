#!/usr/bin/env bash
# The fault suite (docs/reliability.md): integration/faults_test.go, build
# tag "faults", every scenario under load with exact loss accounting. Prints
# the result table (Markdown) at the end; the full log is in
# ${FAULTS_LOG:-/tmp/rtm2kafka-faults.log}.
#
# The shared broker is KAFKA_BROKERS when set; otherwise the one of
# scripts/kafka.sh on 127.0.0.1:19092 (started here, and stopped afterwards,
# only when it was not already running). Scenarios that kill or freeze Kafka
# start private brokers of their own on other ports.
#
# Environment: FAULTS_RUN (go test -run pattern, default "Fault"),
# FAULTS_TIMEOUT (default 30m), FAULTS_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${FAULTS_RUN:-Fault}
TIMEOUT=${FAULTS_TIMEOUT:-30m}
LOG=${FAULTS_LOG:-/tmp/rtm2kafka-faults.log}

started_kafka=0
cleanup() {
  if [ "$started_kafka" = 1 ]; then
    bash scripts/kafka.sh stop || true
  fi
}
trap cleanup EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
  if ! bash scripts/kafka.sh status >/dev/null 2>&1; then
    bash scripts/kafka.sh start
    started_kafka=1
  fi
  eval "$(bash scripts/kafka.sh env)"
  export KAFKA_BROKERS
fi
echo "faults: KAFKA_BROKERS=${KAFKA_BROKERS}"
echo "faults: machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"

start=$(date +%s)
set +e
go test -tags faults -run "$RUN" -v -count=1 -timeout "$TIMEOUT" ./integration/ 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e

echo
echo "faults: $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - start )) s, go test exit ${rc}"
echo
echo "| scenario | spool | sent | answered in time | overdue | unanswered | errored | redelivered | in Kafka | duplicates | lost | goroutines start → end | RSS MiB start → end | took | note |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
grep -o 'FAULTROW | .*' "$LOG" | sed 's/^FAULTROW //' || echo "(no rows: see $LOG)"
grep -E '^(--- FAIL|FAIL|ok )' "$LOG" || true
exit "$rc"
