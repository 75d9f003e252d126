package connect

import (
	"fmt"
	"os"
	"time"

	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

func openFileSource(t SourceTable) (stream.Source[exec.Change], Info, error) {
	path := t.Options["path"]
	if path == "" {
		return nil, Info{}, fmt.Errorf("option 'path' is required: a file or a directory")
	}
	if t.Options["format"] == "parquet" {
		return openParquetSource(t)
	}
	if err := checkMetadata(t.Columns, "file.path"); err != nil {
		return nil, Info{}, err
	}
	f, err := newRowFormat(t.Options, "format", t.Columns)
	if err != nil {
		return nil, Info{}, err
	}
	cfg := file.SourceConfig{Path: path}
	follow := false
	if v, ok := t.Options["source.monitor-interval"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, Info{}, fmt.Errorf("option 'source.monitor-interval' = '%s' is not a positive duration such as '10s'", v)
		}
		cfg.Follow, cfg.PollInterval, follow = true, d, true
	}
	if !follow {
		if _, err := os.Stat(path); err != nil {
			return nil, Info{}, fmt.Errorf("option 'path' = '%s': %w", path, err)
		}
	}
	if f.name == "csv" && !follow {
		cfg.Records = csvFraming{}
	}
	inner, err := file.NewSource(cfg)
	if err != nil {
		return nil, Info{}, err
	}
	desc := fmt.Sprintf("%s files at %s", f.name, path)
	if follow {
		desc += ", following new data"
	}
	src := &msgSource{inner: inner, newDecoder: func() msgDecoder { return f.newDecoder() }, ignoreErrors: f.ignoreErrors}
	return src, Info{Bounded: !follow, Description: desc}, nil
}

func openFileSink(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	path := t.Options["path"]
	if path == "" {
		return nil, fmt.Errorf("option 'path' is required: the directory the part files go to")
	}
	if err := noMetadata(t.Columns); err != nil {
		return nil, err
	}
	if t.Options["format"] == "parquet" {
		return openParquetSink(t, env)
	}
	f, err := newRowFormat(t.Options, "format", t.Columns)
	if err != nil {
		return nil, err
	}
	cfg := file.SinkConfig{Path: path, Suffix: "." + f.name, TwoPhase: env.ExactlyOnce}
	if f.name == "json" {
		cfg.Suffix = ".jsonl"
	}
	if cfg.RollBytes, err = optSize(t.Options, "sink.rolling-policy.file-size", 0); err != nil {
		return nil, err
	}
	if v, ok := t.Options["sink.rolling-policy.rollover-interval"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("option 'sink.rolling-policy.rollover-interval' = '%s' is not a positive duration such as '30m'", v)
		}
		cfg.RollInterval = d
	}
	inner, err := file.NewSink(cfg)
	if err != nil {
		return nil, err
	}
	return &msgSink{inner: inner, newEncoder: func() msgEncoder { return lineEncoder{f.newEncoder(false)} }}, nil
}

func noMetadata(cols []Column) error {
	for _, c := range cols {
		if c.Metadata != "" {
			return fmt.Errorf("column %s: metadata columns (METADATA FROM '%s') cannot be written to this sink", c.Name, c.Metadata)
		}
	}
	return nil
}
