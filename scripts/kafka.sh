#!/usr/bin/env bash
# scripts/kafka.sh — a local single-node Apache Kafka (KRaft, broker+controller in one
# JVM) for integration tests and benchmarks, without Docker.
#
# The broker jars come from Maven Central (scripts/kafka-pom.xml) into a cache dir; the
# first run needs Java 17+ and Maven, later runs need only Java.
#
# Usage: scripts/kafka.sh <command> [flags]
#   start [--fresh]      fetch (if not cached), format (if not formatted), start, wait until
#                        serving. Idempotent: already running -> says so, exit 0.
#                        Reuses existing data in the state dir (e.g. after `kill`);
#                        --fresh wipes the state dir first.
#   stop [--keep-data]   SIGTERM (controlled shutdown), SIGKILL after ${KAFKA_STOP_TIMEOUT}s,
#                        then wipe the state dir unless --keep-data.
#   kill                 SIGKILL the broker (crash simulation), keep the data.
#   restart-broker [--hard]
#                        stop --keep-data (or kill with --hard), then start on the same data.
#   status               running or not (exit 0 when serving, 3 when not), pid, RSS, log path.
#   env                  print KAFKA_BROKERS=127.0.0.1:<port>
#   tools-classpath      fetch if needed, print the java classpath ("<libs>/*") of the
#                        broker + kafka-tools jars, e.g. for
#                        java -cp "$(scripts/kafka.sh tools-classpath)" org.apache.kafka.tools.ProducerPerformance ...
#   fetch                only download the jars into the cache.
#   logs [N]             tail the broker log (default 50 lines).
#
# Environment (all optional):
#   KAFKA_VERSION          Kafka release from Maven Central (default 4.4.0)
#   RTM2KAFKA_CACHE        cache root (default $HOME/.cache/rtm2kafka) -> kafka-<version>/libs
#   RTM2KAFKA_STATE        state dir: config, data, logs, pid (default /tmp/rtm2kafka-kafka)
#   KAFKA_PORT             client listener port on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener port (default 19093)
#   KAFKA_HEAP             JVM heap flags (default "-Xms256m -Xmx1G")
#   KAFKA_JVM_OPTS         extra JVM flags
#   KAFKA_START_TIMEOUT    seconds to wait until serving (default 120)
#   KAFKA_STOP_TIMEOUT     seconds to wait for a clean shutdown before SIGKILL (default 30)
#   KAFKA_SERVER_PROPS     extra server.properties lines, newline separated (override defaults)
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
CACHE_ROOT=${RTM2KAFKA_CACHE:-${HOME:-/tmp}/.cache/rtm2kafka}
KAFKA_HOME=${CACHE_ROOT}/kafka-${KAFKA_VERSION}
LIBS=${KAFKA_HOME}/libs
STATE=${RTM2KAFKA_STATE:-/tmp/rtm2kafka-kafka}
PORT=${KAFKA_PORT:-19092}
CPORT=${KAFKA_CONTROLLER_PORT:-19093}
HOST=127.0.0.1
HEAP=${KAFKA_HEAP:--Xms256m -Xmx1G}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=${SCRIPT_DIR}/kafka-pom.xml

PIDFILE=${STATE}/kafka.pid
PROPS=${STATE}/server.properties
LOG4J=${STATE}/log4j2.properties
DATA=${STATE}/data
LOGDIR=${STATE}/logs
SERVER_LOG=${LOGDIR}/server.log
STDOUT_LOG=${LOGDIR}/stdout.log

T0=$(date +%s%N)
# Progress goes to stdout, except for commands whose stdout is data (env, tools-classpath).
exec 3>&1
log() { echo "kafka.sh: $*" >&3; }
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 ))ms"; }
die() {
  echo "kafka.sh: ERROR: $1" >&2
  shift
  local l
  for l in "$@"; do echo "kafka.sh:   $l" >&2; done
  exit 1
}

