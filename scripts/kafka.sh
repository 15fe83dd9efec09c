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
#   env                  print KAFKA_BROKERS=127.0.0.1:<port>; for a secured broker, the
#                        KAFKA_SECURE_* lines a client needs (addresses, CA, certificates,
#                        users, password files; never a password), ready for
#                        `set -a; eval "$(scripts/kafka.sh env)"; set +a`
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
#   KAFKA_SECURITY         plain (default) or secure. Secure: a throwaway CA, broker and client
#                          certificates and random passwords under ${RTM2KAFKA_STATE}/tls and
#                          /secrets, StandardAuthorizer with allow.everyone.if.no.acl.found=false,
#                          super users admin (SASL or certificate CN=admin) and broker, SCRAM
#                          credentials made at format time, and these listeners on 127.0.0.1
#                          (no plaintext one):
#                            KAFKA_PORT           SASL_SSL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
#                            KAFKA_MTLS_PORT      SSL, client certificate required (default KAFKA_PORT+2)
#                            KAFKA_TLS_PORT       SSL, no client auth, principal ANONYMOUS (default +3)
#                            KAFKA_SCRAM512_PORT  SASL_SSL: SCRAM-SHA-512 only (default +4)
#                          and the controller on KAFKA_CONTROLLER_PORT (SSL, certificate required).
#                          Defaults in secure mode: KAFKA_PORT 19192, KAFKA_CONTROLLER_PORT 19193,
#                          RTM2KAFKA_STATE /tmp/rtm2kafka-kafka-secure. The mode is remembered in
#                          the state dir: later commands need the same RTM2KAFKA_STATE and ports,
#                          not KAFKA_SECURITY (`env` needs only RTM2KAFKA_STATE).
#                          Example:
#                            KAFKA_SECURITY=secure scripts/kafka.sh start
#                            KAFKA_SECURITY=secure scripts/kafka.sh env
set -euo pipefail

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
CACHE_ROOT=${RTM2KAFKA_CACHE:-${HOME:-/tmp}/.cache/rtm2kafka}
KAFKA_HOME=${CACHE_ROOT}/kafka-${KAFKA_VERSION}
LIBS=${KAFKA_HOME}/libs
SECURITY=${KAFKA_SECURITY:-}
if [[ $SECURITY == secure ]]; then
  STATE=${RTM2KAFKA_STATE:-/tmp/rtm2kafka-kafka-secure}
else
  STATE=${RTM2KAFKA_STATE:-/tmp/rtm2kafka-kafka}
fi
if [[ -z $SECURITY && -f ${STATE}/security ]]; then
  SECURITY=$(cat "${STATE}/security") # the mode this state dir was started in
fi
SECURITY=${SECURITY:-plain}
case $SECURITY in
  plain)
    PORT=${KAFKA_PORT:-19092}
    CPORT=${KAFKA_CONTROLLER_PORT:-19093}
    ;;
  secure)
    PORT=${KAFKA_PORT:-19192}
    CPORT=${KAFKA_CONTROLLER_PORT:-19193}
    MTLS_PORT=${KAFKA_MTLS_PORT:-$((PORT + 2))}
    TLS_PORT=${KAFKA_TLS_PORT:-$((PORT + 3))}
    SCRAM512_PORT=${KAFKA_SCRAM512_PORT:-$((PORT + 4))}
    ;;
  *)
    echo "kafka.sh: ERROR: KAFKA_SECURITY=${SECURITY}: want plain or secure" >&2
    exit 2
    ;;
esac
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

# ---------------------------------------------------------------- secure mode
TLSDIR=${STATE}/tls
SECRETS=${STATE}/secrets
CLIENT_ENV=${STATE}/client.env
# SASL users (PLAIN and SCRAM). admin is a super user; bridge has no rights until ACLs give it some.
SECURE_USERS=(admin bridge)

# random_secret: 24 characters of [A-Za-z0-9].
random_secret() { head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c 24; }

