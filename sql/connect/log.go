package connect

import (
	"fmt"

	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

func openLogSource(t SourceTable, env Env) (stream.Source[exec.Change], Info, error) {
	if env.Log == nil {
		return nil, Info{}, fmt.Errorf("no embedded log in this process: run with a data directory (--data-dir), or use 'connector' = 'kafka' against a Sluice server")
	}
	topic := t.Options["topic"]
	if topic == "" {
		return nil, Info{}, fmt.Errorf("option 'topic' is required")
	}
	if err := checkMetadata(t.Columns, "timestamp", "offset", "partition", "topic"); err != nil {
		return nil, Info{}, err
	}
	f, err := newRowFormat(t.Options, "format", t.Columns)
	if err != nil {
		return nil, Info{}, err
	}
	cfg := logsrc.SourceConfig{Topic: topic}
	mode, err := optEnum(t.Options, "scan.startup.mode", "earliest-offset", "earliest-offset", "latest-offset")
	if err != nil {
		return nil, Info{}, err
	}
	if mode == "latest-offset" {
		cfg.Start = logsrc.StartLatest
	}
	bounded, err := optEnum(t.Options, "scan.bounded.mode", "unbounded", "unbounded", "latest-offset")
	if err != nil {
		return nil, Info{}, err
	}
	cfg.Bounded = bounded == "latest-offset"
	inner, err := logsrc.NewSource(env.Log, cfg)
	if err != nil {
		return nil, Info{}, err
	}
	src := &msgSource{inner: inner, newDecoder: func() msgDecoder { return f.newDecoder() }, ignoreErrors: f.ignoreErrors}
	return src, Info{Bounded: cfg.Bounded, Description: fmt.Sprintf("%s topic %s of the embedded log from %s", f.name, topic, mode)}, nil
}

func openLogSink(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	if env.Log == nil {
		return nil, fmt.Errorf("no embedded log in this process: run with a data directory (--data-dir), or use 'connector' = 'kafka' against a Sluice server")
	}
	topic := t.Options["topic"]
	if topic == "" {
		return nil, fmt.Errorf("option 'topic' is required")
	}
	if err := noMetadata(t.Columns); err != nil {
		return nil, err
	}
	f, err := newRowFormat(t.Options, "format", t.Columns)
	if err != nil {
		return nil, err
	}
	parts, err := optInt(t.Options, "sink.partitions", 1)
	if err != nil {
		return nil, err
	}
	if parts < 0 || parts > 1<<20 {
		return nil, fmt.Errorf("option 'sink.partitions' = %d must be 0 (the topic must exist) to 1048576", parts)
	}
	cfg := logsrc.SinkConfig{Topic: topic, CreatePartitions: int32(parts)}
	if env.ExactlyOnce {
		if env.ProducerIDs == nil {
			return nil, fmt.Errorf("exactly-once into the embedded log needs its producer ids (Env.ProducerIDs)")
		}
		cfg.Transactional, cfg.ProducerIDs = true, env.ProducerIDs
		cfg.TransactionalID = "sluice-sql-" + t.Name + "-" + topic
	}
	var keyIdx []int
	var kf *rowFormat
	if spec := t.Options["key.fields"]; spec != "" {
		if keyIdx, err = keyColumns(t.Columns, spec); err != nil {
			return nil, err
		}
		kf = &rowFormat{name: "json", opts: Options{}, cols: pick(t.Columns, keyIdx)}
	}
	inner, err := logsrc.NewSink(env.Log, cfg)
	if err != nil {
		return nil, err
	}
	return &msgSink{inner: inner, newEncoder: func() msgEncoder {
		e := &kafkaEncoder{val: f.newEncoder(false), keyIdx: keyIdx}
		if kf != nil {
			e.key = kf.newEncoder(false)
		}
		return e
	}}, nil
}