need_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found on PATH" "Kafka ${KAFKA_VERSION} needs Java 17+: apt-get install -y openjdk-17-jre-headless"
  local v
  v=$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  local major=${v%%.*}
  [[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2)
  if [[ -n $major && $major =~ ^[0-9]+$ && $major -lt 17 ]]; then
    die "java $v is too old" "Kafka 4.x brokers need Java 17+: apt-get install -y openjdk-17-jre-headless"
  fi
}

with_lock() { # with_lock <lockfile> <cmd...>: serialize concurrent runs (other helpers, parallel make)
  local lf=$1; shift
  mkdir -p "$(dirname "$lf")"
  if command -v flock >/dev/null 2>&1; then
    (
      flock -w 600 9 || die "could not get lock $lf within 600s" \
        "another process holds it; see who: fuser -v $lf (a broker started by an older kafka.sh may hold it: kill that pid)"
      "$@"
    ) 9>"$lf"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------- fetch
fetch_locked() {
  if [[ -f ${LIBS}/.complete ]]; then
    log "[fetch] cache hit: ${LIBS} ($(elapsed))"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "Kafka ${KAFKA_VERSION} is not cached in ${LIBS} and mvn is not installed" \
      "install Maven (apt-get install -y maven) or copy the libs dir from another machine"
  [[ -f $POM ]] || die "missing ${POM}" "restore scripts/kafka-pom.xml from git"
  log "[fetch] downloading kafka_2.13 ${KAFKA_VERSION} + kafka-tools + log4j2 from Maven Central into ${LIBS} ..."
  local tmp=${LIBS}.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local mlog=${KAFKA_HOME}/mvn-fetch.log
  if ! mvn -B -q -f "$POM" -Dkafka.version="${KAFKA_VERSION}" -Dlibs.dir="$tmp" \
      dependency:copy-dependencies >"$mlog" 2>&1; then
    rm -rf "$tmp"
    tail -n 20 "$mlog" >&2 || true
    die "Maven could not download Kafka ${KAFKA_VERSION} (full log: ${mlog})" \
      "check that Maven Central is reachable and that version ${KAFKA_VERSION} exists:" \
      "  mvn dependency:get -Dartifact=org.apache.kafka:kafka_2.13:${KAFKA_VERSION}" \
      "or pick another with KAFKA_VERSION=..."
  fi
  [[ -f ${tmp}/kafka_2.13-${KAFKA_VERSION}.jar ]] ||
    die "Maven finished but ${tmp}/kafka_2.13-${KAFKA_VERSION}.jar is missing" "see ${mlog}"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  echo "${KAFKA_VERSION}" >"${LIBS}/.complete"
  log "[fetch] done: $(ls "$LIBS" | wc -l) jars, $(du -sh "$LIBS" | cut -f1) ($(elapsed))"
}
fetch() { with_lock "${KAFKA_HOME}.lock" fetch_locked; }

# ---------------------------------------------------------------- process helpers
# our_pid: prints the pid from the pid file if that process is alive and is our broker.
our_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka ${PROPS}" || return 1
  echo "$pid"
}

