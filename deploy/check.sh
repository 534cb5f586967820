#!/usr/bin/env bash
# Syntax-checks the deployment examples with the tools that run them:
# nginx -t, caddy adapt, systemd-analyze verify. The container definition is
# not checked here: it needs a Docker engine, which CI machines lack.
# Usage: deploy/check.sh [OTAD_BINARY]   (run from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
otad_bin="${1:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		# A fresh machine may have no package lists yet.
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; } || true
	fi
	command -v "$1" >/dev/null 2>&1
}

if [[ -z "$otad_bin" ]]; then
	otad_bin="$tmp/otad"
	CGO_ENABLED=0 go build -o "$otad_bin" ./cmd/otad
fi

echo "--- nginx -t deploy/nginx.conf"
if need nginx nginx-light; then
	# The example names certificate files of a real host; make throwaway ones.
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ota.example.com \
		-keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null
	sed "s#/etc/ssl/otad/#$tmp/#g" deploy/nginx.conf >"$tmp/nginx.conf"
	nginx -t -q -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log stderr;"
else
	echo "nginx not installable here; skipped"
fi

echo "--- caddy adapt deploy/Caddyfile"
if need caddy caddy; then
	caddy adapt --config deploy/Caddyfile --adapter caddyfile >/dev/null
else
	echo "caddy not installable here; skipped"
fi

echo "--- systemd-analyze verify deploy/otad.service"
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart's binary to exist; point it at the one just built.
	sed "s#/usr/local/bin/otad#$otad_bin#" deploy/otad.service >"$tmp/otad.service"
	out="$(systemd-analyze verify "$tmp/otad.service" 2>&1 || true)"
	# Without a booted systemd (containers) verify reports its own
	# environment; only lines naming the unit are about the unit.
	if grep -F "otad.service" <<<"$out" | grep -v "Documentation" ; then
		echo "systemd-analyze found problems in deploy/otad.service"
		exit 1
	fi
else
	echo "systemd-analyze not available; skipped"
fi
echo "deploy examples ok"
