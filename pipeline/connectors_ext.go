package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/connector/kafka"
	"github.com/sluicehq/sluice/connector/logsrc"
	"github.com/sluicehq/sluice/connector/parquet"
	"github.com/sluicehq/sluice/connector/postgres"
	"github.com/sluicehq/sluice/internal/kcodec"
	"github.com/sluicehq/sluice/internal/netutil"
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
	cfg := c.cfg
	// Under exactly_once the sink writes inside the log's transactions,
	// pre-committed at each barrier and committed when the checkpoint
	// completes (two-phase); otherwise it appends at-least-once.
	if bc.exactlyOnce {
		ids, err := bc.host.producerIDs()
		if err != nil {
			return nil, err
		}
		cfg.Transactional, cfg.ProducerIDs = true, ids
		// Stable across runs of this pipeline, distinct from other
		// pipelines writing the topic (they would fence each other).
		cfg.TransactionalID = "sluice-pipeline-" + bc.pipeline + "-" + cfg.Topic
	}
	return logsrc.NewSink(l, cfg)
}
func (c *logSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}

type httpSourceConfig struct {
	cfg nethttp.Config
	// principals: bearer tokens tied to principals (auth: principals) are
	// accepted, checked for WRITE on aclTopic (the pipeline's name when
	// empty).
	principals bool
	aclTopic   string
}

func parseHTTPSource(e *errs, o *obj) sourceConfig {
	c := &httpSourceConfig{}
	c.cfg.Addr = o.str("addr", "")
	c.cfg.Path = o.str("path", "")
	c.cfg.Token = o.str("token", "")
	c.cfg.Rate = o.number("rate", 0, 0, 1e9)
	c.cfg.Burst = int(o.integer("burst", 0, 0, 1<<31))
	if o.has("burst") && c.cfg.Rate == 0 {
		e.at(o.get("burst"), o.sub("burst"), "is only used with rate: (the token bucket's records per second)")
	}
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
	frac := o.number("sample_fraction", -1, 0, 1) // -1: absent, or reported
	c.cfg.SampleFraction = max(frac, 0)
	switch {
	case c.cfg.Shedding == nethttp.Sample && !o.has("sample_fraction"):
		e.at(o.node, o.sub("sample_fraction"), "is required with shedding: sample (a fraction in (0, 1])")
	case c.cfg.Shedding == nethttp.Sample && frac == 0:
		e.at(o.get("sample_fraction"), o.sub("sample_fraction"), "is 0; allowed: a fraction in (0, 1] of each request's records kept")
	case c.cfg.Shedding != nethttp.Sample && o.has("sample_fraction"):
		e.at(o.get("sample_fraction"), o.sub("sample_fraction"), "is only used with shedding: sample")
	}
	c.cfg.BufferRecords = int(o.integer("buffer", 0, 0, 1<<30))
	c.cfg.MaxBodyBytes = o.integer("max_body_bytes", 0, 0, 1<<40)
	c.cfg.BlockTimeout = o.duration("block_timeout", 0, false)
	c.cfg.Splits = int(o.integer("splits", 0, 0, 1024))
	c.cfg.MaxRequests = int(o.integer("max_requests", 0, 0, 1<<20))
	c.principals = o.enum("auth", "token", "token", "principals") == "principals"
	c.aclTopic = o.str("acl_topic", "")
	if o.has("acl_topic") && !c.principals {
		e.at(o.get("acl_topic"), o.sub("acl_topic"), "needs auth: principals (the topic whose WRITE ACL lets a principal token in)")
	}
	o.done("auth", "acl_topic", "addr", "path", "token", "rate", "burst", "shedding", "sample_fraction", "buffer", "max_body_bytes", "block_timeout", "splits", "max_requests")
	if c.cfg.Addr != "" {
		if loop, err := netutil.IsLoopback(c.cfg.Addr); err != nil {
			e.at(o.get("addr"), o.sub("addr"), "%v", err)
		} else if !loop && c.cfg.Token == "" && !c.principals {
			e.at(o.get("addr"), o.sub("addr"), "is %q, not a loopback address: set token: or auth: principals (clients then send Authorization: Bearer TOKEN), or bind to 127.0.0.1", c.cfg.Addr)
		}
	}
	return c
}

func (c *httpSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	// With checkpoints a request is answered once a completed checkpoint
	// covers its records (the runtime calls the splits' CommitPosition
	// then), under at-least-once too: the source cannot replay, so an
	// answer given as the records are read would be a promise a crash
	// before the next checkpoint breaks. Without checkpoints, as they are
	// read.
	cfg.Delivery = nethttp.AtLeastOnce
	if bc.exactlyOnce || bc.checkpointInterval > 0 {
		cfg.Delivery = nethttp.ExactlyOnce
		// An answer waits for the barrier after its records and for that
		// checkpoint to complete: a few intervals, so that a long
		// interval does not turn every answer into a 503 (and a retry
		// into duplicates).
		cfg.AckTimeout = max(nethttp.DefaultAckTimeout, 4*bc.checkpointInterval)
	}
	if c.principals {
		a, err := bc.host.ingestAuth()
		if err != nil {
			return nil, fmt.Errorf("http source: %w", err)
		}
		topic := c.aclTopic
		if topic == "" {
			topic = bc.pipeline
		}
		cfg.Authorizer = &topicAuthorizer{a: a, topic: topic, now: time.Now}
	}
	return nethttp.NewSource(cfg)
}

