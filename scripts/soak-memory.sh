#!/usr/bin/env bash
# Soak benchmark of --memory: a windowed pipeline with KEYS distinct keys
# (10 million by default) keeps its window state on Pebble under
# `sluice run --memory LIMIT` for DURATION seconds. The script samples the
# process's resident set size (VmRSS of /proc/PID/status) every second
# and, every 10 seconds, the GC's CPU (runtime/metrics through the
# /metrics endpoint: sluice_gc_cpu_seconds_total), the process's CPU
# (/proc/PID/stat) and the records into the window; it prints the peak and
# median RSS (and of its anonymous part, RssAnon: RSS less the mapped
# executable and files), the GC's share of the CPU over the run and the
# keys that reached the state, and exits 1 if any RSS sample was above
# LIMIT plus ALLOWANCE_PCT percent.
#
# The allowance defaults to 0: the limit already keeps a tenth of itself
# (the plan's headroom, docs/observability.md#memory) outside GOMEMLIMIT
# for memory the Go runtime does not govern (OS thread stacks, pages not
# yet returned), so RSS itself must stay under the limit.
#
# It is a benchmark, not a test: run it by hand (docs/observability.md#memory).
#
#   scripts/soak-memory.sh [DURATION_S=600] [LIMIT=256MiB] [KEYS=10000000]
#
# Environment: SLUICE names the binary (default: built from this checkout
# into a temporary directory); ALLOWANCE_PCT (default 0); GOGC is passed
# through to the job (unset: the runtime's default of 100); SOAK_LOG, if
# set, receives the samples (wall seconds since the start, RSS bytes, GC CPU s, Go CPU s,
# records into the window, process CPU in clock ticks); SOAK_CPUPROFILE,
# if set, is the file the job writes its CPU profile to (go tool pprof).
#
# The job: the `orders` generator (1 ms of event time per record), the key
# order_id % KEYS, a tumbling window of 2*KEYS ms, so that every window
# holds every key twice (one insert and one update of each key's
# aggregate), count and sum per key, results to /dev/null.
set -euo pipefail

duration=${1:-600}
limit=${2:-256MiB}
keys=${3:-10000000}
allowance=${ALLOWANCE_PCT:-0}

tmp=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

bin=${SLUICE:-}
if [ -z "$bin" ]; then
	bin=$tmp/sluice
	# As the release build: without cgo, Pebble's block cache and
	# memtables are Go memory, under GOMEMLIMIT (with cgo they are C
	# memory outside it, and glibc's arenas keep freed blocks resident).
	(cd "$(dirname "$0")/.." && CGO_ENABLED=0 go build -o "$bin" ./cmd/sluice)
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$tmp/soak.yaml" <<EOF
name: soak-memory
source:
  generate: {preset: orders, users: $keys, start: 1000, interval: 1ms}
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - set: {k: order_id % $keys}
  - window:
      key: [k]
      tumbling: $((2 * keys))ms
      aggregate: {orders: count(), qty: sum(qty)}
sink:
  stdout: {}
state: {backend: pebble, dir: $tmp/state}
errors: {tolerance: none}
EOF

prof=()
if [ -n "${SOAK_CPUPROFILE:-}" ]; then prof=(--cpuprofile "$SOAK_CPUPROFILE"); fi
"$bin" run --quiet "${prof[@]}" --data-dir "$tmp/data" --memory "$limit" --http-addr "127.0.0.1:$port" "$tmp/soak.yaml" >/dev/null 2>"$tmp/stderr" &
pid=$!

# metric NAME prints the value of an unlabelled metric (empty if absent).
metric() {
	awk -v n="$1" '$1 == n {print $2}' "$tmp/metrics"
}
scrape() {
	curl -sf -o "$tmp/metrics" "http://127.0.0.1:$port/metrics" || return 1
	gc=$(metric sluice_gc_cpu_seconds_total)
	cpu=$(metric sluice_go_cpu_seconds_total)
	# Records into the window operator (all subtasks). Record i has key
	# i % KEYS and split s of n makes the records i = s, s + n, ..., so
	# it has given state to all its KEYS/n keys once it made KEYS/n
	# records (KEYS a multiple of n): the keys with state are at least
	# the sum over splits of min(made, KEYS/n), less the records not yet
	# into the window, and at most min(recs, KEYS).
	recs=$(awk '$1 ~ /^sluice_pipeline_records_in_total\{operator="steps\[[0-9]+\]\.window",/ {s += $2} END {print s + 0}' "$tmp/metrics")
	# The records each source subtask (one generator split each) emitted,
	# comma-separated.
	srcs=$(awk '$1 ~ /^sluice_pipeline_records_out_total\{operator="source",/ {printf "%s%s", sep, $2; sep = ","} END {print ""}' "$tmp/metrics")
	# The process's CPU time (utime + stime, in clock ticks) as the
	# kernel counts it, which a loaded machine does not inflate.
	ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
	[ -n "$gc" ] && [ -n "$cpu" ]
}

