package nexmarksql

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/nexmark/queries"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/ast"
	"github.com/sluicehq/sluice/sql/expr"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/state/pebble"
	"github.com/sluicehq/sluice/stream"
)

//go:embed queries/*.sql
var files embed.FS

// Queries returns the names of the queries of the reference repository
// that Sluice runs from SQL: q0 ... q22 without q6 (not supported by
// Flink either), q9, q10 and q13 (a filesystem sink partitioned by
// date, a side-input file) where noted by Supported.
func Queries() []string {
	ents, _ := files.ReadDir("queries")
	var out []string
	for _, e := range ents {
		n := strings.TrimSuffix(e.Name(), ".sql")
		if strings.HasPrefix(n, "q") {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i][1:])
		b, _ := strconv.Atoi(out[j][1:])
		return a < b
	})
	return out
}

// Text returns the reference SQL of a query (or of ddl_gen, ddl_views).
func Text(name string) (string, error) {
	b, err := files.ReadFile("queries/" + name + ".sql")
	if err != nil {
		return "", fmt.Errorf("nexmark SQL: no query %s (have %s)", name, strings.Join(Queries(), ", "))
	}
	return string(b), nil
}

// Config is one run.
type Config struct {
	Query string
	// Events to generate; ignored with SourceFile.
	Events int64
	// Generator parameters; nil means nexmark.DefaultConfig().
	Generator *nexmark.Config
	// SourceFile reads events from a JSON file written by `sluice
	// nexmark generate` through the 'filesystem' connector.
	SourceFile  string
	Parallelism int
	// CheckpointInterval and CheckpointDir enable exactly-once
	// checkpoints (SET 'execution.checkpointing.interval', ...).
	CheckpointInterval time.Duration
	CheckpointDir      string
	// StateBackend: "", "memory" or "pebble".
	StateBackend string
	// StreamOptions are passed to the job (tests: small batches, a
	// restart policy).
	StreamOptions []stream.Option
	// Pebble holds the Pebble backends' cache and memtable settings
	// (sql.Options.Pebble); zero values keep the defaults.
	Pebble pebble.Options
	// Settings are extra SET statements.
	Settings map[string]string
	// SideInputFile is q13's side_input table (CSV lines "key,value");
	// Run writes the reference's (10,000 rows "i,i") to a temporary file
	// when it is empty.
	SideInputFile string

	// Test hooks: fail the job once after a checkpoint committed; sum a
	// column of the result rows.
	failAfterCheckpoint *atomic.Bool
	countColumn         string
	count               *atomic.Int64
}

// Script returns the statements a run executes: the reference's DDL,
// views and query, parsed, with the datagen table's WITH options set
// for cfg and every result table's WITH options set to sink.
func Script(cfg Config, sink string) ([]ast.Statement, error) {
	var stmts []ast.Statement
	gen := nexmark.DefaultConfig()
	if cfg.Generator != nil {
		gen = *cfg.Generator
	}
	for _, name := range []string{"ddl_gen", "ddl_views", cfg.Query} {
		text, err := Text(name)
		if err != nil {
			return nil, err
		}
		text = strings.ReplaceAll(text, "${NEXMARK_TABLE}", "datagen")
		// The placeholders of ddl_gen's WITH clause are replaced below
		// with the options themselves.
		for _, ph := range []string{"${TPS}", "${EVENTS_NUM}", "${PERSON_PROPORTION}", "${AUCTION_PROPORTION}", "${BID_PROPORTION}"} {
			text = strings.ReplaceAll(text, ph, "0")
		}
		script, err := parser.ParseScript(text)
		if err != nil {
			return nil, fmt.Errorf("%s.sql: %w", name, err)
		}
		for _, st := range script.Statements {
			if ct, ok := st.(*ast.CreateTable); ok {
				switch name := ct.Name[len(ct.Name)-1].Name; {
				case strings.EqualFold(name, "datagen"):
					ct.Options = sourceOptions(cfg, gen)
				case strings.EqualFold(name, "side_input"):
					ct.Options = []ast.Option{{Key: "connector", Value: "filesystem"}, {Key: "path", Value: cfg.SideInputFile}, {Key: "format", Value: "csv"}}
				default:
					ct.Options = []ast.Option{{Key: "connector", Value: sink}}
				}
			}
			stmts = append(stmts, st)
		}
	}
	return stmts, nil
}

func sourceOptions(cfg Config, gen nexmark.Config) []ast.Option {
	if cfg.SourceFile != "" {
		return []ast.Option{{Key: "connector", Value: "filesystem"}, {Key: "path", Value: cfg.SourceFile}, {Key: "format", Value: "json"}}
	}
	o := []ast.Option{
		{Key: "connector", Value: "nexmark"},
		{Key: "events.num", Value: strconv.FormatInt(cfg.Events, 10)},
		{Key: "first-event.rate", Value: strconv.FormatInt(gen.EventRate, 10)},
		{Key: "next-event.rate", Value: strconv.FormatInt(gen.EventRate, 10)},
		{Key: "person.proportion", Value: strconv.Itoa(gen.PersonProportion)},
		{Key: "auction.proportion", Value: strconv.Itoa(gen.AuctionProportion)},
		{Key: "bid.proportion", Value: strconv.Itoa(gen.BidProportion)},
	}
	if gen.BaseTime != nexmark.DefaultBaseTime {
		o = append(o, ast.Option{Key: "base-time", Value: strconv.FormatInt(gen.BaseTime, 10)})
	}
	return o
}

