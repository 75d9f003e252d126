package pipeline

import (
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/redisstream"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// This file wires connector/redisstream to `redis:` source and sink
// blocks.

// parseRedisOptions reads the connection keys shared by source and sink.
func parseRedisOptions(o *obj) redis.Options {
	return redis.Options{
		Addr:     o.str("addr", "127.0.0.1:6379"),
		Username: o.str("username", ""),
		Password: o.str("password", ""),
		DB:       int(o.integer("db", 0, 0, 1<<20)),
	}
}

var redisConnKeys = []string{"addr", "username", "password", "db"}

type redisSourceConfig struct {
	cfg redisstream.SourceConfig
}

func parseRedisSource(e *errs, o *obj) sourceConfig {
	c := &redisSourceConfig{}
	c.cfg.Options = parseRedisOptions(o)
	c.cfg.Stream = o.reqStr("stream", "the stream to read")
	c.cfg.Group = o.reqStr("group", "the consumer group (created when missing)")
	c.cfg.Consumer = o.str("consumer", "")
	c.cfg.Batch = int(o.integer("batch", redisstream.DefaultBatch, 1, 1<<20))
	c.cfg.Block = o.duration("block", redisstream.DefaultBlock, true)
	if c.cfg.Block > 10*time.Second {
		e.at(o.get("block"), o.sub("block"), "is %v; allowed: up to 10s (checkpoint barriers wait for it)", c.cfg.Block)
	}
	c.cfg.ClaimIdle = o.duration("claim_idle", redisstream.DefaultClaimIdle, false)
	if o.has("claim_idle") && c.cfg.ClaimIdle == 0 {
		c.cfg.ClaimIdle = -1 // 0 turns claiming off
	}
	c.cfg.Latest = o.enum("start", "earliest", "earliest", "latest") == "latest"
	c.cfg.ValueField = o.str("value_field", "value")
	o.done(append([]string{"stream", "group", "consumer", "batch", "block", "claim_idle", "start", "value_field"}, redisConnKeys...)...)
	return c
}

func (c *redisSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	if cfg.Consumer == "" {
		// Stable across runs: a restart reads its pending entries.
		cfg.Consumer = "sluice-" + bc.pipeline
	}
	// With checkpoints, entries are acknowledged once the checkpoint
	// covering them completes; without, once handed to the pipeline.
	cfg.AckOnHandover = bc.checkpointInterval == 0
	return redisstream.NewSource(cfg)
}

type redisSinkConfig struct {
	cfg redisstream.SinkConfig
	key string
}

func parseRedisSink(e *errs, o *obj) sinkConfig {
	c := &redisSinkConfig{}
	c.cfg.Options = parseRedisOptions(o)
	c.cfg.Stream = o.reqStr("stream", "the stream to append to")
	c.cfg.MaxLen = o.integer("maxlen", 0, 0, 1<<62)
	c.cfg.Exact = !o.boolean("approximate", true)
	c.cfg.ValueField = o.str("value_field", "value")
	if c.cfg.ValueField == "key" {
		e.at(o.get("value_field"), o.sub("value_field"), "must not be \"key\" (the field of each entry's key)")
	}
	c.key = o.str("key", "")
	o.done(append([]string{"stream", "maxlen", "approximate", "value_field", "key"}, redisConnKeys...)...)
	return c
}

func (c *redisSinkConfig) bytes() bool        { return true }
func (c *redisSinkConfig) messageKey() string { return c.key }
func (c *redisSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	return redisstream.NewSink(cfg)
}
func (c *redisSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}
