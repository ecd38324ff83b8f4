#!/usr/bin/env bash
# A real Apache Kafka broker for tests and local runs: single node, KRaft, on loopback.
#
#   scripts/kafka.sh up       fetch the jars if missing (Maven), configure, format, start, wait until ready
#   scripts/kafka.sh down     stop (SIGTERM, then SIGKILL after 30 s); data is kept
#   scripts/kafka.sh status   exit 0 when the broker answers a metadata request
#   scripts/kafka.sh start    start without fetching / stop / kill (SIGKILL, as in a crash)
#   scripts/kafka.sh stop|kill
#   scripts/kafka.sh clean    stop and delete var/kafka (the jar cache in ~/.m2 stays)
#   scripts/kafka.sh env      print the export line the tests read (QRISK_TEST_KAFKA_BOOTSTRAP)
#
# The broker: org.apache.kafka:kafka_2.13:${QRISK_KAFKA_VERSION:-4.1.1} and its runtime
# dependencies from Maven Central (scripts/kafka/pom.xml; ~/.m2 is the cache between runs),
# copied to var/kafka/libs-<version>/.  Client port ${QRISK_KAFKA_PORT:-19092}, controller port
# ${QRISK_KAFKA_CONTROLLER_PORT:-19093}, both on 127.0.0.1; heap ${QRISK_KAFKA_HEAP:-512m};
# config, logs and data under var/kafka/ (QRISK_VAR_DIR moves var/, for private brokers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${QRISK_VAR_DIR:-$ROOT/var}"
KAFKA_VERSION="${QRISK_KAFKA_VERSION:-4.1.1}"
K_DIR="$VAR/kafka"
K_LIBS="${QRISK_KAFKA_LIBS:-$K_DIR/libs-$KAFKA_VERSION}"  # a private broker may share the jars
K_PORT="${QRISK_KAFKA_PORT:-19092}"
K_CTRL_PORT="${QRISK_KAFKA_CONTROLLER_PORT:-19093}"
K_HEAP="${QRISK_KAFKA_HEAP:-512m}"
K_TIMEOUT="${QRISK_KAFKA_START_TIMEOUT:-90}"
K_PID="$K_DIR/kafka.pid"
K_OUT="$K_DIR/log/stdout.log"
K_CONF="$K_DIR/server.properties"
K_DATA="$K_DIR/data"
PYTHON="${PYTHON:-python3}"

log() { printf 'kafka: %s\n' "$*" >&2; }

kafka_fail() {
    log "$*"
    local f
    for f in "$K_OUT" "$K_DIR/log/server.log"; do
        if [ -s "$f" ]; then
            log "---- tail of $f"
            tail -n 40 "$f" >&2
        fi
    done
    return 1
}

kafka_install() {
    if [ -s "$K_LIBS/.complete" ]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || { kafka_fail "mvn is not installed (apt-get install maven)"; return 1; }
    command -v java >/dev/null 2>&1 || { kafka_fail "java is not installed (Java 17 or newer)"; return 1; }
    log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies (Maven Central, cached in ~/.m2)"
    rm -rf "$K_LIBS.tmp"
    mkdir -p "$K_LIBS.tmp"
    if ! mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$K_LIBS.tmp" >&2; then
        rm -rf "$K_LIBS.tmp"
        kafka_fail "mvn could not fetch the broker jars"
        return 1
    fi
    rm -rf "$K_LIBS"
    mv "$K_LIBS.tmp" "$K_LIBS"
    ls "$K_LIBS" > "$K_LIBS/.complete"
}

kafka_configure() {
    mkdir -p "$K_DATA" "$K_DIR/log"
    cat > "$K_CONF" <<CONF
# written by scripts/kafka.sh; edits are overwritten at the next start
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$K_CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$K_PORT,CONTROLLER://127.0.0.1:$K_CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$K_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$K_DATA
# topics are declared by \`qrisk topics create\` (qrisk/topics.py) and by Faust for its changelogs
auto.create.topics.enable=false
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
# a broker killed and started again re-registers only once the controller let its old session lapse:
# the tests' private brokers, killed on purpose, shorten it (QRISK_KAFKA_SESSION_MS)
broker.session.timeout.ms=${QRISK_KAFKA_SESSION_MS:-9000}
broker.heartbeat.interval.ms=${QRISK_KAFKA_HEARTBEAT_MS:-2000}
num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
CONF
    cat > "$K_DIR/log4j2.properties" <<CONF
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $K_DIR/log/server.log
appender.file.filePattern = $K_DIR/log/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
CONF
}

# the JVM options of Kafka's own kafka-run-class.sh / kafka-server-start.sh, with a small heap
JAVA=(java "-Xmx$K_HEAP" "-Xms$K_HEAP" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
      "-Dlog4j2.configurationFile=$K_DIR/log4j2.properties" "-Dkafka.logs.dir=$K_DIR/log"
      -cp "$K_LIBS/*")