# sign_cert <name> <cn> <ca> <extensions>: an EC P-256 key ${TLSDIR}/<name>.key and a
# certificate ${TLSDIR}/<name>.pem with subject CN=<cn>, signed by <ca> (<ca>.pem, <ca>.key),
# valid 30 days.
sign_cert() {
  local name=$1 cn=$2 ca=$3 ext=$4 d=$TLSDIR
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "${d}/${name}.key" -out "${d}/${name}.csr" -subj "/CN=${cn}" 2>/dev/null ||
    die "openssl could not make the key of ${name}"
  printf '%b\n' "$ext" >"${d}/${name}.ext"
  openssl x509 -req -in "${d}/${name}.csr" -CA "${d}/${ca}.pem" -CAkey "${d}/${ca}.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 30 -extfile "${d}/${name}.ext" \
    -out "${d}/${name}.pem" 2>/dev/null || die "openssl could not sign the certificate of ${name}"
  rm -f "${d}/${name}.csr" "${d}/${name}.ext"
}

# gen_tls: the throwaway PKI and passwords, once per state dir:
#   tls/ca.pem, ca.key          the CA that signs the broker and the good client certificates
#   tls/other-ca.pem, .key      a CA that signs nothing the broker trusts
#   tls/broker.p12              broker key + certificate (CN=broker, SAN 127.0.0.1, localhost)
#   tls/truststore.p12          the broker's truststore (ca.pem only)
#   tls/admin.pem, .key         client certificate CN=admin (a super user), signed by ca
#   tls/bridge.pem, .key        client certificate CN=bridge, signed by ca
#   tls/rogue.pem, .key         client certificate CN=bridge signed by other-ca: refused
#   secrets/<user>.password     SASL password of each user; secrets/store.password (PKCS12)
gen_tls() {
  [[ -f ${TLSDIR}/.complete ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "openssl not found" "apt-get install -y openssl"
  command -v keytool >/dev/null 2>&1 || die "keytool not found (it comes with the JDK)" "apt-get install -y openjdk-17-jre-headless"
  rm -rf "$TLSDIR" "$SECRETS"
  mkdir -p "$TLSDIR" "$SECRETS"
  chmod 700 "$TLSDIR" "$SECRETS"
  local ca u
  for ca in ca other-ca; do
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
      -keyout "${TLSDIR}/${ca}.key" -out "${TLSDIR}/${ca}.pem" \
      -subj "/CN=rtm2kafka throwaway ${ca} $(date +%s)" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
      die "openssl could not make the ${ca}"
  done
  sign_cert broker broker ca \
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
  for u in admin bridge; do
    sign_cert "$u" "$u" ca "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth"
  done
  sign_cert rogue bridge other-ca "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth"

  random_secret >"${SECRETS}/store.password"
  local sp
  sp=$(cat "${SECRETS}/store.password")
  openssl pkcs12 -export -in "${TLSDIR}/broker.pem" -inkey "${TLSDIR}/broker.key" -certfile "${TLSDIR}/ca.pem" \
    -name broker -out "${TLSDIR}/broker.p12" -passout "pass:${sp}" ||
    die "openssl could not write ${TLSDIR}/broker.p12"
  keytool -importcert -noprompt -alias ca -file "${TLSDIR}/ca.pem" -keystore "${TLSDIR}/truststore.p12" \
    -storetype PKCS12 -storepass "$sp" >/dev/null 2>&1 ||
    die "keytool could not write ${TLSDIR}/truststore.p12"
  for u in "${SECURE_USERS[@]}"; do
    random_secret >"${SECRETS}/${u}.password"
  done
  chmod 600 "${TLSDIR}"/*.key "${TLSDIR}"/*.p12 "${SECRETS}"/*
  touch "${TLSDIR}/.complete"
  log "[tls] throwaway CA, broker and client certificates in ${TLSDIR}, passwords in ${SECRETS} ($(elapsed))"
}

password_of() { cat "${SECRETS}/$1.password"; }

# secure_listener_props: the listener and security part of server.properties in secure mode.
secure_listener_props() {
  local sp plain_users="" u
  sp=$(cat "${SECRETS}/store.password")
  for u in "${SECURE_USERS[@]}"; do
    plain_users+=" user_${u}=\"$(password_of "$u")\""
  done
  cat <<EOF
listeners=SASL_SSL://${HOST}:${PORT},MTLS://${HOST}:${MTLS_PORT},TLS://${HOST}:${TLS_PORT},SCRAM512://${HOST}:${SCRAM512_PORT},CONTROLLER://${HOST}:${CPORT}
advertised.listeners=SASL_SSL://${HOST}:${PORT},MTLS://${HOST}:${MTLS_PORT},TLS://${HOST}:${TLS_PORT},SCRAM512://${HOST}:${SCRAM512_PORT}
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL,MTLS:SSL,TLS:SSL,SCRAM512:SASL_SSL
# the broker talks to itself and to the controller with its own certificate: principal "broker"
inter.broker.listener.name=MTLS

ssl.keystore.type=PKCS12
ssl.keystore.location=${TLSDIR}/broker.p12
ssl.keystore.password=${sp}
ssl.key.password=${sp}
ssl.truststore.type=PKCS12
ssl.truststore.location=${TLSDIR}/truststore.p12
ssl.truststore.password=${sp}
ssl.client.auth=none
listener.name.mtls.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
# a certificate's principal is its CN: CN=bridge -> User:bridge
ssl.principal.mapping.rules=RULE:^CN=([^,]+)(,.*)?\$/\$1/,DEFAULT

sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required${plain_users};
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.scram512.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.scram512.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:broker
EOF
}

# write_admin_properties: a Java client config of the super user (SCRAM-SHA-512 over TLS) for
# Kafka's own tools: --command-config / --bootstrap-server ${HOST}:${PORT}.
write_admin_properties() {
  cat >"${SECRETS}/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$(password_of admin)";
ssl.truststore.type=PEM
ssl.truststore.location=${TLSDIR}/ca.pem
EOF
  chmod 600 "${SECRETS}/admin.properties"
}

# write_client_env: what a client needs, for `env`: addresses, paths and names, never a password.
write_client_env() {
  cat >"$CLIENT_ENV" <<EOF
# secured broker of scripts/kafka.sh (state ${STATE}); passwords are in files, never here
KAFKA_SECURE_SASL_SSL=${HOST}:${PORT}
KAFKA_SECURE_SCRAM512=${HOST}:${SCRAM512_PORT}
KAFKA_SECURE_MTLS=${HOST}:${MTLS_PORT}
KAFKA_SECURE_TLS=${HOST}:${TLS_PORT}
KAFKA_SECURE_CA_FILE=${TLSDIR}/ca.pem
KAFKA_SECURE_OTHER_CA_FILE=${TLSDIR}/other-ca.pem
KAFKA_SECURE_CERT_DIR=${TLSDIR}
KAFKA_SECURE_USERS=$(IFS=,; echo "${SECURE_USERS[*]}")
KAFKA_SECURE_SUPER_USER=admin
KAFKA_SECURE_PASSWORD_DIR=${SECRETS}
KAFKA_SECURE_ADMIN_PROPERTIES=${SECRETS}/admin.properties
# SASL_SSL  ${HOST}:${PORT}  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; password of <user> in <password dir>/<user>.password
# SCRAM512  ${HOST}:${SCRAM512_PORT}  SASL_SSL with SCRAM-SHA-512 only
# MTLS      ${HOST}:${MTLS_PORT}  client certificate required: <cert dir>/<user>.pem + <user>.key, principal = CN;
#                            rogue.pem (CN=bridge) is signed by other-ca.pem and refused
# TLS       ${HOST}:${TLS_PORT}  TLS without client authentication, principal User:ANONYMOUS
# admin is a super user; every other principal has only the ACLs you give it. A bridge, e.g.:
#   KAFKA_BROKERS=${HOST}:${PORT} KAFKA_TLS=true KAFKA_TLS_CA_FILE=${TLSDIR}/ca.pem
#   KAFKA_SASL_MECHANISM=SCRAM-SHA-512 KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD_FILE=${SECRETS}/admin.password
# Kafka's tools as the super user: --bootstrap-server ${HOST}:${PORT} --command-config ${SECRETS}/admin.properties
#   java -cp "\$(scripts/kafka.sh tools-classpath)" org.apache.kafka.tools.AclCommand ... (kafka-acls.sh)
EOF
}

# describe_listeners: one line for the progress log.
describe_listeners() {
  if [[ $SECURITY == secure ]]; then
    echo "secured: SASL_SSL ${HOST}:${PORT}, mTLS ${HOST}:${MTLS_PORT}, TLS ${HOST}:${TLS_PORT}, SCRAM-SHA-512 only ${HOST}:${SCRAM512_PORT}, controller ${HOST}:${CPORT}; client settings: $0 env"
  else
    echo "KAFKA_BROKERS=${HOST}:${PORT}, controller ${HOST}:${CPORT}"
  fi
}

# ---------------------------------------------------------------- config
write_config() {
  mkdir -p "$DATA" "$LOGDIR"
  echo "$SECURITY" >"${STATE}/security"
  local listener_props
  if [[ $SECURITY == secure ]]; then
    gen_tls
    listener_props=$(secure_listener_props)
  else
    listener_props="listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CPORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  fi
  cat >"$PROPS" <<EOF
# Written by scripts/kafka.sh — single-node KRaft (combined broker+controller) for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CPORT}
controller.listener.names=CONTROLLER
${listener_props}
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
  if [[ $SECURITY == secure ]]; then
    chmod 600 "$PROPS" # it holds the key store and PLAIN passwords
    write_client_env
    write_admin_properties
  fi
  # secure mode: log every denial (INFO), e.g. "Principal = User:bridge is Denied operation = READ"
  local authz_level=warn
  [[ $SECURITY == secure ]] && authz_level=info
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
logger.authorizer.level = ${authz_level}
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
  local scram=() u m
  if [[ $SECURITY == secure ]]; then
    for u in "${SECURE_USERS[@]}"; do
      for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        scram+=(--add-scram "${m}=[name=${u},password=$(password_of "$u")]")
      done
    done
  fi
  if ! java -Dlog4j2.level=warn -cp "${LIBS}/*" kafka.tools.StorageTool format \
      --cluster-id="$cid" -c "$PROPS" "${scram[@]}" >"$flog" 2>&1; then
    cat "$flog" >&2
    die "formatting KRaft storage in ${DATA} failed" "wipe it and retry: $0 stop && $0 start"
  fi
  local users=""
  [[ ${#scram[@]} -gt 0 ]] && users=", SCRAM-SHA-256/512 users ${SECURE_USERS[*]}"
  log "[format] formatted KRaft storage, cluster.id=${cid}${users} ($(elapsed))"
}

# ---------------------------------------------------------------- commands
start_locked() {
  local fresh=$1 pid
  if [[ $fresh == 0 && -f ${DATA}/meta.properties ]]; then
    local was=plain
    [[ -f ${STATE}/security ]] && was=$(cat "${STATE}/security")
    [[ $was == "$SECURITY" ]] || die "${STATE} holds a ${was} broker's data, not a ${SECURITY} one" \
      "wipe it: KAFKA_SECURITY=${was} RTM2KAFKA_STATE=${STATE} $0 stop — or use another RTM2KAFKA_STATE"
  fi
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
    local ports=("$PORT" "$CPORT")
    [[ $SECURITY == secure ]] && ports+=("$MTLS_PORT" "$TLS_PORT" "$SCRAM512_PORT")
    for p in "${ports[@]}"; do
      if port_open "$p"; then
        die "port ${HOST}:${p} is already in use by another process (not this script's broker)" \
          "find it: ss -ltnp | grep :${p}   — stop it, or use other ports: KAFKA_PORT=... KAFKA_CONTROLLER_PORT=..." \
          "(a broker started with another RTM2KAFKA_STATE must be stopped with the same RTM2KAFKA_STATE)"
      fi
    done
    write_config
    log "[config] ${PROPS} ($(describe_listeners), heap '${HEAP}')"
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
  log "serving: $(describe_listeners) (pid ${pid}, RSS $(rss_mb "$pid")MB, Kafka ${KAFKA_VERSION}, $(elapsed))"
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
      log "running: pid ${pid}, $(describe_listeners), RSS $(rss_mb "$pid")MB, Kafka ${KAFKA_VERSION}, state ${STATE}, log ${SERVER_LOG}"
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

cmd_env() {
  if [[ $SECURITY == secure ]]; then
    [[ -f $CLIENT_ENV ]] || die "no secured broker was started with state dir ${STATE}" \
      "start it: KAFKA_SECURITY=secure $0 start (same RTM2KAFKA_STATE, KAFKA_PORT, KAFKA_CONTROLLER_PORT)"
    cat "$CLIENT_ENV"
  else
    echo "KAFKA_BROKERS=${HOST}:${PORT}"
  fi
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
    env) cmd_env ;;
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
