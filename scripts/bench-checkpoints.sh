#!/usr/bin/env bash
# bench-checkpoints.sh: what frequent checkpoints cost every Nexmark query
# (issue 18). Each query runs without checkpoints, at a 1 s and at a 10 s
# interval, back to back (alternating, so that a noisy machine slows all
# three alike), for each state backend, ROUNDS times; it prints events per
# CPU-second (the whole process's CPU) as medians over the rounds, with
# each interval's share of "none", as a Markdown table.
#
#   scripts/bench-checkpoints.sh [-e EVENTS] [-r ROUNDS] [-s "memory pebble"] [-q "q0 q1 ..."] [-p PAR]
#
# Defaults: 2,000,000 events, 2 rounds, memory and pebble, every query,
# parallelism 1. Raw results go to a TSV file whose path is printed.
set -euo pipefail

events=2000000 rounds=2 states="memory pebble" queries="" par=1
while getopts "e:r:s:q:p:h" o; do
	case $o in
	e) events=$OPTARG ;;
	r) rounds=$OPTARG ;;
	s) states=$OPTARG ;;
	q) queries=$OPTARG ;;
	p) par=$OPTARG ;;
	*) sed -n '2,13p' "$0"; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
bin=$tmp/nxq.test
(cd "$root" && go test -c -o "$bin" ./nexmark/queries)
if [ -z "$queries" ]; then
	# The queries' table in queries.go: {"q16", "description", buildQ16},
	queries=$(grep -oE '^\s*\{"q[0-9]+"' "$root/nexmark/queries/queries.go" | tr -d '{" \t' | tr '\n' ' ')
fi
raw=$tmp/results.tsv
printf 'round\tstate\tquery\tinterval\tevents_per_cpu_s\n' >"$raw"

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) vCPU ($cpu), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "# $events events, parallelism $par, $rounds rounds; raw results: $raw" >&2
cd "$root/nexmark/queries"
for r in $(seq 1 "$rounds"); do
	for st in $states; do
		for q in $queries; do
			for iv in 0 1s 10s; do
				out=$("$bin" -test.run XXX -test.bench "Queries/$q\$" -test.benchtime 1x \
					-nexmark.events "$events" -nexmark.parallelism "$par" -nexmark.checkpoint "$iv" -nexmark.state "$st" 2>&1) || {
					echo "$q $st $iv failed:" >&2
					echo "$out" >&2
					exit 1
				}
				v=$(echo "$out" | grep -oE '[0-9.]+ events/core-s' | cut -d' ' -f1)
				printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$st" "$q" "$iv" "$v" >>"$raw"
				echo "round $r $st $q $iv: $v events/core-s" >&2
			done
		done
	done
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$raw" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for st in dict.fromkeys(r["state"] for r in rows):
    for q in dict.fromkeys(r["query"] for r in rows):
        for iv in ("0", "1s", "10s"):
            vs = [float(r["events_per_cpu_s"]) for r in rows if (r["state"], r["query"], r["interval"]) == (st, q, iv)]
            if vs:
                med[st, q, iv] = statistics.median(vs)
states = list(dict.fromkeys(r["state"] for r in rows))
head = "| query |" + "".join(f" {st}: none | 1 s | 10 s |" for st in states)
print(head)
print("|---|" + "---:|" * (3 * len(states)))
for q in dict.fromkeys(r["query"] for r in rows):
    cells = []
    for st in states:
        none = med.get((st, q, "0"))
        cells.append(f" {none:,.0f} |" if none else " - |")
        for iv in ("1s", "10s"):
            v = med.get((st, q, iv))
            cells.append(f" {v:,.0f} ({100 * v / none:.0f} %) |" if v and none else " - |")
    print(f"| {q} |" + "".join(cells))
EOF
