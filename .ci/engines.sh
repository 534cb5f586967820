#!/usr/bin/env bash
# Starts the real engines the tests use, on loopback: a PostgreSQL server
# (Debian's packages, run as the postgres user) and an S3-compatible server
# (VersityGW, built from the Go module proxy at a pinned version), and finds
# Debian's Chromium for the browser tests. Installs what is missing.
#
#   bash .ci/engines.sh start   # install when needed, start, write the env file
#   bash .ci/engines.sh stop    # stop both servers
#   source "$(bash .ci/engines.sh envfile)"   # the OTA_TEST_* variables
#
# Tests find the engines through OTA_TEST_POSTGRES_URL, OTA_TEST_S3_ENDPOINT
# (with OTA_TEST_S3_ACCESS_KEY and OTA_TEST_S3_SECRET_KEY) and
# OTA_TEST_CHROMIUM; see internal/testengine. Without them the tests that
# need an engine skip, or fail when CI=true.
set -euo pipefail

VERSITYGW_VERSION="v1.8.0"
DIR="${OTA_ENGINES_DIR:-/tmp/ota-engines}"
CACHE="${OTA_ENGINES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ota-engines}"
PG_PORT="${OTA_PG_PORT:-55432}"
S3_PORT="${OTA_S3_PORT:-57070}"
S3_ACCESS="otatest"
S3_SECRET="otatest-secret-key"

say() { printf 'engines: %s\n' "$*" >&2; }

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
	if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

apt_install() {
	say "installing $* from Debian's packages"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
	local d
	d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
	[[ -n "$d" && -x "$d/postgres" ]] && echo "$d"
}

start_postgres() {
	local bin
	bin="$(pg_bindir || true)"
	if [[ -z "$bin" ]]; then
		apt_install postgresql
		bin="$(pg_bindir)"
	fi
	# Debian's package starts a cluster of its own on 5432; the tests use a
	# throwaway cluster of their own, so stop nothing and share nothing.
	local data="$DIR/pg"
	mkdir -p "$DIR"
	chmod 0755 "$DIR"
	if [[ ! -f "$data/PG_VERSION" ]]; then
		rm -rf "$data"
		mkdir -p "$data"
		chown postgres:postgres "$data"
		as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
	fi
	if as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		say "postgres already running on 127.0.0.1:$PG_PORT"
		return
	fi
	# fsync off: the tests' crash checks kill otad, never the database
	# server, and a throwaway cluster need not survive a power cut.
	as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
		-o "-h 127.0.0.1 -p $PG_PORT -k $data -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
		start >/dev/null
	say "postgres $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
	local bin
	bin="$(pg_bindir || true)"
	[[ -n "$bin" && -f "$DIR/pg/PG_VERSION" ]] || return 0
	as_postgres "$bin/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
}

versitygw_bin() {
	echo "$CACHE/versitygw-$VERSITYGW_VERSION/versitygw"
}

start_s3() {
	local bin
	bin="$(versitygw_bin)"
	if [[ ! -x "$bin" ]]; then
		say "building versitygw $VERSITYGW_VERSION (about a minute; cached in $CACHE)"
		mkdir -p "$(dirname "$bin")"
		GOBIN="$(dirname "$bin")" GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
	fi
	if [[ -f "$DIR/s3.pid" ]] && kill -0 "$(cat "$DIR/s3.pid")" 2>/dev/null; then
		say "versitygw already running on 127.0.0.1:$S3_PORT"
		return
	fi
	mkdir -p "$DIR/s3data"
	ROOT_ACCESS_KEY="$S3_ACCESS" ROOT_SECRET_KEY="$S3_SECRET" \
		nohup "$bin" --quiet --port "127.0.0.1:$S3_PORT" posix "$DIR/s3data" >"$DIR/s3.log" 2>&1 &
	echo $! >"$DIR/s3.pid"
	local i
	for i in $(seq 1 100); do
		if curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; then
			say "versitygw $VERSITYGW_VERSION on 127.0.0.1:$S3_PORT"
			return
		fi
		sleep 0.1
	done
	say "versitygw did not start; its log:"
	cat "$DIR/s3.log" >&2
	exit 1
}

stop_s3() {
	if [[ -f "$DIR/s3.pid" ]]; then
		kill "$(cat "$DIR/s3.pid")" 2>/dev/null || true
		rm -f "$DIR/s3.pid"
	fi
}

find_chromium() {
	local c
	for c in /usr/bin/chromium /usr/bin/chromium-browser; do
		[[ -x "$c" ]] && { echo "$c"; return; }
	done
	if [[ "${OTA_ENGINES_NO_CHROMIUM:-}" != 1 ]]; then
		apt_install chromium fonts-dejavu-core
		[[ -x /usr/bin/chromium ]] && echo /usr/bin/chromium
	fi
}

write_env() {
	local chromium="$1"
	cat >"$DIR/env" <<EOF
export OTA_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'
export OTA_TEST_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export OTA_TEST_S3_ACCESS_KEY='$S3_ACCESS'
export OTA_TEST_S3_SECRET_KEY='$S3_SECRET'
export OTA_TEST_CHROMIUM='$chromium'
EOF
	say "environment in $DIR/env"
}

case "${1:-}" in
start)
	mkdir -p "$DIR"
	start_postgres
	start_s3
	write_env "$(find_chromium || true)"
	;;
stop)
	stop_s3
	stop_postgres
	;;
envfile)
	echo "$DIR/env"
	;;
*)
	echo "usage: bash .ci/engines.sh start|stop|envfile" >&2
	exit 2
	;;
esac
