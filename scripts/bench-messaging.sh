#!/usr/bin/env bash
# Benchmark of the MQTT and NATS connectors next to the servers' own
# tools, in one run on the same machine (docs/benchmarks-connectors.md).
# Needs Mosquitto on 127.0.0.1:1883 and NATS with JetStream on
# 127.0.0.1:4222 (scripts/start-services.sh); `nats bench` is used when
# the nats CLI is on PATH (or NATS_CLI points at it).
#
#   scripts/bench-messaging.sh          # N=100000 messages of 100 bytes
#   N=20000 scripts/bench-messaging.sh
set -euo pipefail
N=${N:-100000}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%0100d\n' $(seq 1 "$N") | sed 's/^0/x/' > "$tmp/lines"

rate() { # label N elapsed user sys
	awk -v l="$1" -v n="$2" -v e="$3" -v u="$4" -v s="$5" 'BEGIN { printf "%-40s %10.0f records/s %10.0f records/cpu-s (tool process)\n", l, n/e, n/(u+s) }'
}
for q in 0 1; do
	out=$( { /usr/bin/time -f '%e %U %S' mosquitto_pub -h 127.0.0.1 -p 1883 -q $q -t "sluicebench/tool/q$q" -l < "$tmp/lines"; } 2>&1 | tail -1)
	rate "mosquitto_pub -l qos$q" "$N" $out
done
NATS_CLI=${NATS_CLI:-$(command -v nats || true)}
if [ -n "$NATS_CLI" ]; then
	"$NATS_CLI" -s nats://127.0.0.1:4222 stream rm -f SLUICEBENCH >/dev/null 2>&1 || true
	"$NATS_CLI" -s nats://127.0.0.1:4222 stream add SLUICEBENCH --subjects 'sluicebench.>' --defaults >/dev/null
	out=$( { /usr/bin/time -f '%e %U %S' "$NATS_CLI" -s nats://127.0.0.1:4222 bench js pub async sluicebench.tool --stream SLUICEBENCH --msgs "$N" --size 100 --no-progress >/dev/null; } 2>&1 | tail -1) || true
	rate "nats bench js pub async" "$N" $out
	"$NATS_CLI" -s nats://127.0.0.1:4222 stream rm -f SLUICEBENCH >/dev/null 2>&1 || true
else
	echo "nats CLI not found: BenchmarkJetStreamPublishRaw (nats.go's own async publish) is the baseline"
fi
go test -run XXX -bench . -benchtime "${N}x" -timeout 600s ./connector/nats/ ./connector/mqtt/ | grep -E '^Benchmark'
