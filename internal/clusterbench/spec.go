package clusterbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/pipeline"
)

// The pipelines measured. Every spec is written to a file and loaded
// (parsed and planned) before a process runs it, so that a mistake is
// reported by the benchmark and not as a child's exit.

// windowSteps is the throughput pipeline's processing: a tumbling window
// per user whose results the output reader checks.
const windowSteps = `steps:
  - window: {key: [user], tumbling: 10s, aggregate: {n: count(), total: sum(amount)}}
`

// eventTime is the source's event time: ordered input, a small bound.
const eventTime = `  event_time: {field: ts, max_out_of_orderness: 1s}
`

// clusterSpec is the throughput pipeline in cluster mode.
func clusterSpec(app, in, out, delivery string, commit, session time.Duration) string {
	s := fmt.Sprintf("name: clusterbench\ncluster: {application_id: %s, commit_interval: %s", app, dur(commit))
	if session > 0 {
		s += ", session_timeout: " + dur(session)
	}
	s += "}\nsource:\n  kafka: {topic: " + in + "}\n  format: json\n" + eventTime + windowSteps
	s += "sink:\n  kafka: {topic: " + out + ", key: user}\ndelivery: " + delivery + "\n"
	return s
}

// embeddedSpec is the same pipeline run in one process: a bounded kafka
// source in a consumer group, checkpoints every interval (exactly-once:
// the kafka sink commits its transaction when a checkpoint completes).
func embeddedSpec(broker, group, in, out, delivery string, interval time.Duration, checkpointDir string) string {
	b := strconv.Quote(broker)
	s := "name: clusterbench-embedded\nsource:\n"
	s += fmt.Sprintf("  kafka: {brokers: [%s], topic: %s, group: %s, start: earliest, bounded: true}\n  format: json\n", b, in, group)
	s += eventTime + windowSteps
	s += fmt.Sprintf("sink:\n  kafka: {brokers: [%s], topic: %s, key: user}\n", b, out)
	s += fmt.Sprintf("delivery: %s\ncheckpoint: {interval: %s, dir: %s}\n", delivery, dur(interval), strconv.Quote(checkpointDir))
	return s
}

// dedupSpec is the failover pipeline: the first record of each user,
// emitted as soon as it is seen, after a repartition by user; its state
// is one entry per user.
func dedupSpec(app, in, out, delivery string, commit, session time.Duration) string {
	s := fmt.Sprintf("name: clusterbench-failover\ncluster: {application_id: %s, commit_interval: %s, session_timeout: %s}\n", app, dur(commit), dur(session))
	s += "source:\n  kafka: {topic: " + in + "}\n  format: json\n" + eventTime
	s += "steps:\n  - dedup: {key: [user], within: 1h}\n"
	s += "sink:\n  kafka: {topic: " + out + ", key: user}\ndelivery: " + delivery + "\n"
	return s
}

// dur writes d as a spec duration (whole milliseconds).
func dur(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// writeSpec writes text to dir/name and checks that it loads.
func writeSpec(dir, name, text string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("write pipeline spec: %w", err)
	}
	if _, err := pipeline.Load(path); err != nil {
		return "", fmt.Errorf("the benchmark's pipeline spec %s does not load: %w\n%s", name, err, text)
	}
	return path, nil
}
