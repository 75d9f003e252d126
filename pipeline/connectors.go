package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/connector/file"
	"github.com/sluicehq/sluice/connector/generate"
	"github.com/sluicehq/sluice/connector/stdout"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// Host is what a running pipeline gets from the program that runs it.
type Host struct {
	// DataDir is the local data directory; relative connector paths stay
	// relative to the working directory.
	DataDir string
	// Stdout receives the stdout sink's lines; nil means os.Stdout.
	Stdout io.Writer
	// Log is the embedded log used by `log:` sources and sinks; nil makes
	// them fail when the job starts. OpenLog, if set, is called instead
	// the first time a log connector needs it.
	Log     *logstore.Log
	OpenLog func() (*logstore.Log, error)
	// ProducerIDs is the producer-id allocator of Log, used by `log:`
	// sinks under exactly_once (they write in the log's transactions).
	// Open it once per Log (share it with a Kafka listener on the same
	// log); nil opens it from Log the first time a sink needs it.
	ProducerIDs *logstore.ProducerIDs
	// Logger gets warnings (dead letters under tolerance all without a
	// dead-letter sink, ...); nil means slog.Default().
	Logger *slog.Logger
	// OnSourceOpen, if set, is called with every source connector the job
	// opens, named by its place in the spec ("source", "steps[2].join.input"),
	// before the job starts: to print an HTTP source's address, say.
	OnSourceOpen func(field string, src stream.Source[connector.Message])
	// KafkaDefaults, if set, is how every kafka source and sink (dead
	// letters and join inputs included) that sets none of
	// security_protocol, sasl and tls connects: `sluice run --principal`.
	// A connector that sets any of them uses only its own settings, so
	// the run's credentials never go to a cluster a connector configured
	// itself.
	KafkaDefaults *KafkaSecurity
	// Registry, if set, is the schema registry of the embedded log: the
	// registry of avro `log:` sources and sinks whose spec names none
	// (`sluice run` sets Sluice's own, kept in the log's _schemas topic as
	// `sluice serve` keeps it), and the Confluent wire format becomes
	// their default framing. Kafka sources and sinks never use it: their
	// topics' schema ids belong to their cluster's registry, which the
	// spec must name.
	Registry *sr.Client

	// authMu guards authStores: the embedded log's tokens and ACLs, opened
	// by the first http source with auth: principals.
	authMu     sync.Mutex
	authStores *ingestAuth
}

func (h *Host) logger() *slog.Logger {
	if h == nil || h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

func (h *Host) log() (*logstore.Log, error) {
	if h.Log != nil {
		return h.Log, nil
	}
	if h.OpenLog != nil {
		l, err := h.OpenLog()
		if err != nil {
			return nil, fmt.Errorf("embedded log: %w", err)
		}
		h.Log = l
		return l, nil
	}
	return nil, errors.New("no embedded log: run with a data directory")
}

func (h *Host) producerIDs() (*logstore.ProducerIDs, error) {
	if h.ProducerIDs != nil {
		return h.ProducerIDs, nil
	}
	l, err := h.log()
	if err != nil {
		return nil, err
	}
	ids, err := logstore.OpenProducerIDs(context.Background(), l)
	if err != nil {
		return nil, fmt.Errorf("embedded log: producer ids: %w", err)
	}
	h.ProducerIDs = ids
	return ids, nil
}

// buildCtx is what opening connectors needs.
type buildCtx struct {
	host     *Host
	pipeline string // the spec's name
	delivery string
	// exactlyOnce: checkpointing is on with exactly-once delivery; sinks
	// that can stage output run two-phase.
	exactlyOnce bool
	// checkpointInterval is the spec's checkpoint interval (0 without
	// checkpoints).
	checkpointInterval time.Duration
	dl                 *deadLetters
}

// sourceConfig is a parsed source connector block.
type sourceConfig interface {
	open(bc *buildCtx) (stream.Source[connector.Message], error)
}

// sinkConfig is a parsed sink connector block. A byte sink consumes
// encoded messages; a row sink (postgres, parquet) consumes rows of a
// schema.
type sinkConfig interface {
	bytes() bool
	// messageKey names the field whose value becomes each message's key
	// (byte sinks with keys: log, kafka), or "".
	messageKey() string
	openBytes(bc *buildCtx) (stream.Sink[connector.Message], error)
	openRows(bc *buildCtx, s *row.Schema) (stream.Sink[row.Row], error)
}

type sourceParser func(e *errs, o *obj) sourceConfig
type sinkParser func(e *errs, o *obj) sinkConfig

// The connector tables. An entry with a nil parser is a connector the
// spec knows but this build does not provide yet.
var (
	sourceTable = map[string]sourceParser{
		"file":     parseFileSource,
		"generate": parseGenerate,
		"log":      parseLogSource,
		"kafka":    parseKafkaSource,
		"http":     parseHTTPSource,
		// change data capture
		"postgres_cdc": parsePostgresCDC,
		"mysql_cdc":    parseMySQLCDC,
		"mqtt":         parseMQTTSource,
		"nats":         parseNATSSource,
		"rabbitmq":     parseRabbitSource,
		"redis":        parseRedisSource,
	}
	sinkTable = map[string]sinkParser{
		"file":     parseFileSink,
		"stdout":   parseStdout,
		"log":      parseLogSink,
		"kafka":    parseKafkaSink,
		"postgres": parsePostgres,
		"parquet":  parseParquet,
		"mqtt":     parseMQTTSink,
		"nats":     parseNATSSink,
		"rabbitmq": parseRabbitSink,
		"redis":    parseRedisSink,
	}
)

func sourceConnectors() []string { return sortedKeys(sourceTable) }
func sinkConnectors() []string   { return sortedKeys(sinkTable) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func parseSourceConnector(e *errs, name string, o *obj) sourceConfig {
	p := sourceTable[name]
	c := o.object(name, name+" source settings")
	if p == nil {
		e.at(o.knod[name], o.sub(name), "connector %s is not available yet in this build of sluice (available sources: %s)", name, strings.Join(available(sourceTable), ", "))
		markAll(c)
		return nil
	}
	if c == nil {
		return nil
	}
	return p(e, c)
}

func parseSinkConnector(e *errs, name string, o *obj) sinkConfig {
	p := sinkTable[name]
	if p == nil {
		e.at(o.knod[name], o.sub(name), "connector %s is not available yet in this build of sluice (available sinks: %s)", name, strings.Join(available(sinkTable), ", "))
		markAll(o.object(name, ""))
		return nil
	}
	v := o.get(name)
	if v != nil && v.Kind == 0 {
		return nil
	}
	c := o.object(name, name+" sink settings")
	if c == nil {
		return nil
	}
	return p(e, c)
}

func markAll(o *obj) {
	if o == nil {
		return
	}
	for _, k := range o.keys {
		o.used[k] = true
	}
}

// available lists the connectors of a table that this build provides.
func available[P sourceParser | sinkParser](m map[string]P) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		if m[k] != nil {
			out = append(out, k)
		}
	}
	return out
}

