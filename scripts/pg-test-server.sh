#!/bin/sh
# pg-test-server.sh - a throwaway PostgreSQL for tests and CI.
#
#   pg-test-server.sh start DIR PORT [NAME=VALUE ...]   prints the URL on stdout
#   pg-test-server.sh stop DIR                          idempotent
#   pg-test-server.sh url DIR PORT                      prints the URL
#
# start: initdb into DIR/data (once; as user postgres when run as root, since PostgreSQL
# refuses to run as root), trust auth, listen on 127.0.0.1:PORT with the unix socket in DIR,
# extra NAME=VALUE server settings (e.g. ssl=on ssl_cert_file=...) passed as -c options,
# waits until pg_isready, creates database tradewink_test. Starting a running server is a
# no-op that prints the URL. Files the server must read (certificates) may be put under DIR
# before start: when run as root, DIR is handed to user postgres.
# Env: PG_BIN (default: /usr/lib/postgresql/15/bin, else the newest installed, else PATH).
set -eu

die() {
    echo "pg-test-server.sh: $*" >&2
    exit 1
}

find_bin() {
    if [ -n "${PG_BIN:-}" ]; then
        echo "$PG_BIN"
        return
    fi
    if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
        echo /usr/lib/postgresql/15/bin
        return
    fi
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$newest" ] && [ -x "$newest/pg_ctl" ]; then
        echo "$newest"
        return
    fi
    dirname "$(command -v pg_ctl || die "pg_ctl not found; install postgresql")"
}

# as_pg CMD...: run as the server's OS user (postgres when we are root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    echo "postgresql://postgres@127.0.0.1:$2/tradewink_test"
}

start() {
    dir=$1
    port=$2
    shift 2
    case $port in
    '' | *[!0-9]*) die "PORT must be a number" ;;
    esac
    bin=$(find_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "user postgres missing (install postgresql)"
        chown -R postgres "$dir"
        chmod 0700 "$dir"
        as_pg test -x "$dir" || die "user postgres cannot reach $dir (make its parents a+x)"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
            --auth-local=trust --auth-host=trust >"$dir/initdb.log" 2>&1 ||
            die "initdb failed, see $dir/initdb.log"
    fi
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        url "$dir" "$port"
        return
    fi
    opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off"
    for kv in "$@"; do
        case $kv in
        *=*) opts="$opts -c $kv" ;;
        *) die "extra settings must be NAME=VALUE: $kv" ;;
        esac
    done
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$opts" start \
        >/dev/null || die "pg_ctl start failed, see $dir/server.log"
    i=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        i=$((i + 1))
        [ $i -lt 120 ] || die "server not ready after 60 s, see $dir/server.log"
        sleep 0.5
    done
    if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'tradewink_test'" | grep -q 1; then
        "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres tradewink_test ||
            die "createdb failed"
    fi
    url "$dir" "$port"
}

stop() {
    dir=$1
    bin=$(find_bin)
    [ -f "$dir/data/PG_VERSION" ] || return 0
    if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ||
            die "pg_ctl stop failed"
    fi
}

cmd=${1:-}
case $cmd in
start)
    [ $# -ge 3 ] || die "usage: $0 start DIR PORT [NAME=VALUE ...]"
    shift
    start "$@"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: $0 stop DIR"
    stop "$2"
    ;;
url)
    [ $# -eq 3 ] || die "usage: $0 url DIR PORT"
    url "$2" "$3"
    ;;
*)
    die "usage: $0 start DIR PORT [NAME=VALUE ...] | stop DIR | url DIR PORT"
    ;;
esac
