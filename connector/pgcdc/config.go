package pgcdc

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Snapshot says whether a new pipeline reads the tables' current rows
// before their changes.
type Snapshot int

const (
	// SnapshotInitial reads every row (op "r") in a snapshot consistent
	// with the slot's start, then streams the changes (the default).
	SnapshotInitial Snapshot = iota
	// SnapshotNever only streams the changes from the slot's position.
	SnapshotNever
)

// ParseSnapshot parses "initial" (or "") and "never".
func ParseSnapshot(s string) (Snapshot, error) {
	switch s {
	case "", "initial":
		return SnapshotInitial, nil
	case "never":
		return SnapshotNever, nil
	}
	return 0, fmt.Errorf("snapshot %q: want initial or never", s)
}

// Defaults of Config.
const (
	DefaultChunkRows      = 10000
	DefaultStatusInterval = 10 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
)

// Config configures a Source.
type Config struct {
	// DSN is the connection string (postgres://user@host:5432/db); the
	// user needs the REPLICATION attribute (or superuser) and SELECT on
	// the tables, and CREATE on the database to create the publication.
	DSN string
	// Tables are schema-qualified tables ("public.orders"); a name
	// without a schema is in public. Each needs a primary key.
	Tables []string
	// Slot is the logical replication slot (created when missing);
	// Publication the publication of the tables (created when missing,
	// missing tables added).
	Slot        string
	Publication string
	Snapshot    Snapshot
	// ChunkRows is how many rows one snapshot query reads (ordered by
	// primary key); DefaultChunkRows when 0.
	ChunkRows int
	// StatusInterval is how often a standby status update (the
	// confirmed position, and a keep-alive) is sent;
	// DefaultStatusInterval when 0.
	StatusInterval time.Duration
	// MaxBackoff caps the wait between reconnection attempts (it starts
	// at 250ms and doubles); DefaultMaxBackoff when 0.
	MaxBackoff time.Duration
	// Logger gets reconnections and warnings; nil means slog.Default().
	Logger *slog.Logger
}

var identRe = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// tableName is a parsed schema.table.
type tableName struct{ schema, name string }

func (t tableName) String() string { return t.schema + "." + t.name }

// quoted is the name as an SQL identifier.
func (t tableName) quoted() string { return quoteIdent(t.schema) + "." + quoteIdent(t.name) }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func parseTable(s string) (tableName, error) {
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 1:
		parts = []string{"public", parts[0]}
	case 2:
	default:
		return tableName{}, fmt.Errorf("table %q: want schema.table", s)
	}
	for _, p := range parts {
		if !identRe.MatchString(p) {
			return tableName{}, fmt.Errorf("table %q: %q is not a plain lower-case identifier (letters, digits, _)", s, p)
		}
	}
	return tableName{parts[0], parts[1]}, nil
}

func (c *Config) validate() ([]tableName, error) {
	if c.DSN == "" {
		return nil, errors.New("postgres_cdc: dsn is required")
	}
	if len(c.Tables) == 0 {
		return nil, errors.New("postgres_cdc: tables is required: the tables to capture, like [public.orders]")
	}
	var out []tableName
	seen := map[tableName]bool{}
	for _, t := range c.Tables {
		tn, err := parseTable(t)
		if err != nil {
			return nil, fmt.Errorf("postgres_cdc: %w", err)
		}
		if seen[tn] {
			return nil, fmt.Errorf("postgres_cdc: table %s is listed twice", tn)
		}
		seen[tn] = true
		out = append(out, tn)
	}
	for what, v := range map[string]string{"slot": c.Slot, "publication": c.Publication} {
		if !identRe.MatchString(v) || len(v) > 63 {
			return nil, fmt.Errorf("postgres_cdc: %s %q must be a lower-case identifier of at most 63 letters, digits and _", what, v)
		}
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = DefaultChunkRows
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return out, nil
}

// Validate checks c as NewSource does.
func (c Config) Validate() error {
	_, err := c.validate()
	return err
}
