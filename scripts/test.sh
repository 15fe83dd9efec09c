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

# Tools the suite needs beyond Go: promtool (rule checks and rule unit
# tests) and a headless Chromium (the console's browser test). Debian's
# packages provide both; installed here when missing.
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "test: $* missing and not root: install it (apt-get install $*) and rerun"; exit 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "test: $* missing and no apt-get: install it with your package manager and rerun"; exit 1
  fi
  echo "test: installing $* (apt)"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
if ! command -v promtool >/dev/null 2>&1; then apt_install prometheus; fi
if [ -z "${CHROME_BIN:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1; then
  apt_install chromium fonts-dejavu-core
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then apt_install python3-yaml; fi

echo "test: promtool check rules / test rules"
promtool check rules deploy/prometheus/alerts.yml deploy/prometheus/alerts-no-traffic.yml
promtool test rules deploy/prometheus/alerts_test.yml
# prometheus.yml names the rule files by their path in the container.
promdir=$(mktemp -d)
cp deploy/prometheus/alerts.yml deploy/prometheus/alerts-no-traffic.yml "$promdir"/
sed "s|/etc/prometheus/rules/|$promdir/|" deploy/prometheus/prometheus.yml > "$promdir/prometheus.yml"
promtool check config "$promdir/prometheus.yml"
rm -rf "$promdir"
echo "test: docker-compose.yml and deploy/ parse (YAML, JSON) and mount files that exist"
python3 - <<'PY'
import glob, json, os, yaml
for f in ["docker-compose.yml"] + sorted(glob.glob("deploy/**/*.yml", recursive=True)):
    with open(f) as fh:
        yaml.safe_load(fh)
with open("deploy/grafana/rtm2kafka.json") as fh:
    json.load(fh)
with open("docker-compose.yml") as fh:
    compose = yaml.safe_load(fh)
for name, svc in compose["services"].items():
    for vol in svc.get("volumes", []):
        src = vol.split(":")[0]
        if src.startswith(".") and not os.path.exists(src):
            raise SystemExit(f"docker-compose.yml: service {name} mounts {src}, which does not exist")
PY

echo "test: go test -race"
go test -race -count=1 -timeout 20m ./... 2>&1 | tee /tmp/rtm2kafka-test.log

echo "test: short fuzz runs ($FUZZTIME each)"
go test -run '^$' -fuzz '^FuzzReadFrame$' -fuzztime "$FUZZTIME" ./rtm/
go test -run '^$' -fuzz '^FuzzDecodePush$' -fuzztime "$FUZZTIME" ./rtm/