port_open() { (exec 7<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

rss_mb() { awk '/^VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

is_serving() { # process alive + port open + log says started
  our_pid >/dev/null && port_open "$PORT" && grep -q "Kafka Server started" "$SERVER_LOG" 2>/dev/null
}

# ---------------------------------------------------------------- config
write_config() {
  mkdir -p "$DATA" "$LOGDIR"
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh — single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CPORT}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CPORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}

# single node: every internal topic single-replica
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true

# fast recovery after "kafka.sh kill" (SIGKILL): a restarted broker cannot register until the
# old registration's session expires (DUPLICATE_BROKER_REGISTRATION); default 9s.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500

# light on a 2-core machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
  if [[ -n ${KAFKA_SERVER_PROPS:-} ]]; then
    printf '\n# KAFKA_SERVER_PROPS\n%s\n' "$KAFKA_SERVER_PROPS" >>"$PROPS"
  fi
  cat >"$LOG4J" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${SERVER_LOG}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.controller.name = org.apache.kafka.controller
logger.controller.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = warn
EOF
}

format_storage() {
  if [[ -f ${DATA}/meta.properties ]]; then
    log "[format] reusing formatted data in ${DATA} (cluster $(grep -s '^cluster.id=' "${DATA}/meta.properties" | cut -d= -f2))"
    return 0
  fi
  # Kafka Uuid: 16 random bytes, base64url without padding (what `StorageTool random-uuid` prints).
  local cid
  cid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  local flog=${LOGDIR}/format.log
  if ! java -Dlog4j2.level=warn -cp "${LIBS}/*" kafka.tools.StorageTool format \
      --cluster-id="$cid" -c "$PROPS" >"$flog" 2>&1; then
    cat "$flog" >&2
    die "formatting KRaft storage in ${DATA} failed" "wipe it and retry: $0 stop && $0 start"
  fi
  log "[format] formatted KRaft storage, cluster.id=${cid} ($(elapsed))"
}

# ---------------------------------------------------------------- commands
start_locked() {
  local fresh=$1 pid
  if pid=$(our_pid); then
    if is_serving; then
      log "already running (pid ${pid}) on ${HOST}:${PORT}; nothing to do"
      return 0
    fi
    log "broker pid ${pid} is running but not serving yet; waiting"
  else
    rm -f "$PIDFILE"
    if [[ $fresh == 1 ]]; then
      log "[clean] --fresh: wiping ${STATE}"
      rm -rf "$STATE"
    fi
    for p in "$PORT" "$CPORT"; do
      if port_open "$p"; then
        die "port ${HOST}:${p} is already in use by another process (not this script's broker)" \
          "find it: ss -ltnp | grep :${p}   — stop it, or use other ports: KAFKA_PORT=... KAFKA_CONTROLLER_PORT=..." \
          "(a broker started with another RTM2KAFKA_STATE must be stopped with the same RTM2KAFKA_STATE)"
      fi
    done
    write_config
    log "[config] ${PROPS} (listeners ${HOST}:${PORT}, controller ${HOST}:${CPORT}, heap '${HEAP}')"
    format_storage
    [[ -f $SERVER_LOG ]] && mv -f "$SERVER_LOG" "${SERVER_LOG}.prev"
    # shellcheck disable=SC2086
    setsid nohup java ${HEAP} \
      -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="${LOG4J}" -Dkafka.logs.dir="${LOGDIR}" \
      ${KAFKA_JVM_OPTS:-} \
      -cp "${LIBS}/*" kafka.Kafka "${PROPS}" >"$STDOUT_LOG" 2>&1 </dev/null 3>&- 9>&- &
    # (3>&- 9>&-: the broker must not inherit the progress fd — it would keep a caller's
    # pipe open — nor the lock fd, which would hold the state lock for its lifetime.)
    pid=$!
    echo "$pid" >"$PIDFILE"
    log "[launch] broker pid ${pid}, log ${SERVER_LOG} ($(elapsed))"
  fi

  local deadline=$(( $(date +%s) + START_TIMEOUT )) said_port=0
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      echo "----- ${STDOUT_LOG} (tail) -----" >&2; tail -n 30 "$STDOUT_LOG" >&2 2>/dev/null || true
      echo "----- ${SERVER_LOG} (tail) -----" >&2; tail -n 40 "$SERVER_LOG" >&2 2>/dev/null || true
      die "the broker exited during startup (see the log tails above)" \
        "if the data dir is from another Kafka version or corrupt: $0 start --fresh" \
        "full logs: ${LOGDIR}"
    fi
    if [[ $said_port == 0 ]] && port_open "$PORT"; then
      said_port=1
      log "[wait] port ${HOST}:${PORT} open ($(elapsed))"
    fi
    if [[ $said_port == 1 ]] && grep -q "Kafka Server started" "$SERVER_LOG" 2>/dev/null; then
      break
    fi
    if (( $(date +%s) >= deadline )); then
      echo "----- ${SERVER_LOG} (tail) -----" >&2; tail -n 40 "$SERVER_LOG" >&2 2>/dev/null || true
      die "broker pid ${pid} not serving on ${HOST}:${PORT} after ${START_TIMEOUT}s (log tail above)" \
        "the machine may be overloaded: retry with KAFKA_START_TIMEOUT=300, or $0 stop && $0 start --fresh" \
        "full logs: ${LOGDIR}"
    fi
    sleep 0.2
  done
  log "serving: KAFKA_BROKERS=${HOST}:${PORT} (pid ${pid}, RSS $(rss_mb "$pid")MB, Kafka ${KAFKA_VERSION}, $(elapsed))"
}

cmd_start() {
  local fresh=0 a
  for a in "$@"; do
    case $a in
      --fresh) fresh=1 ;;
      --keep-data) ;; # the default: start reuses existing data
      *) die "unknown flag for start: $a" "usage: $0 start [--fresh]" ;;
    esac
  done
  need_java
  fetch
  with_lock "${STATE}.lock" start_locked "$fresh"
}

