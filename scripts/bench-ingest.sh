#!/usr/bin/env bash
# bench-ingest.sh: one franz-go producer writing 1 KiB records to one
# partition of a `sluice serve` process (topic fsync policy always), from a
# separate client process (`sluice bench kafka --broker`), against
# `dd bs=1M count=1024 conv=fdatasync` on the same file system, in
# interleaved rounds. Each round runs dd, then every server binary given,
# in turn; the client is always the first binary.
#
#   scripts/bench-ingest.sh [-r ROUNDS] [-d DIR] [-t DURATION] [-p PROFILE_DIR] [-f FSYNC] [-x CLIENT_FLAG] BINARY[,CLIENT_FLAG...] ...
#
# A BINARY may carry client flags for its runs only, after commas
# (/tmp/sluice,--batch-bytes=4194304 measures a producer setting), and
# server flags prefixed with + (/tmp/sluice,+--page-cache-window=8MiB
# measures a server setting with the same binary).
#
# DIR (default: a fresh directory under ./bench-ingest.tmp) must be on the
# disk to measure. With -p, round 1 writes server and client CPU profiles
# there. Prints one line per measurement and, at the end, for each binary
# the medians of: MB/s, the ratio to the same round's dd, the server's and
# the client's CPU-seconds per GB produced, and the bytes per fdatasync of
# the benchmark topic (sluice_log_fsyncs_total and
# sluice_log_appended_bytes_total from the server's /metrics; binaries
# without these metrics show none), and each binary's ratio to the first.
set -euo pipefail

rounds=3 dir="" dur=10s prof="" extra=() fsync=always
while getopts "r:d:t:p:x:f:" o; do
	case $o in
	r) rounds=$OPTARG ;;
	d) dir=$OPTARG ;;
	t) dur=$OPTARG ;;
	p) prof=$OPTARG ;;
	x) extra+=("$OPTARG") ;; # an extra client flag, e.g. -x --linger=1ms
	f) fsync=$OPTARG ;;     # the server's fsync policy (default always)
	*) echo "usage: $0 [-r ROUNDS] [-d DIR] [-t DURATION] [-p PROFILE_DIR] [-x CLIENT_FLAG] BINARY [BINARY...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "$0: name at least one sluice binary" >&2; exit 2; }
bins=("$@")
client=${bins[0]%%,*}
dir=${dir:-$PWD/bench-ingest.tmp}
mkdir -p "$dir"
[ -z "$prof" ] || mkdir -p "$prof"
port=$((19092 + RANDOM % 1000))
results=$(mktemp)
trap 'rm -f "$results" "$dir/dd.bin"; rm -rf "$dir"/data-*' EXIT

wait_port() { # wait until the Kafka port $1 of server pid $2 answers (deadline 60 s)
	local i
	for i in $(seq 600); do
		if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then return 0; fi
		kill -0 "$2" 2>/dev/null || { echo "server exited:" >&2; cat "$3" >&2; return 1; }
		sleep 0.1
	done
	echo "server did not listen on $1" >&2
	return 1
}