rss_file=$tmp/rss
: >"$rss_file"
gc0= cpu0= recs0= ticks0= gc= cpu= recs=0 ticks=0 srcs= t_last=0
log=${SOAK_LOG:-/dev/null}
# The run lasts DURATION seconds of wall time (on a loaded machine a
# sampling round can take longer than its second, so rounds are not
# counted as seconds): one RSS sample per round, a scrape when another
# ten seconds have passed.
start_s=$SECONDS
next_scrape=10
while :; do
	sleep 1
	t=$((SECONDS - start_s))
	[ "$t" -le "$duration" ] || break
	rss_kib= anon_kib=
	read -r rss_kib anon_kib < <(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r, a}' "/proc/$pid/status" 2>/dev/null || true) || true
	if [ -z "$rss_kib" ]; then
		echo "soak: the job exited after $t s:" >&2
		cat "$tmp/stderr" >&2
		exit 1
	fi
	echo $((rss_kib * 1024)) $((anon_kib * 1024)) >>"$rss_file"
	if [ "$t" -ge "$next_scrape" ] && scrape; then
		next_scrape=$((t + 10))
		# The GC share is measured from the first scrape (after the
		# job's start-up) to the last.
		if [ -z "$gc0" ]; then gc0=$gc cpu0=$cpu recs0=$recs ticks0=$ticks; fi
		t_last=$t
		echo "$t $((rss_kib * 1024)) $gc $cpu $recs $ticks $srcs" >>"$log"
	fi
done
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=

python3 - "$rss_file" "$limit" "$limit_bytes" "$allowance" "$keys" "${gc0:-0}" "${gc:-0}" "${cpu0:-0}" "${cpu:-0}" "${recs0:-0}" "${recs:-0}" "${ticks0:-0}" "${ticks:-0}" "$(getconf CLK_TCK)" "${GOGC:-100}" "${srcs:-}" "$t_last" <<'PY'
import statistics, sys
(path, limit, limit_b, allow, keys, gc0, gc1, cpu0, cpu1, r0, r1, t0, t1, hz, gogc, srcs, t_last) = sys.argv[1:]
samples = [l.split() for l in open(path) if l.strip()]
rss = [int(s[0]) for s in samples]
anon = [int(s[1]) for s in samples]
limit_b, allow = int(limit_b), float(allow)
bound = limit_b * (1 + allow / 100)
over = sum(1 for r in rss if r > bound)
gc, cpu, recs = float(gc1) - float(gc0), float(cpu1) - float(cpu0), int(float(r1)) - int(float(r0))
proc = (int(t1) - int(t0)) / int(hz)
# The GC's CPU (the runtime's estimate) over the process's CPU as the
# kernel counts it: an upper bound on a loaded machine, where the
# runtime's wall-clock based estimates include time its threads were
# descheduled. The runtime's own ratio (sluice_gc_cpu_share) divides by
# GOMAXPROCS x wall time less idle time, which such a machine inflates.
share = f"{100 * gc / proc:.1f} % of the process's CPU" if proc > 0 else "n/a"
# Keys with state (see the scrape): a lower bound from the splits, an
# upper one from the records into the window.
total = int(float(r1))
made = [int(float(x)) for x in srcs.split(",") if x]
k = int(keys)
hi = min(total, k)
if made and k % len(made) == 0:
    lo = max(0, sum(min(m, k // len(made)) for m in made) - max(0, sum(made) - total))
    keys_with_state = f"{hi:,} keys with state" if lo == hi else f"{lo:,} to {hi:,} keys with state"
else:
    keys_with_state = f"at most {hi:,} keys with state"
wall = f"{total / int(t_last):,.0f} records per second of wall time over {t_last} s" if int(t_last) > 0 else "n/a"
rshare = f"{100 * gc / cpu:.1f} %" if cpu > 0 else "n/a"
rate = f"{recs / proc:,.0f} records per CPU-second" if proc > 0 else "n/a"
print(f"soak: {keys} keys, --memory {limit} ({limit_b} B), GOGC={gogc}, {len(rss)} RSS samples: "
      f"RSS max {max(rss) >> 20} MiB, median {int(statistics.median(rss)) >> 20} MiB "
      f"(anonymous: max {max(anon) >> 20} MiB, median {int(statistics.median(anon)) >> 20} MiB); "
      f"GC CPU {gc:.1f} s = {share} ({proc:.1f} s; runtime's own ratio {rshare}); "
      f"{total:,} records into the window ({recs:,} after the first scrape), {keys_with_state} ({rate}, {wall}); "
      f"samples above {int(bound) >> 20} MiB: {over}")
sys.exit(1 if over else 0)
PY
