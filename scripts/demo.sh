#!/usr/bin/env bash
# make demo: a local Kafka broker, the RTM gateway simulator and the bridge,
# with `rtm2kafka tail` showing the records as they arrive. Ctrl-C stops
# everything this script started.
#
#   DEMO_RECORDS=N   stop after N records instead of running until Ctrl-C
#   SIM_RATE=R       messages per second the simulator generates (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/rtm2kafka}
[ -x "$BIN" ] || make build
WORK=$(mktemp -d /tmp/rtm2kafka-demo.XXXXXX)
export RTM_PID=${RTM_PID:-1000001}
export RTM_SECRET=${RTM_SECRET:-demo-secret-$RANDOM$RANDOM}
export KAFKA_TOPIC_PREFIX=${KAFKA_TOPIC_PREFIX:-rtm}
export HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:9464}
export SIM_ADDR=${SIM_ADDR:-127.0.0.1:13315}
export RTM_ENDPOINT=$SIM_ADDR
export SIM_RATE=${SIM_RATE:-20}

pids=()
started_kafka=0
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$started_kafka" = 1 ] && bash scripts/kafka.sh stop >/dev/null 2>&1 || true
  echo "demo: stopped; logs are in $WORK"
}
trap cleanup EXIT INT TERM

if [ -z "${KAFKA_BROKERS:-}" ]; then
  if ! bash scripts/kafka.sh status >/dev/null 2>&1; then
    bash scripts/kafka.sh start
    started_kafka=1
  fi
  eval "$(bash scripts/kafka.sh env)"
  export KAFKA_BROKERS
fi

echo "demo: simulator on $SIM_ADDR ($SIM_RATE msg/s), log $WORK/sim.log"
"$BIN" sim >"$WORK/sim.log" 2>&1 &
pids+=($!)
echo "demo: bridge -> Kafka $KAFKA_BROKERS, ops on http://$HTTP_ADDR, log $WORK/bridge.log"
"$BIN" run >"$WORK/bridge.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
if ! curl -fsS "http://$HTTP_ADDR/readyz"; then
  echo "demo: the bridge did not become ready; its log:"; tail -20 "$WORK/bridge.log"; exit 1
fi
echo "demo: listening; change what it listens to with e.g.:  $BIN ctl --p2p=false set_all"
echo "demo: status: curl -s http://$HTTP_ADDR/status    metrics: curl -s http://$HTTP_ADDR/metrics"
echo "demo: records as they arrive (Ctrl-C to stop):"
"$BIN" tail -n "${DEMO_RECORDS:-0}"
