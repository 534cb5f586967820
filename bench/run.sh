#!/usr/bin/env bash
# bench/run.sh — run every benchmark comparison of docs/benchmarks.md and
# print the table: target, measured, reference, ratio, threshold, PASS/MISS.
#
#   bench/run.sh [--quick] [--docs] [--phases updates,datasize,zip,upload,download,stats,delta] [--keep]
#
#   --quick   one repetition of 2 s load phases, and a 100,000-event store
#             instead of 1,000,000 (use the full run for the numbers that count)
#   --docs    write the results into docs/benchmarks.md
#   --keep    keep the scratch directory (servers' logs, bundles)
#
# Needs Go, zip and sha256sum (zip is installed with apt-get when missing),
# and npm for the Capgo CLI comparison (that row says MISS, with the reason,
# when the CLI cannot be installed or run). The web bundle comes from the
# repository's own generator, bench/cmd/mkbundle, so a fresh clone runs it.
#
# Environment:
#   OTABENCH_CACHE     where the seeded store and the npm project are kept
#                      between runs (default /var/tmp/otabench-cache)
#   OTABENCH_SEEDED    use this seeded data dir (made by bench/cmd/seed with
#                      --apps N --channels 10 --bundles 100) instead of the cache;
#                      OTABENCH_SEEDED_APPS is its N (default 1000)
#
# Every server listens on 127.0.0.1 only. Exit status: 0 all PASS, 3 some
# MISS, anything else the harness failed.
set -euo pipefail

quick=0 docs=0 keep=0 phases=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--docs) docs=1 ;;
	--keep) keep=1 ;;
	--phases) phases="$2"; shift ;;
	--phases=*) phases="${1#--phases=}" ;;
	-h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${OTABENCH_CACHE:-/var/tmp/otabench-cache}
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/otabench.XXXXXX")
cleanup() { if [ "$keep" = 1 ]; then echo "scratch kept in $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Tools.
need_apt=()
command -v zip >/dev/null || need_apt+=(zip)
command -v sha256sum >/dev/null || need_apt+=(coreutils)
if [ ${#need_apt[@]} -gt 0 ]; then
	say "installing ${need_apt[*]}"
	apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
fi

# Binaries.
say "building otad, otactl and the bench programs"
mkdir -p "$work/bin"
go build -o "$work/bin/" ./cmd/otad ./cmd/otactl ./bench/cmd/refserver ./bench/cmd/seed ./bench/cmd/otabench ./bench/cmd/mkbundle

# The web dir to zip: ~1,500 files, 25 MiB (never inside the repository).
say "generating the web bundle"
"$work/bin/mkbundle" --seed 1 --files 1500 --mib 25 "$work/web" >&2

# The big store, seeded once and cached (bbolt syncs every publish, so a
# million take minutes even on tmpfs). otad migrates an older file at its
# first start, which is not timed, so the cache outlives schema changes;
# delete it to seed afresh.
if [ "$quick" = 1 ]; then apps=100; else apps=1000; fi
big="${OTABENCH_SEEDED:-$cache/seed-${apps}x10x100-v1}"
if [ -n "${OTABENCH_SEEDED:-}" ]; then
	[ -f "$big/otad.db" ] || { echo "run.sh: OTABENCH_SEEDED=$big holds no otad.db" >&2; exit 1; }
	apps=${OTABENCH_SEEDED_APPS:-1000}
elif [ ! -f "$big/otad.db" ]; then
	scratch=/dev/shm
	[ -d "$scratch" ] && [ -w "$scratch" ] || scratch="$work"
	tmp=$(mktemp -d "$scratch/otabench-seed.XXXXXX")
	say "seeding $apps apps × 10 channels × 100 bundles (once; cached in $big)"
	"$work/bin/seed" --data-dir "$tmp/data" --apps "$apps" --channels 10 --bundles 100 >&2
	rm -rf "$big.tmp" && cp -a "$tmp/data" "$big.tmp" && mv "$big.tmp" "$big"
	rm -rf "$tmp"
fi
events=$((apps * 10 * 100))

# The Capgo CLI, installed into an npm project of its own once a day
# (@latest moves), with the updater plugin it looks for.
capgo="$cache/capgo-$(date +%Y%m%d)"
if [ ! -x "$capgo/node_modules/.bin/capgo" ]; then
	if ! command -v npm >/dev/null; then
		capgo="$work/capgo-missing.txt"; echo "npm is not installed" >"$capgo"
	else
		say "installing @capgo/cli@latest and @capgo/capacitor-updater with npm"
		rm -rf "$capgo" && mkdir -p "$capgo"
		printf '{"name":"otabench-capgo","version":"1.0.0","private":true}\n' >"$capgo/package.json"
		if ! (cd "$capgo" && npm install --no-audit --no-fund --loglevel=error @capgo/cli@latest @capgo/capacitor-updater@latest) >"$work/npm.log" 2>&1; then
			rm -rf "$capgo"; capgo="$work/capgo-missing.txt"
			{ echo "npm install @capgo/cli@latest failed:"; tail -5 "$work/npm.log"; } >"$capgo"
		fi
	fi
fi
if [ -d "$capgo" ]; then
	printf '{"appId":"com.example.bench","appName":"bench","webDir":"www"}\n' >"$capgo/capacitor.config.json"
fi

cmdline="bench/run.sh"
if [ "$quick" = 1 ]; then cmdline+=" --quick"; fi
if [ -n "$phases" ]; then cmdline+=" --phases $phases"; fi
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, $(go version | cut -d' ' -f3-), Linux $(uname -r)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "machine: $machine; load average $load_before"

args=(--bin "$work/bin" --work "$work" --web "$work/web" --big-data "$big" --big-events "$events" --big-apps "$apps"
	--big-label "$apps apps × 10 channels × 100 bundles" --capgo "$capgo" --out "$work/results.md")
if [ "$quick" = 1 ]; then args+=(--quick); fi
if [ -n "$phases" ]; then args+=(--phases "$phases"); fi
rc=0
"$work/bin/otabench" "${args[@]}" || rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 3 ]; then
	echo "run.sh: otabench failed (exit $rc); rerun with --keep to read the servers' logs" >&2
	exit "$rc"
fi

if [ "$docs" = 1 ]; then
	doc=docs/benchmarks.md
	begin='<!-- results:begin -->' end='<!-- results:end -->'
	grep -q "$begin" "$doc" || { echo "run.sh: $doc has no $begin marker" >&2; exit 1; }
	section="$work/section.md"
	{
		echo "$begin"
		echo
		echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') with \`$cmdline --docs\` at commit \`$(git rev-parse --short HEAD)\`."
		echo
		echo "Machine: $machine. Load average when the run started: $load_before."
		echo
		cat "$work/results.md"
		echo
		echo "$end"
	} >"$section"
	awk -v sec="$section" -v b="$begin" -v e="$end" '
		$0 == b { while ((getline line < sec) > 0) print line; skip = 1; next }
		$0 == e { skip = 0; next }
		!skip' "$doc" >"$work/doc.md"
	cp "$work/doc.md" "$doc"
	say "wrote the results into $doc"
fi
exit "$rc"
