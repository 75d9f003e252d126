package latbench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/pipeline"
)

// BuiltinSpec is the pass-through pipeline measured without --pipeline:
// kafka → map → kafka, keeping the fields the benchmark writes. The
// brokers, topics, consumer group, delivery and checkpoint settings are
// filled in for each run (see specFor).
const BuiltinSpec = `name: latbench
source:
  kafka: {brokers: ["127.0.0.1:9092"], topic: in}
  format: json
steps:
  - map: {seq: seq, sent_ns: sent_ns, pad: pad}
sink:
  kafka: {brokers: ["127.0.0.1:9092"], topic: out}
`

// runSpec is what the benchmark fills into a pipeline spec for one mode.
type runSpec struct {
	broker, inTopic, outTopic, group string
	delivery                         Mode
	interval                         time.Duration
	checkpointDir                    string
}

// specFor returns the spec text of a pipeline run: base (a spec as YAML)
// with its kafka source reading inTopic from the start in a fresh group,
// its one kafka sink writing outTopic, both on the benchmark's broker, and
// delivery and checkpoint set for the mode. Other settings (steps,
// parallelism, other sinks) are kept.
func specFor(base []byte, rs runSpec) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("pipeline spec: %w", err)
	}
	if doc == nil {
		return nil, fmt.Errorf("pipeline spec: empty")
	}
	src, ok := doc["source"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("pipeline spec: no source block")
	}
	kin, ok := src["kafka"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("pipeline spec: the source must be a kafka source (the benchmark fills in its brokers and topic)")
	}
	kin["brokers"] = []string{rs.broker}
	kin["topic"] = rs.inTopic
	kin["group"] = rs.group
	kin["start"] = "earliest"
	kin["bounded"] = false
	delete(kin, "partitions")
	delete(kin, "offset")

	var sinks []map[string]any
	if s, ok := doc["sink"].(map[string]any); ok {
		sinks = append(sinks, s)
	}
	if l, ok := doc["sinks"].([]any); ok {
		for _, e := range l {
			if s, ok := e.(map[string]any); ok {
				sinks = append(sinks, s)
			}
		}
	}
	n := 0
	for _, s := range sinks {
		kout, ok := s["kafka"].(map[string]any)
		if !ok {
			continue
		}
		n++
		kout["brokers"] = []string{rs.broker}
		kout["topic"] = rs.outTopic
		delete(kout, "transactional_id")
	}
	if n != 1 {
		return nil, fmt.Errorf("pipeline spec: %d kafka sinks; the benchmark needs exactly one (it fills in its brokers and topic and reads it)", n)
	}
	if _, ok := doc["name"]; !ok {
		doc["name"] = "latbench"
	}
	doc["delivery"] = string(rs.delivery)
	doc["checkpoint"] = map[string]any{"interval": rs.interval.String(), "dir": rs.checkpointDir}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("pipeline spec: %w", err)
	}
	return out, nil
}

// writeSpec writes the spec of one mode into dir and checks that it loads
// (parses and plans), so that a bad --pipeline file is reported before a
// child process starts.
func writeSpec(dir string, base []byte, rs runSpec) (string, error) {
	text, err := specFor(base, rs)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "pipeline-"+string(rs.delivery)+".yaml")
	if err := os.WriteFile(path, text, 0o644); err != nil {
		return "", fmt.Errorf("write pipeline spec: %w", err)
	}
	if _, err := pipeline.Load(path); err != nil {
		return "", fmt.Errorf("pipeline spec for %s: %w", rs.delivery, err)
	}
	return path, nil
}
