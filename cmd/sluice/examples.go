package main

import (
	"fmt"
	"io"
)

// commandExamples holds, by command path, the example command lines that
// its --help ends with: a new user's first calls, each one that works as
// written (from the repository root where it names a file of examples/).
var commandExamples = map[string][]string{
	"sluice run": {
		"sluice run examples/revenue-per-user-file.yaml",
		"sluice run --http-addr 127.0.0.1:8080 examples/clickstream-sessions.yaml   # dashboard at http://127.0.0.1:8080/",
		"sluice run --from-checkpoint /var/lib/sluice/checkpoints/chk-12 job.yaml   # an explicit checkpoint instead of the latest",
	},
	"sluice validate": {
		"sluice validate examples/*.yaml",
	},
	"sluice sql": {
		"sluice sql examples/revenue-per-user.sql",
		`sluice sql -e "SELECT user_id, COUNT(*) AS n FROM (VALUES ('ann'), ('bob'), ('ann')) AS t(user_id) GROUP BY user_id"`,
		"sluice sql --format json -e \"SELECT 1 AS one\"",
		"sluice sql                                   # an interactive prompt",
	},
	"sluice serve": {
		"sluice serve                                 # log in ./data, Kafka on 127.0.0.1:9092, HTTP on 127.0.0.1:8080",
		"sluice serve --data-dir /var/lib/sluice --kafka-addr 127.0.0.1:19092 --http-addr 127.0.0.1:18080",
		"sluice serve --listener SASL_SSL=SASL_SSL://0.0.0.0:9093 --tls-cert server.pem --tls-key server.key --authorizer --super-user User:admin",
	},
	"sluice produce": {
		`printf '{"user":"ann","amount":3}\n' | sluice produce orders --key-field user --broker 127.0.0.1:9092`,
		"sluice produce orders --data-dir ./data < orders.jsonl",
	},
	"sluice consume": {
		"sluice consume orders -e --broker 127.0.0.1:9092",
		"sluice consume orders --from latest --group audit --format json",
		"sluice consume orders --from 2026-12-01T00:00:00Z -n 10",
	},
	"sluice topic create": {
		"sluice topic create orders --partitions 3 --broker 127.0.0.1:9092",
		"sluice topic create users --cleanup-policy compact",
		"sluice topic create clicks --retention 24h --config segment.bytes=67108864",
	},
	"sluice topic list":           {"sluice topic list", "sluice topic list --internal --broker 127.0.0.1:9092"},
	"sluice topic describe":       {"sluice topic describe orders"},
	"sluice topic alter":          {"sluice topic alter orders --config retention.ms=3600000", "sluice topic alter orders --delete-config retention.ms"},
	"sluice topic add-partitions": {"sluice topic add-partitions orders --partitions 6"},
	"sluice topic delete-records": {"sluice topic delete-records orders --partition 0 --before 1000", "sluice topic delete-records orders --partition 0 --before -1   # everything written so far"},
	"sluice topic delete":         {"sluice topic delete orders"},
	"sluice user add":             {"sluice user add alice --password-file alice.pass", "echo 's3cret' | sluice user add bob --mechanism scram-sha-512 --broker 127.0.0.1:9092"},
	"sluice user list":            {"sluice user list"},
	"sluice user delete":          {"sluice user delete alice", "sluice user delete alice --mechanism scram-sha-256"},
	"sluice acl add": {
		"sluice acl add --principal User:alice --operation read,describe --topic orders",
		"sluice acl add --principal User:alice --operation read --group orders- --pattern prefixed",
	},
	"sluice acl list":         {"sluice acl list", "sluice acl list --pattern match --topic orders"},
	"sluice acl delete":       {"sluice acl delete --principal User:alice --topic orders"},
	"sluice tenant create":    {"sluice tenant create acme --member User:alice", "sluice tenant create acme --server http://127.0.0.1:8080 --http-token \"$TOKEN\""},
	"sluice tenant list":      {"sluice tenant list"},
	"sluice tenant delete":    {"sluice tenant delete acme"},
	"sluice namespace create": {"sluice namespace create acme/prod --retention 168h --max-storage 10GiB --produce-rate 5MiB/s"},
	"sluice namespace delete": {"sluice namespace delete acme/prod"},
	"sluice token create":     {"sluice token create --principal User:alice --ttl 720h"},
	"sluice token list":       {"sluice token list"},
	"sluice token revoke":     {"sluice token revoke cced50627020   # an ID of sluice token list"},
	"sluice bench log":        {"sluice bench log", "sluice bench log --fsync never --producers 4 --dir /mnt/disk/tmp"},
	"sluice bench kafka":      {"sluice bench kafka --records 200000", "sluice bench kafka --broker 127.0.0.1:9092"},
	"sluice bench auth":       {"sluice bench auth --logins 100"},
	"sluice bench latency":    {"sluice bench latency --rate 5000 --duration 5s", "sluice bench latency --rate 100000 --delivery at_least_once --relay"},
	"sluice bench relay":      {"sluice bench relay --broker 127.0.0.1:9092 --from orders --to orders-copy"},
	"sluice bench cluster":    {"sluice bench cluster --records 200000 --instances 1,2"},
	"sluice bench compaction": {"sluice bench compaction --bytes 256MiB"},
	"sluice bench s3-server":  {"sluice bench s3-server --addr 127.0.0.1:9000 --bucket sluice"},
	"sluice bench tier":       {"sluice bench tier --mb 64"},
	"sluice nexmark generate": {"sluice nexmark generate --events 1000 --output events.jsonl"},
	"sluice nexmark run":      {"sluice nexmark run --query q5 --events 1000000", "sluice nexmark run --query all --sql --events 100000 --json"},
	"sluice version":          {"sluice version"},
}

// printExamples writes the examples of the command path, if it has any.
func printExamples(w io.Writer, path string) {
	ex := commandExamples[path]
	if len(ex) == 0 {
		return
	}
	fmt.Fprint(w, "\nExamples:\n")
	for _, e := range ex {
		fmt.Fprintf(w, "  %s\n", e)
	}
}