kafka_format() {
    # once per data folder: a cluster id, and the KRaft metadata log of a one-node quorum
    if [ -s "$K_DATA/meta.properties" ]; then
        return 0
    fi
    local cluster_id
    if [ -s "$K_DIR/cluster.id" ]; then
        cluster_id="$(cat "$K_DIR/cluster.id")"
    else
        cluster_id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>>"$K_OUT" | tail -n 1)"
        echo "$cluster_id" > "$K_DIR/cluster.id"
    fi
    if ! "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$K_CONF" --ignore-formatted >>"$K_OUT" 2>&1; then
        kafka_fail "formatting $K_DATA failed"
        return 1
    fi
}

# The pid $! gives is not always the server's: setsid(1) forks when its caller leads a process
# group, as it does when this script runs under a shell with job control (set -m), and the pid
# file then named a process that had already exited: status said down, up refused the port it
# found taken.  So a server is also found by its command line (builtins only: no process per entry).
pid_of_cmdline() {  # $1: a glob the space-joined command line must match
    local d parts
    for d in /proc/[0-9]*; do
        mapfile -d '' parts < "$d/cmdline" 2>/dev/null || continue
        # shellcheck disable=SC2254  # $1 is a pattern on purpose
        case "${parts[*]}" in $1) echo "${d#/proc/}"; return 0 ;; esac
    done
    return 1
}

kafka_pid() {
    local pid=""
    [ -s "$K_PID" ] && pid="$(cat "$K_PID")"
    # the pid must still be our broker, not a recycled number
    if [ -z "$pid" ] || ! tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q "$K_CONF"; then
        pid="$(pid_of_cmdline "*java *kafka.Kafka $K_CONF")" || return 1
        echo "$pid" > "$K_PID"
    fi
    echo "$pid"
}

kafka_ping() {
    # a real metadata request (kafka-python), not just an open port
    "$PYTHON" - "127.0.0.1:$K_PORT" <<'PY' >/dev/null 2>&1
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=3000)
try:
    admin.describe_cluster()
    admin.list_topics()
    # a fresh broker answers metadata before its group coordinator is up (it creates
    # __consumer_offsets on the first lookup): ready means consumer groups work too
    admin.list_group_offsets("qrisk-readiness-probe")
finally:
    admin.close()
PY
}

kafka_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$K_PORT") 2>/dev/null
}

kafka_status() {
    local pid
    if pid="$(kafka_pid)" && kafka_ping; then
        log "up (pid $pid, $KAFKA_VERSION, bootstrap 127.0.0.1:$K_PORT, controller 127.0.0.1:$K_CTRL_PORT, data $K_DATA)"
        return 0
    fi
    if pid="$(kafka_pid)"; then
        log "process $pid is running but does not answer on 127.0.0.1:$K_PORT"
    else
        log "down"
    fi
    return 1
}

kafka_start() {
    if kafka_pid >/dev/null && kafka_ping; then
        log "already up on 127.0.0.1:$K_PORT"
        return 0
    fi
    [ -s "$K_LIBS/.complete" ] || { kafka_fail "the broker jars are not fetched (run: $0 up)"; return 1; }
    "$PYTHON" -c "import kafka" 2>/dev/null || { kafka_fail "kafka-python is not installed for $PYTHON (pip install -e '.[test]')"; return 1; }
    if kafka_pid >/dev/null; then
        kafka_stop  # running but not answering: start afresh
    fi
    if kafka_port_open; then
        kafka_fail "something else already listens on 127.0.0.1:$K_PORT (set QRISK_KAFKA_PORT)"
        return 1
    fi
    kafka_configure
    : > "$K_OUT"
    kafka_format || return 1
    # setsid: the broker outlives this script and the test run that started it
    (cd "$K_DIR" && exec setsid "${JAVA[@]}" kafka.Kafka "$K_CONF" >>"$K_OUT" 2>&1 < /dev/null) &
    local pid=$!
    echo "$pid" > "$K_PID"
    local deadline=$((SECONDS + K_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! pid="$(kafka_pid)"; then
            rm -f "$K_PID"
            kafka_fail "the broker exited during start-up"
            return 1
        fi
        if kafka_port_open && kafka_ping; then
            log "up (pid $pid, $KAFKA_VERSION, bootstrap 127.0.0.1:$K_PORT)"
            return 0
        fi
        sleep 0.5
    done
    kafka_fail "no answer to a metadata request within ${K_TIMEOUT}s"
    return 1
}

kafka_up() {
    kafka_install
    kafka_start
}

kafka_stop() {
    local pid
    if ! pid="$(kafka_pid)"; then
        rm -f "$K_PID"
        log "not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "did not stop in 30s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$K_PID"
    log "stopped"
}

kafka_down() { kafka_stop; }

kafka_kill() {
    local pid
    if pid="$(kafka_pid)"; then
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$K_PID"
        log "killed (SIGKILL) $pid"
    fi
}

kafka_clean() {
    kafka_stop
    rm -rf "$K_DIR"
    log "removed $K_DIR"
}

kafka_env() {
    echo "export QRISK_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$K_PORT"
}

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    [ $# -ge 1 ] || usage
    local action="$1"
    case "$action" in
        up|down|status|start|stop|kill|clean|env) "kafka_$action" ;;
        install) kafka_install ;;
        -h|--help|help) usage ;;
        *) log "unknown action $action"; usage ;;
    esac
}

main "$@"
