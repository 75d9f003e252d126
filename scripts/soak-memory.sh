#!/usr/bin/env bash
# Soak benchmark of --memory: runs a windowed Nexmark job for DURATION
# seconds under a memory limit and samples the process's resident set size
# (VmRSS of /proc/PID/status) every second. Prints the peak RSS, the limit,
# the samples above it, and exits 1 if any sample was above the limit.
# It is a benchmark, not a test: run it by hand (docs/observability.md#memory).
#
#   scripts/soak-memory.sh [DURATION_S=600] [LIMIT=256MiB] [QUERY=q16] [STATE=pebble]
#
# SLUICE names the binary (default: built from this checkout into a
# temporary directory). The job gets more events than it can process in
# DURATION and is interrupted at the end.
set -euo pipefail

duration=${1:-600}
limit=${2:-256MiB}
query=${3:-q16}
state=${4:-pebble}
events=${EVENTS:-1000000000}

bin=${SLUICE:-}
if [ -z "$bin" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	bin=$tmp/sluice
	go build -o "$bin" "$(dirname "$0")/../cmd/sluice"
fi

limit_bytes=$(python3 - "$limit" <<'PY'
import re, sys
m = re.fullmatch(r'\s*([0-9.]+)\s*([KMGT]i?B?|B)?\s*', sys.argv[1], re.I)
if not m: sys.exit("bad limit " + sys.argv[1])
u = (m.group(2) or 'B').upper()
mult = {'B': 1, 'K': 1 << 10, 'KIB': 1 << 10, 'KB': 10**3, 'M': 1 << 20, 'MIB': 1 << 20, 'MB': 10**6,
        'G': 1 << 30, 'GIB': 1 << 30, 'GB': 10**9, 'T': 1 << 40, 'TIB': 1 << 40, 'TB': 10**12}[u]
print(int(float(m.group(1)) * mult))
PY
)

"$bin" nexmark run --query "$query" --events "$events" --state "$state" --parallelism 1 --memory "$limit" --json >/dev/null 2>&1 &
pid=$!
peak=0 over=0 samples=0
for _ in $(seq "$duration"); do
	sleep 1
	rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
	[ -n "$rss_kib" ] || break
	rss=$((rss_kib * 1024))
	samples=$((samples + 1))
	[ "$rss" -gt "$peak" ] && peak=$rss
	[ "$rss" -gt "$limit_bytes" ] && over=$((over + 1))
done
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
echo "soak $query state=$state limit=$limit ($limit_bytes B): ${samples} s sampled, peak RSS $((peak >> 20)) MiB, samples above the limit: $over"
[ "$over" -eq 0 ]