// WriteSideInput writes the reference's side input for q13: n CSV lines
// "i,i".
func WriteSideInput(path string, n int) error {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d,%d\n", i, i)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// CountChar is the reference's count_char UDF (q14), in Go: how many
// times a character occurs in a string.
var CountChar = expr.ScalarFunc{
	Name:          "count_char",
	Deterministic: true,
	Check: func(args []types.Type) (types.Type, error) {
		if len(args) != 2 || !args[0].IsString() && args[0].Kind != types.Null || !args[1].IsString() && args[1].Kind != types.Null {
			return types.Type{}, fmt.Errorf("count_char(VARCHAR, VARCHAR) takes a string and a one-character string")
		}
		return types.TBigInt.WithNull(true), nil
	},
	Eval: func(args []row.Value) row.Value {
		if args[0].IsNull() || args[1].IsNull() || len(args[1].AsString()) == 0 {
			return row.Int(0)
		}
		s, c := args[0].AsString(), args[1].AsString()[0]
		n := int64(0)
		for i := 0; i < len(s); i++ {
			if s[i] == c {
				n++
			}
		}
		return row.Int(n)
	},
}

// CountCharClass is the Java class the reference's q14 names in CREATE
// FUNCTION; Sluice binds it to CountChar.
const CountCharClass = "com.github.nexmark.flink.udf.CountChar"

// Run executes one query and reports it as the hand-written runner
// does: events, wall and CPU seconds, result rows and checksum.
func Run(ctx context.Context, cfg Config) (queries.Result, error) {
	if cfg.Query == "" {
		return queries.Result{}, fmt.Errorf("nexmark SQL: no query given (one of %s)", strings.Join(Queries(), ", "))
	}
	if cfg.Query == "q13" && cfg.SideInputFile == "" {
		dir, err := os.MkdirTemp("", "nexmark-side-input-")
		if err != nil {
			return queries.Result{}, err
		}
		defer os.RemoveAll(dir)
		cfg.SideInputFile = filepath.Join(dir, "side_input.txt")
		if err := WriteSideInput(cfg.SideInputFile, 10_000); err != nil {
			return queries.Result{}, err
		}
	}
	stmts, err := Script(cfg, "nexmark-fingerprint")
	if err != nil {
		return queries.Result{}, err
	}
	fp := &fingerprints{transactional: cfg.CheckpointInterval > 0, failOnce: cfg.failAfterCheckpoint,
		countColumn: cfg.countColumn, count: cfg.count}
	sess := sql.NewSession(sql.Options{StreamOptions: cfg.StreamOptions, Pebble: cfg.Pebble})
	if err := sess.RegisterFunction(CountChar, CountCharClass); err != nil {
		return queries.Result{}, err
	}
	sess.RegisterSink("nexmark-fingerprint", fp.connector())
	// The reference's configuration (conf/config.yaml): mini-batch
	// aggregation with a 2 s latency bound.
	set := map[string]string{
		"table.exec.mini-batch.enabled":       "true",
		"table.exec.mini-batch.allow-latency": "2 s",
	}
	if cfg.Parallelism > 0 {
		set["parallelism.default"] = strconv.Itoa(cfg.Parallelism)
	}
	if cfg.CheckpointInterval > 0 {
		if cfg.CheckpointDir == "" {
			return queries.Result{}, fmt.Errorf("nexmark SQL: a checkpoint interval needs a checkpoint directory")
		}
		set["execution.checkpointing.interval"] = fmt.Sprintf("%d ms", cfg.CheckpointInterval.Milliseconds())
		set["state.checkpoints.dir"] = cfg.CheckpointDir
	}
	if cfg.StateBackend == "pebble" {
		set["state.backend"] = "pebble"
		if cfg.CheckpointDir == "" {
			return queries.Result{}, fmt.Errorf("nexmark SQL: the pebble state backend needs a checkpoint directory for its working files")
		}
	}
	for k, v := range cfg.Settings {
		set[k] = v
	}
	for k, v := range set {
		if err := sess.Set(k, v); err != nil {
			return queries.Result{}, err
		}
	}
	events := cfg.Events
	cpu0, use0, start := queries.CPUSeconds(), queries.MeasureUsage(), time.Now()
	for _, st := range stmts {
		if err := sess.Execute(ctx, st); err != nil {
			return queries.Result{}, fmt.Errorf("nexmark %s: %w", cfg.Query, err)
		}
	}
	wall := time.Since(start).Seconds()
	cpu, use1 := queries.CPUSeconds()-cpu0, queries.MeasureUsage()
	f := fp.total()
	r := queries.Result{Query: cfg.Query, Events: events, WallSeconds: wall, CPUSeconds: cpu, Results: f.Rows, Checksum: f.String()}
	r.SetUsage(use0, use1)
	if wall > 0 {
		r.EventsPerSecond = float64(events) / wall
	}
	if cpu > 0 {
		r.EventsPerCoreSecond = float64(events) / cpu
	}
	return r, nil
}