for r in $(seq "$rounds"); do
	sync
	ddout=$(dd if=/dev/zero of="$dir/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
	rm -f "$dir/dd.bin"
	# "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.2 s, 910 MB/s"
	secs=$(sed -E 's/.*copied, ([0-9.]+) s.*/\1/' <<<"$ddout")
	ddmb=$(awk -v s="$secs" 'BEGIN { printf "%.1f", 1073.741824 / s }')
	echo "round $r dd $ddmb MB/s ($ddout)"
	echo "$r dd $ddmb" >>"$results"
	# Odd rounds run the binaries in the order given, even rounds in the
	# reverse order, so that none always follows dd (whose freed pages the
	# next writer may find cheaper to fill).
	order=("${!bins[@]}")
	if [ $((r % 2)) = 0 ]; then
		order=($(printf '%s\n' "${order[@]}" | tac))
	fi
	for i in "${order[@]}"; do
		IFS=, read -r -a spec <<<"${bins[$i]}"
		b=${spec[0]}
		own=() sflags=()
		for f in "${spec[@]:1}"; do
			case $f in
			+*) sflags+=("${f#+}") ;;
			*) own+=("$f") ;;
			esac
		done
		data="$dir/data-$i"
		rm -rf "$data"
		sprof=() cprof=()
		if [ -n "$prof" ] && [ "$r" = 1 ]; then
			# binaries older than the flag are measured without a server profile
			if "$b" serve --help 2>&1 | grep -q -- -cpuprofile; then
				sprof=(--cpuprofile "$prof/server-$i.pprof")
			fi
			cprof=(--cpuprofile "$prof/client-$i.pprof")
		fi
		port=$((port + 1))
		"$b" serve --data-dir "$data" --kafka-addr 127.0.0.1:$port --http-addr 127.0.0.1:$((port + 1000)) \
			--schema-registry=false --fsync "$fsync" --log-level warn "${sprof[@]}" "${sflags[@]}" >"$dir/serve-$i.log" 2>&1 &
		spid=$!
		wait_port $port $spid "$dir/serve-$i.log"
		s0=$(awk '{ print $14 + $15 }' /proc/$spid/stat)
		TIMEFORMAT="%U %S"
		{ ctime=$( { time "$client" bench kafka --broker 127.0.0.1:$port --partitions 1 --record-size 1024 \
			--duration "$dur" --skip-consume "${cprof[@]}" "${extra[@]}" "${own[@]}" >"$dir/client.out" 2>/dev/null; } 2>&1 ); }
		out=$(cat "$dir/client.out")
		s1=$(awk '{ print $14 + $15 }' /proc/$spid/stat)
		# the benchmark topic's fdatasyncs and appended bytes, from the server's metrics
		read -r syncs abytes < <(curl -s "http://127.0.0.1:$((port + 1000))/metrics" | awk '
			/^sluice_log_fsyncs_total\{.*topic="kbench-/ { s += $NF }
			/^sluice_log_appended_bytes_total\{.*topic="kbench-/ { b += $NF }
			END { printf "%d %.0f\n", s, b }') || true
		syncs=${syncs:-0} abytes=${abytes:-0}
		kill -TERM $spid
		wait $spid || true
		rm -rf "$data"
		mb=$(sed -nE 's/.*produce: [0-9]+ records\/s, ([0-9.]+) MB\/s.*/\1/p' <<<"$out")
		bytes=$(sed -nE 's/^kafka bench: ([0-9]+) records of ([0-9]+) B.*/\1 \2/p' <<<"$out")
		cpu=$(awk -v b="$bytes" -v st=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" -v ct="$ctime" 'BEGIN {
			split(b, x, " "); gb = x[1] * x[2] / 1e9; split(ct, c, " ")
			printf "server %.2f, client %.2f CPU-s/GB", st / hz / gb, (c[1] + c[2]) / gb }')
		fs=$(awk -v n="$syncs" -v b="$abytes" 'BEGIN { if (n > 0) printf "%d fdatasyncs, %.2f MB per fdatasync", n, b / n / 1e6; else printf "no fdatasync count" }')
		echo "round $r bin$i ${bins[$i]}: $mb MB/s, $cpu, $fs ($(grep produce: <<<"$out" | sed 's/^ *//'))"
		echo "$r bin$i $mb $(awk -v b="$bytes" -v st=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" -v ct="$ctime" -v n="$syncs" -v ab="$abytes" 'BEGIN {
			split(b, x, " "); gb = x[1] * x[2] / 1e9; split(ct, c, " ")
			printf "%.3f %.3f %.4f", st / hz / gb, (c[1] + c[2]) / gb, (n > 0) ? ab / n / 1e6 : 0 }')" >>"$results"
	done
done

echo "medians over $rounds rounds (MB = 1e6 bytes; client payload bytes for sluice, file bytes for dd; ratios are per round, then the median):"
awk '
	function median(arr, n,    m) {
		asort(arr); return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
	}
	{ v[$2][$1] = $3; if ($2 != "dd") { scpu[$2][$1] = $4; ccpu[$2][$1] = $5; mbps[$2][$1] = $6 } }
	END {
		for (k in v) {
			m = 0; delete a; for (r in v[k]) a[++m] = v[k][r]
			line = sprintf("  %-5s median %.1f MB/s", k, median(a, m))
			if (k != "dd") {
				m = 0; delete q; for (r in v[k]) q[++m] = v[k][r] / v["dd"][r]
				line = line sprintf(", %.0f %% of dd", 100 * median(q, m))
				m = 0; delete q; for (r in v[k]) q[++m] = scpu[k][r]
				line = line sprintf(", server %.2f", median(q, m))
				m = 0; delete q; for (r in v[k]) q[++m] = ccpu[k][r]
				line = line sprintf(" and client %.2f CPU-s/GB", median(q, m))
				m = 0; delete q; for (r in v[k]) q[++m] = mbps[k][r]
				mm = median(q, m)
				if (mm > 0) line = line sprintf(", %.2f MB per fdatasync (%.0f fdatasyncs per GB)", mm, 1000 / mm)
				if (k != "bin0" && ("bin0" in v)) {
					m = 0; delete q; for (r in v[k]) q[++m] = v["bin0"][r] / v[k][r]
					line = line sprintf("; bin0 / %s %.2fx", k, median(q, m))
				}
			}
			print line
		}
	}' "$results" | sort