// --- kafka ---

type kafkaSourceConfig struct {
	cfg kafka.SourceConfig
	// sec is the block's own security settings; nil: the run's defaults.
	sec *KafkaSecurity
}

func parseKafkaSource(e *errs, o *obj) sourceConfig {
	c := &kafkaSourceConfig{}
	c.cfg.Brokers = o.strList("brokers")
	if len(c.cfg.Brokers) == 0 && !e.cluster {
		e.at(o.node, o.sub("brokers"), "is required: the seed brokers, like [\"127.0.0.1:9092\"]")
	}
	c.cfg.Topic = o.reqStr("topic", "the topic to read")
	c.cfg.Group = o.str("group", "")
	start := o.enum("start", "earliest", "earliest", "latest", "offset")
	st, _ := kafka.ParseStart(start)
	c.cfg.Start = st
	c.cfg.Offset = o.integer("offset", 0, 0, 1<<62)
	if start == "offset" && !o.has("offset") {
		e.at(o.node, o.sub("offset"), "is required with start: offset")
	}
	c.cfg.Bounded = o.boolean("bounded", false)
	for _, p := range o.strList("partitions") {
		var n int32
		if _, err := fmt.Sscan(p, &n); err != nil || n < 0 {
			e.at(o.get("partitions"), o.sub("partitions"), "must be a list of partition numbers, not %q", p)
			continue
		}
		c.cfg.Partitions = append(c.cfg.Partitions, n)
	}
	c.sec = parseKafkaSecurity(e, o)
	o.done(append([]string{"brokers", "topic", "group", "start", "offset", "bounded", "partitions"}, kafkaSecurityKeys...)...)
	return c
}

// kafkaSecurityKeys are the security keys of a kafka block.
var kafkaSecurityKeys = []string{"security_protocol", "sasl", "tls"}

func (c *kafkaSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	opts, err := kafkaClientOptions(c.sec, bc)
	if err != nil {
		return nil, err
	}
	cfg.ClientOptions = append(opts, cfg.ClientOptions...)
	return kafka.NewSource(cfg)
}

type kafkaSinkConfig struct {
	cfg kafka.SinkConfig
	key string
	// sec is the block's own security settings; nil: the run's defaults.
	sec *KafkaSecurity
}

func parseKafkaSink(e *errs, o *obj) sinkConfig {
	c := &kafkaSinkConfig{}
	c.cfg.Brokers = o.strList("brokers")
	if len(c.cfg.Brokers) == 0 && !e.cluster {
		e.at(o.node, o.sub("brokers"), "is required: the seed brokers, like [\"127.0.0.1:9092\"]")
	}
	c.cfg.Topic = o.reqStr("topic", "the topic to write")
	c.key = o.str("key", "")
	c.cfg.TransactionalID = o.str("transactional_id", "")
	c.cfg.Linger = o.duration("linger", 0, false)
	c.cfg.Compression = o.enum("compression", "", kcodec.Names...)
	c.cfg.TransactionTimeout = o.duration("transaction_timeout", 0, true)
	c.sec = parseKafkaSecurity(e, o)
	o.done(append([]string{"brokers", "topic", "key", "transactional_id", "linger", "compression", "transaction_timeout"}, kafkaSecurityKeys...)...)
	return c
}

func (c *kafkaSinkConfig) bytes() bool        { return true }
func (c *kafkaSinkConfig) messageKey() string { return c.key }
func (c *kafkaSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	opts, err := kafkaClientOptions(c.sec, bc)
	if err != nil {
		return nil, err
	}
	cfg.ClientOptions = append(opts, cfg.ClientOptions...)
	// Under exactly_once the sink writes in Kafka transactions committed
	// when the checkpoint covering them completes (two-phase); otherwise
	// through an idempotent producer, at-least-once.
	cfg.Transactional = bc.exactlyOnce
	if cfg.Transactional {
		// A pre-committed transaction must outlive the checkpoint
		// interval plus the restart of a crashed job, whose recovery
		// commits it: the broker aborting it first loses its output.
		timeout, err := kafkaTxnTimeout(cfg.TransactionTimeout, bc.checkpointInterval)
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: %w", cfg.Topic, err)
		}
		cfg.TransactionTimeout = timeout
		if cfg.TransactionalID == "" {
			// Stable across runs of this pipeline, distinct from other
			// pipelines writing the topic (they would fence each other).
			cfg.TransactionalID = kafkaTxnID(bc.pipeline, cfg.Topic)
		}
	}
	return kafka.NewSink(cfg)
}

