#!/usr/bin/env bash
# scripts/bench.sh — `make bench`: the RTM-half micro-benchmarks, then the
# end-to-end driver (integration/bench): simulator in-process, the real
# bin/rtm2kafka as a separate process, a real Kafka broker, and the ceiling
# from Kafka's own ProducerPerformance. Results go to bench-results/.
#
# Environment (all optional):
#   KAFKA_BROKERS   use this broker instead of starting scripts/kafka.sh's
#   BENCH_ARGS      extra flags for the driver, e.g. "-sizes 1024 -mixes p2p-chat"
#                   (go run ./integration/bench -h lists them)
#   BENCH_COUNT     -count of the Go micro-benchmarks (default 5)
#   BENCH_SKIP_GO   set to 1 to skip the Go micro-benchmarks
#   BENCH_OUTAGE    set to 1 to add the Kafka-outage memory run (private broker, ~60 s)
# Targets are reported, never asserted: the script fails only when a run fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=bench-results
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%d-%H%M%S)
T0=$(date +%s)

[[ -x bin/rtm2kafka ]] || make build

STARTED_KAFKA=0
cleanup() {
  if [[ $STARTED_KAFKA == 1 ]]; then
    echo "bench.sh: stopping the broker it started"
    bash scripts/kafka.sh stop || true
  fi
}
trap cleanup EXIT

if [[ -z ${KAFKA_BROKERS:-} ]]; then
  if bash scripts/kafka.sh status >/dev/null 2>&1; then
    echo "bench.sh: using the running broker"
  else
    bash scripts/kafka.sh start
    STARTED_KAFKA=1
  fi
  eval "export $(bash scripts/kafka.sh env)"
fi
echo "bench.sh: KAFKA_BROKERS=${KAFKA_BROKERS}"

KAFKA_TOOLS_CP=$(bash scripts/kafka.sh tools-classpath 3>/dev/null)
export KAFKA_TOOLS_CP

echo "== machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ ${BENCH_SKIP_GO:-0} != 1 ]]; then
  GOBENCH=$OUT/gobench-$STAMP.txt
  echo "== Go micro-benchmarks (RTM half, codec, record encoding) -> $GOBENCH"
  go test -run '^$' -bench 'ConnPushes|MsgpackV5Loop|DecodePush|ReadFrame|AppendRecord' -benchmem \
    -count "${BENCH_COUNT:-5}" ./rtm/ ./bridge/ | tee "$GOBENCH"
  # The RTM half against its yardstick, medians of the runs.
  awk '
    /^Benchmark(ConnPushes|MsgpackV5Loop)\// {
      split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]); name = a[1] "/" a[2]
      for (i = 2; i <= NF; i++) if ($i == "pushes/s") v[name] = v[name] " " $(i-1)
    }
    function median(s,   n, x, i, j, t) {
      n = split(s, x, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
      return (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
    }
    END {
      print "== RTM half: median pushes/s, Conn vs the msgpack/v5 loop (target >= 0.8x)"
      split("100B 1KiB 16KiB", sz, " ")
      for (k = 1; k <= 3; k++) {
        c = v["BenchmarkConnPushes/" sz[k]]; y = v["BenchmarkMsgpackV5Loop/" sz[k]]
        if (c == "" || y == "") continue
        mc = median(c); my = median(y)
        printf "  %-6s Conn %10.0f/s   msgpack/v5 loop %10.0f/s   ratio %.2f\n", sz[k], mc, my, mc / my
      }
    }' "$GOBENCH"
fi

echo "== end to end (go run ./integration/bench ${BENCH_ARGS:-})"
EXTRA=()
[[ ${BENCH_OUTAGE:-0} == 1 ]] && EXTRA+=(-outage)
# shellcheck disable=SC2086
go run ./integration/bench -bin bin/rtm2kafka -out "$OUT" "${EXTRA[@]}" ${BENCH_ARGS:-}

echo "bench.sh: done in $(( $(date +%s) - T0 )) s"