// --- file ---

type fileSourceConfig struct{ cfg file.SourceConfig }

func parseFileSource(e *errs, o *obj) sourceConfig {
	c := &fileSourceConfig{}
	c.cfg.Path = o.reqStr("path", "a file, or a directory whose files are read in name order")
	c.cfg.Follow = o.boolean("follow", false)
	c.cfg.PollInterval = o.duration("poll_interval", 0, false)
	o.done("path", "follow", "poll_interval")
	return c
}

func (c *fileSourceConfig) open(bc *buildCtx) (stream.Source[connector.Message], error) {
	cfg := c.cfg
	cfg.Logger = bc.host.logger()
	return file.NewSource(cfg)
}

type fileSinkConfig struct{ cfg file.SinkConfig }

func parseFileSink(e *errs, o *obj) sinkConfig {
	c := &fileSinkConfig{}
	c.cfg.Path = o.reqStr("path", "the directory that receives the part files")
	c.cfg.Prefix = o.str("prefix", "")
	c.cfg.RollBytes = o.integer("roll_bytes", 0, 1, 1<<40)
	c.cfg.RollInterval = o.duration("roll_interval", 0, false)
	if strings.ContainsAny(c.cfg.Prefix, `/\`) {
		e.at(o.get("prefix"), o.sub("prefix"), "must not contain path separators")
	}
	o.done("path", "prefix", "roll_bytes", "roll_interval")
	return c
}

func (c *fileSinkConfig) bytes() bool        { return true }
func (c *fileSinkConfig) messageKey() string { return "" }
func (c *fileSinkConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	cfg := c.cfg
	cfg.TwoPhase = bc.exactlyOnce
	return file.NewSink(cfg)
}
func (c *fileSinkConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}

var errNotRowSink = errors.New("not a row sink")

// --- stdout ---

type stdoutConfig struct{}

func parseStdout(e *errs, o *obj) sinkConfig {
	o.done()
	return stdoutConfig{}
}

func (stdoutConfig) bytes() bool        { return true }
func (stdoutConfig) messageKey() string { return "" }
func (stdoutConfig) openBytes(bc *buildCtx) (stream.Sink[connector.Message], error) {
	var w io.Writer = os.Stdout
	if bc.host != nil && bc.host.Stdout != nil {
		w = bc.host.Stdout
	}
	return stdout.New(w), nil
}
func (stdoutConfig) openRows(*buildCtx, *row.Schema) (stream.Sink[row.Row], error) {
	return nil, errNotRowSink
}

// --- generate ---

type generateConfig struct{ cfg generate.Config }

func parseGenerate(e *errs, o *obj) sourceConfig {
	c := &generateConfig{}
	c.cfg.Preset = o.enum("preset", generate.Sequence, generate.Clickstream, generate.Orders, generate.Sequence)
	c.cfg.Count = o.integer("count", 0, 0, 1<<62)
	c.cfg.Rate = o.number("rate", 0, 0, 1e9)
	c.cfg.Splits = int(o.integer("splits", 0, 0, 1024))
	c.cfg.Seed = uint64(o.integer("seed", 0, 0, 1<<62))
	c.cfg.Users = int(o.integer("users", 0, 0, 1<<31))
	if s := o.str("start", ""); s != "" {
		ms, err := row.ParseMillis(s)
		if err != nil {
			e.at(o.get("start"), o.sub("start"), "must be an RFC 3339 time or epoch milliseconds, not %q", s)
		}
		c.cfg.Start, c.cfg.StartGiven = ms, true // start: 0 is the epoch, not the wall clock
	}
	c.cfg.Interval = o.duration("interval", 0, false)
	c.cfg.ActivePeriod = o.duration("active_period", 0, false)
	o.done("preset", "count", "rate", "splits", "seed", "users", "start", "interval", "active_period")
	return c
}

func (c *generateConfig) open(*buildCtx) (stream.Source[connector.Message], error) {
	return generate.New(c.cfg)
}

// sinkName is a readable name for a sink operator.
func sinkName(s SinkSpec, i int) string {
	return fmt.Sprintf("sink-%d-%s", i, s.Connector)
}
