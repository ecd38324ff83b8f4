#!/usr/bin/env bash
# Real services for tests and local runs, on loopback, with their data under var/ of the repo.
#
#   scripts/services.sh up     [service...]   install if missing, configure, start, wait until ready
#   scripts/services.sh down   [service...]   stop (data is kept; `clean` removes it)
#   scripts/services.sh status [service...]   exit 0 when every named service answers
#   scripts/services.sh start|stop|kill [service...]   start without installing / stop / SIGKILL
#   scripts/services.sh clean  [service...]   stop and delete the service's folder under var/
#   scripts/services.sh env                   print the export lines the tests read
#
# Services: clickhouse (here), and every scripts/<service>.sh that takes the same actions
# (scripts/kafka.sh: the Kafka broker).  With no service named, the action applies to all.
# A service is added either as functions named <service>_<action> in this file or as a script.
#
# ClickHouse: Debian's clickhouse-server (18.16 on bookworm), native port
# ${QRISK_CH_TCP_PORT:-19000}, HTTP port ${QRISK_CH_HTTP_PORT:-18123}, config and data in
# var/clickhouse/.  Tests read QRISK_TEST_CLICKHOUSE_URL (see `env`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${QRISK_VAR_DIR:-$ROOT/var}"
SERVICES=(clickhouse)
for _script in "$ROOT"/scripts/*.sh; do  # services with a script of their own (kafka.sh …)
    _name="$(basename "$_script" .sh)"
    case "$_name" in services|test) continue ;; esac
    grep -q "^${_name}_up()" "$_script" 2>/dev/null && SERVICES+=("$_name")
done
unset _script _name

log() { printf 'services: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- clickhouse

CH_DIR="$VAR/clickhouse"
CH_TCP_PORT="${QRISK_CH_TCP_PORT:-19000}"
CH_HTTP_PORT="${QRISK_CH_HTTP_PORT:-18123}"
CH_PID="$CH_DIR/clickhouse-server.pid"
CH_LOG="$CH_DIR/log/clickhouse-server.log"
CH_ERR="$CH_DIR/log/clickhouse-server.err.log"
CH_OUT="$CH_DIR/log/stdout.log"
CH_TIMEOUT="${QRISK_CH_START_TIMEOUT:-60}"

clickhouse_install() {
    if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
        return 0
    fi
    log "installing Debian's clickhouse-server and clickhouse-client"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d stops the package from starting its own server on port 9000
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends clickhouse-server clickhouse-client
}

clickhouse_configure() {
    mkdir -p "$CH_DIR/data" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$CH_DIR/log"
    cat > "$CH_DIR/config.xml" <<XML
<?xml version="1.0"?>
<!-- written by scripts/services.sh; edits are overwritten at the next start -->
<yandex>
    <logger>
        <!-- information writes several lines per query (~150 k lines in 20 minutes of benchmarks here); errors still go to errorlog -->
        <level>warning</level>
        <log>$CH_LOG</log>
        <errorlog>$CH_ERR</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
</yandex>
XML
    cat > "$CH_DIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval><duration>3600</duration><queries>0</queries><errors>0</errors>
                <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
        </default>
    </quotas>
</yandex>
XML
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

clickhouse_pid() {
    local pid=""
    [ -s "$CH_PID" ] && pid="$(cat "$CH_PID")"
    # the pid must still be our server, not a recycled number
    if [ -z "$pid" ] || ! tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q "$CH_DIR/config.xml"; then
        pid="$(pid_of_cmdline "*clickhouse-server --config-file=$CH_DIR/config.xml")" || return 1
        echo "$pid" > "$CH_PID"
    fi
    echo "$pid"
}

clickhouse_ping() {
    clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" --query "SELECT 1" >/dev/null 2>&1
}

clickhouse_status() {
    local pid
    if pid="$(clickhouse_pid)" && clickhouse_ping; then
        log "clickhouse: up (pid $pid, native 127.0.0.1:$CH_TCP_PORT, http 127.0.0.1:$CH_HTTP_PORT, data $CH_DIR/data)"
        return 0
    fi
    if pid="$(clickhouse_pid)"; then
        log "clickhouse: process $pid is running but does not answer on 127.0.0.1:$CH_TCP_PORT"
    else
        log "clickhouse: down"
    fi
    return 1
}

clickhouse_fail() {
    log "clickhouse: $*"
    for f in "$CH_OUT" "$CH_ERR" "$CH_LOG"; do
        if [ -s "$f" ]; then
            log "---- tail of $f"
            tail -n 30 "$f" >&2
        fi
    done
    return 1
}

clickhouse_start() {
    if clickhouse_pid >/dev/null && clickhouse_ping; then
        log "clickhouse: already up on 127.0.0.1:$CH_TCP_PORT"
        return 0
    fi
    command -v clickhouse-server >/dev/null 2>&1 || { clickhouse_fail "clickhouse-server is not installed (run: $0 up clickhouse)"; return 1; }
    if clickhouse_pid >/dev/null; then
        clickhouse_stop  # running but not answering: start afresh
    fi
    if clickhouse_ping; then
        clickhouse_fail "something else already answers on 127.0.0.1:$CH_TCP_PORT (set QRISK_CH_TCP_PORT)"
        return 1
    fi
    clickhouse_configure
    : > "$CH_OUT"
    # our own config, not /etc's, so root can run it with the data under var/
    (cd "$CH_DIR" && exec setsid clickhouse-server --config-file="$CH_DIR/config.xml" >>"$CH_OUT" 2>&1 < /dev/null) &
    local pid=$!
    echo "$pid" > "$CH_PID"
    local deadline=$((SECONDS + CH_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! pid="$(clickhouse_pid)"; then
            rm -f "$CH_PID"
            clickhouse_fail "clickhouse-server exited during start-up"
            return 1
        fi
        if clickhouse_ping; then
            log "clickhouse: up (pid $pid, native 127.0.0.1:$CH_TCP_PORT, http 127.0.0.1:$CH_HTTP_PORT)"
            return 0
        fi
        sleep 0.3
    done
    clickhouse_fail "no answer to SELECT 1 within ${CH_TIMEOUT}s"
    return 1
}

clickhouse_up() {
    clickhouse_install
    clickhouse_start
}

clickhouse_stop() {
    local pid
    if ! pid="$(clickhouse_pid)"; then
        rm -f "$CH_PID"
        log "clickhouse: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "clickhouse: did not stop in 30s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$CH_PID"
    log "clickhouse: stopped"
}

clickhouse_down() { clickhouse_stop; }

clickhouse_kill() {
    local pid
    if pid="$(clickhouse_pid)"; then
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        rm -f "$CH_PID"
        log "clickhouse: killed (SIGKILL) $pid"
    fi
}

clickhouse_clean() {
    clickhouse_stop
    rm -rf "$CH_DIR"
    log "clickhouse: removed $CH_DIR"
}

clickhouse_env() {
    echo "export QRISK_TEST_CLICKHOUSE_URL=clickhouse://127.0.0.1:$CH_TCP_PORT/qrisk_test"
}

# ---------------------------------------------------------------- dispatch

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

main() {
    [ $# -ge 1 ] || usage
    local action="$1"; shift
    case "$action" in
        up|down|status|start|stop|kill|clean|env) ;;
        -h|--help|help) usage ;;
        *) log "unknown action $action"; usage ;;
    esac
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${SERVICES[@]}")
    local rc=0 svc
    for svc in "${targets[@]}"; do
        if declare -F "${svc}_${action}" >/dev/null; then
            "${svc}_${action}" || rc=1
        elif [[ " ${SERVICES[*]} " == *" $svc "* ]]; then
            bash "$ROOT/scripts/$svc.sh" "$action" || rc=1
        else
            log "unknown service $svc (known: ${SERVICES[*]})"
            exit 2
        fi
    done
    return $rc
}

main "$@"
