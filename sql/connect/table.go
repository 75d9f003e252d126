package connect

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Column is a physical column of a table. A ROW column is flattened by the
// planner into one Column per leaf field, Path naming it from the top
// (["person", "id"]); a top-level column has a nil Path.
type Column struct {
	Name     string
	Type     types.Type
	Path     []string
	Metadata string // METADATA key, or ""
}

// path returns the column's path from the top: Path, or its name.
func (c Column) path() []string {
	if len(c.Path) > 0 {
		return c.Path
	}
	return []string{c.Name}
}

// SourceTable is a table read by a query.
type SourceTable struct {
	Name    string
	Columns []Column
	Options Options
	// PrimaryKey (column indexes) is the key of an 'upsert-kafka' table's
	// messages; other connectors ignore it.
	PrimaryKey []int
	// Reserve asks for this much spare capacity after each row's values
	// (the planner appends computed columns in place). A hint: sources
	// that allocate rows in slabs honour it.
	Reserve int
}

// SinkTable is a table written by INSERT INTO.
type SinkTable struct {
	Name       string
	Columns    []Column
	Options    Options
	PrimaryKey []int // column indexes
	// Updating says the query feeding the sink produces updates (-U, +U,
	// -D rows).
	Updating bool
}

// Env is what connectors need from the running process.
type Env struct {
	// DataDir is the data directory; relative 'path' options resolve
	// against the working directory, not against it.
	DataDir string
	// Brokers are the bootstrap servers used when a Kafka table has no
	// 'properties.bootstrap.servers' (Sluice's own listener).
	Brokers []string
	// KafkaOptions are added to every Kafka client (TLS, SASL).
	KafkaOptions []kgo.Opt
	// Log is the embedded log for 'connector' = 'sluice' (or 'log');
	// ProducerIDs its producer-id allocator, for exactly-once sinks.
	Log         *logstore.Log
	ProducerIDs *logstore.ProducerIDs
	// Stdout receives the 'print' sink's lines (os.Stdout when nil);
	// Stderr those of 'standard-error' = 'true'.
	Stdout, Stderr io.Writer
	// ExactlyOnce makes sinks that can write transactionally do so
	// (the job checkpoints).
	ExactlyOnce bool
	Logger      *slog.Logger
}

// Info describes an opened source.
type Info struct {
	// Bounded: the source ends.
	Bounded bool
	// Splits is the number of splits, 0 when it follows the job's
	// parallelism.
	Splits int
	// Upsert: the rows are an upsert changelog by Key (+U upserts, -D
	// deletes with only the key columns set), to be normalised by the
	// planner if it needs -U rows.
	Upsert bool
	Key    []int
	// Description is a one-line description for EXPLAIN.
	Description string
}

// OpenSource opens table t for reading.
func OpenSource(t SourceTable, env Env) (stream.Source[exec.Change], Info, error) {
	if err := CheckOptions(t.Options, false); err != nil {
		return nil, Info{}, fmt.Errorf("table %s: %w", t.Name, err)
	}
	s, _, _ := spec(t.Options)
	var (
		src  stream.Source[exec.Change]
		info Info
		err  error
	)
	switch s.name {
	case "nexmark":
		src, info, err = openNexmark(t)
	case "filesystem":
		src, info, err = openFileSource(t)
	case "kafka", "upsert-kafka":
		src, info, err = openKafkaSource(t, env, s.name == "upsert-kafka")
	case "sluice":
		src, info, err = openLogSource(t, env)
	case "datagen":
		src, info, err = openDatagen(t)
	case "http":
		src, info, err = openHTTPSource(t, env)
	default:
		err = fmt.Errorf("connector '%s' has no source", s.name)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("table %s (connector '%s'): %w", t.Name, t.Options["connector"], err)
	}
	return src, info, nil
}

// OpenSink opens table t for writing.
func OpenSink(t SinkTable, env Env) (stream.Sink[exec.Change], error) {
	if err := CheckOptions(t.Options, true); err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	s, _, _ := spec(t.Options)
	if t.Updating && (s.updates == nil || !s.updates(t.Options, t.PrimaryKey)) {
		if s.updates != nil && len(t.PrimaryKey) == 0 {
			return nil, fmt.Errorf("sink %s (connector '%s') takes updates only by key but has no PRIMARY KEY: declare PRIMARY KEY (...) NOT ENFORCED on the columns the query groups by", t.Name, t.Options["connector"])
		}
		return nil, ErrAppendOnly(t.Name, t.Options, "")
	}
	for _, k := range t.PrimaryKey {
		if k < 0 || k >= len(t.Columns) {
			return nil, fmt.Errorf("table %s: primary key column %d out of range (%d columns)", t.Name, k, len(t.Columns))
		}
	}
	var (
		sink stream.Sink[exec.Change]
		err  error
	)
	switch s.name {
	case "filesystem":
		sink, err = openFileSink(t, env)
	case "kafka", "upsert-kafka":
		sink, err = openKafkaSink(t, env, s.name == "upsert-kafka")
	case "sluice":
		sink, err = openLogSink(t, env)
	case "print":
		sink, err = openPrint(t, env)
	case "blackhole":
		sink = &Blackhole{}
	case "postgres":
		sink, err = openPostgres(t, env)
	default:
		err = fmt.Errorf("connector '%s' has no sink", s.name)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s (connector '%s'): %w", t.Name, t.Options["connector"], err)
	}
	return sink, nil
}

func colNames(cols []Column) string {
	n := make([]string, len(cols))
	for i, c := range cols {
		n[i] = strings.Join(c.path(), ".")
	}
	return strings.Join(n, ", ")
}