// kafkaTxnTimeout returns the Kafka transaction timeout of a sink whose
// spec sets set (0: not set) under a checkpoint interval: set, or the
// sink's default (15 minutes, the most brokers allow by default,
// transaction.max.timeout.ms), which leaves a crashed job minutes to come
// back. A transaction stays open from its first record to the end of the
// checkpoint after it, so a timeout not above the interval would abort
// every transaction: refused.
func kafkaTxnTimeout(set, interval time.Duration) (time.Duration, error) {
	timeout := set
	if timeout == 0 {
		timeout = kafka.DefaultTransactionTimeout
	}
	if interval > 0 && timeout <= interval {
		return 0, fmt.Errorf("transaction_timeout %v is not above the checkpoint interval %v: a transaction stays open from its first record until the checkpoint after it completes, so the broker would abort it; set transaction_timeout above the interval plus the time a checkpoint and a restart take (within the broker's transaction.max.timeout.ms)", timeout, interval)
	}
	return timeout, nil
}

// kafkaTxnID is the default transactional id prefix of a pipeline's Kafka
// sink.
func kafkaTxnID(pipeline, topic string) string { return "sluice-" + pipeline + "-" + topic }

func (c *kafkaSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}

// --- postgres ---

type postgresConfig struct{ cfg postgres.Config }

func parsePostgres(e *errs, o *obj) sinkConfig {
	c := &postgresConfig{}
	c.cfg.DSN = o.reqStr("dsn", "the connection string, like postgres://user:pass@127.0.0.1:5432/db")
	c.cfg.Table = o.reqStr("table", "the table to upsert into (created when missing)")
	c.cfg.Key = o.strList("key")
	c.cfg.BatchRows = int(o.integer("batch_rows", 0, 1, 1<<24))
	c.cfg.CheckpointTable = o.str("checkpoint_table", "")
	c.cfg.SinkID = o.str("sink_id", "")
	o.done("dsn", "table", "key", "batch_rows", "checkpoint_table", "sink_id")
	return c
}

func (c *postgresConfig) bytes() bool        { return false }
func (c *postgresConfig) messageKey() string { return "" }
func (c *postgresConfig) openBytes(*buildCtx) (stream.Sink[connector.Message], error) {
	return nil, errNotRowSink
}
func (c *postgresConfig) openRows(bc *buildCtx, s *row.Schema) (stream.Sink[row.Row], error) {
	for _, k := range c.cfg.Key {
		if _, ok := s.Index(k); !ok {
			return nil, fmt.Errorf("postgres: key field %q is not an output field (output fields: %s)", k, s)
		}
	}
	sk, err := postgres.NewSink(c.cfg, s)
	if err != nil {
		return nil, err
	}
	return &rejectingSink{inner: sk, schema: s, name: "postgres " + c.cfg.Table, dl: bc.dl, rejected: func(err error) ([]rejectedRow, bool) {
		var re *postgres.RejectError
		if !errors.As(err, &re) {
			return nil, false
		}
		out := make([]rejectedRow, len(re.Rejected))
		for i, r := range re.Rejected {
			out[i] = rejectedRow{row: r.Row, field: r.Field, err: r.Err}
		}
		return out, true
	}}, nil
}

// --- parquet ---

type parquetConfig struct{ cfg parquet.Config }

func parseParquet(e *errs, o *obj) sinkConfig {
	c := &parquetConfig{}
	c.cfg.Path = o.reqStr("path", "the directory of the .parquet part files")
	c.cfg.MaxRowsPerFile = int(o.integer("max_rows_per_file", 0, 1, 1<<40))
	o.done("path", "max_rows_per_file")
	return c
}

func (c *parquetConfig) bytes() bool        { return false }
func (c *parquetConfig) messageKey() string { return "" }
func (c *parquetConfig) openBytes(*buildCtx) (stream.Sink[connector.Message], error) {
	return nil, errNotRowSink
}
func (c *parquetConfig) openRows(bc *buildCtx, s *row.Schema) (stream.Sink[row.Row], error) {
	cfg := c.cfg
	// Under exactly_once, files become visible when the checkpoint that
	// covers them completes (two-phase). Otherwise they are published at
	// barriers, rolls and the end of input (at-least-once).
	cfg.CommitOnBarrier = true
	cfg.TwoPhase = bc.exactlyOnce
	sk, err := parquet.NewSink(cfg, s)
	if err != nil {
		return nil, err
	}
	return &rejectingSink{inner: sk, schema: s, name: "parquet " + c.cfg.Path, dl: bc.dl, rejected: func(err error) ([]rejectedRow, bool) {
		var re *parquet.RejectError
		if !errors.As(err, &re) {
			return nil, false
		}
		out := make([]rejectedRow, len(re.Rejected))
		for i, r := range re.Rejected {
			out[i] = rejectedRow{row: r.Row, field: r.Field, err: r.Err}
		}
		return out, true
	}}, nil
}
