package pipeline

import (
	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file wires the connectors built in their own packages (log, http,
// and later kafka, postgres, parquet) to spec blocks.

type logSourceConfig struct{ cfg logsrc.SourceConfig }

func parseLogSource(e *errs, o *obj) sourceConfig {
	c := &logSourceConfig{}
	c.cfg.Topic = o.reqStr("topic", "the topic of the embedded log to read")
	start := o.enum("start", "earliest", "earliest", "latest", "offset")
	st, _ := logsrc.ParseStart(start)
	c.cfg.Start = st
	c.cfg.Offset = o.integer("offset", 0, 0, 1<<62)
	if start == "offset" && !o.has("offset") {
		e.at(o.node, o.sub("offset"), "is required with start: offset")
	}
	c.cfg.Bounded = o.boolean("bounded", false)
	o.done("topic", "start", "offset", "bounded")
	return c
}

func (c *logSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	l, err := bc.host.log()
	if err != nil {
		return nil, err
	}
	return logsrc.NewSource(l, c.cfg)
}

type logSinkConfig struct {
	cfg logsrc.SinkConfig
	key string
}

func parseLogSink(e *errs, o *obj) sinkConfig {
	c := &logSinkConfig{}
	c.cfg.Topic = o.reqStr("topic", "the topic of the embedded log to append to")
	c.cfg.CreatePartitions = int32(o.integer("partitions", 1, 0, 1<<20))
	c.key = o.str("key", "")
	o.done("topic", "partitions", "key")
	return c
}

func (c *logSinkConfig) bytes() bool        { return true }
func (c *logSinkConfig) messageKey() string { return c.key }
func (c *logSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	l, err := bc.host.log()
	if err != nil {
		return nil, err
	}
	return logsrc.NewSink(l, c.cfg)
}
func (c *logSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}

type httpSourceConfig struct{ cfg nethttp.Config }

func parseHTTPSource(e *errs, o *obj) sourceConfig {
	c := &httpSourceConfig{}
	c.cfg.Addr = o.str("addr", "")
	c.cfg.Path = o.str("path", "")
	c.cfg.Token = o.str("token", "")
	c.cfg.Rate = o.number("rate", 0, 0, 1e9)
	c.cfg.Burst = int(o.integer("burst", 0, 0, 1<<31))
	switch o.enum("shedding", "block", "block", "reject", "drop_oldest", "sample") {
	case "reject":
		c.cfg.Shedding = nethttp.Reject
	case "drop_oldest":
		c.cfg.Shedding = nethttp.DropOldest
	case "sample":
		c.cfg.Shedding = nethttp.Sample
	default:
		c.cfg.Shedding = nethttp.Block
	}
	c.cfg.SampleFraction = o.number("sample_fraction", 0, 0, 1)
	if c.cfg.Shedding == nethttp.Sample && !o.has("sample_fraction") {
		e.at(o.node, o.sub("sample_fraction"), "is required with shedding: sample (a fraction in (0, 1])")
	}
	c.cfg.BufferRecords = int(o.integer("buffer", 0, 0, 1<<30))
	c.cfg.MaxBodyBytes = o.integer("max_body_bytes", 0, 0, 1<<40)
	c.cfg.BlockTimeout = o.duration("block_timeout", 0, false)
	c.cfg.Splits = int(o.integer("splits", 0, 0, 1024))
	o.done("addr", "path", "token", "rate", "burst", "shedding", "sample_fraction", "buffer", "max_body_bytes", "block_timeout", "splits")
	return c
}

func (c *httpSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	// Until checkpoints exist, every delivery mode answers requests once
	// their records are in the pipeline.
	cfg.Delivery = nethttp.AtLeastOnce
	return nethttp.NewSource(cfg)
}