signal_and_wait() { # signal_and_wait <pid> <timeout_s>: TERM, then KILL after timeout
  local pid=$1 to=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < to * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  log "[stop] pid ${pid} still alive after ${to}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  die "pid ${pid} survived SIGKILL" "check: ps -o pid,stat,cmd -p ${pid}"
}

stop_locked() {
  local keep=$1 pid
  if pid=$(our_pid); then
    log "[stop] stopping broker pid ${pid} (SIGTERM, up to ${STOP_TIMEOUT}s)"
    signal_and_wait "$pid" "$STOP_TIMEOUT"
    log "[stop] broker stopped ($(elapsed))"
  else
    log "[stop] no broker running for state dir ${STATE}"
  fi
  rm -f "$PIDFILE"
  if [[ $keep == 0 ]]; then
    rm -rf "$STATE"
    log "[stop] wiped ${STATE}"
  else
    log "[stop] kept data in ${DATA}"
  fi
}

cmd_stop() {
  local keep=0 a
  for a in "$@"; do
    case $a in
      --keep-data) keep=1 ;;
      *) die "unknown flag for stop: $a" "usage: $0 stop [--keep-data]" ;;
    esac
  done
  with_lock "${STATE}.lock" stop_locked "$keep"
}

kill_locked() {
  local pid
  if ! pid=$(our_pid); then
    log "[kill] no broker running for state dir ${STATE}"
    rm -f "$PIDFILE"
    return 0
  fi
  kill -KILL "$pid"
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$PIDFILE"
  log "[kill] SIGKILLed broker pid ${pid}; data kept in ${DATA} (start again with: $0 start)"
}
cmd_kill() { with_lock "${STATE}.lock" kill_locked; }

cmd_restart_broker() {
  if [[ ${1:-} == --hard ]]; then cmd_kill; else cmd_stop --keep-data; fi
  cmd_start
}

cmd_status() {
  local pid
  if pid=$(our_pid); then
    if is_serving; then
      log "running: pid ${pid}, KAFKA_BROKERS=${HOST}:${PORT}, RSS $(rss_mb "$pid")MB, Kafka ${KAFKA_VERSION}, state ${STATE}, log ${SERVER_LOG}"
      return 0
    fi
    log "starting (not serving yet): pid ${pid}, log ${SERVER_LOG}"
    return 3
  fi
  if port_open "$PORT"; then
    log "not running from ${STATE}, but something else listens on ${HOST}:${PORT}"
  else
    log "not running (start it: $0 start)"
  fi
  return 3
}

cmd_logs() { tail -n "${1:-50}" "$SERVER_LOG"; }

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill ;;
    restart-broker | restart) cmd_restart_broker "$@" ;;
    status) cmd_status ;;
    env) echo "KAFKA_BROKERS=${HOST}:${PORT}" ;;
    tools-classpath)
      exec 3>&2
      need_java
      fetch
      echo "${LIBS}/*"
      ;;
    fetch) fetch ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
    *)
      echo "usage: $0 start [--fresh] | stop [--keep-data] | kill | restart-broker [--hard] | status | env | tools-classpath | fetch | logs [N]" >&2
      exit 2
      ;;
  esac
}

main "$@"
