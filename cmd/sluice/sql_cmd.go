package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/parser"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/web"
)

func sqlCommand() *command {
	return &command{
		name:    "sql",
		summary: "run Flink SQL: a script file, statements given with -e, or an interactive prompt",
		usage:   "[flags] [FILE.sql]",
		run:     runSQL,
	}
}

type settingFlags []string

func (s *settingFlags) String() string     { return strings.Join(*s, ",") }
func (s *settingFlags) Set(v string) error { *s = append(*s, v); return nil }

func runSQL(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice sql", "[flags] [FILE.sql]\n\nRuns every statement of FILE.sql in order (CREATE TABLE/VIEW/FUNCTION, SET, INSERT INTO ... SELECT, SELECT, EXPLAIN). An INSERT runs as a job until its sources end or you interrupt it. Without FILE and -e, reads statements from a terminal prompt (or from standard input when it is not a terminal). See docs/sql.md.")
	exprFlag := fs.String("e", "", "execute these statements instead of a file (e.g. \"SELECT 1\")")
	format := fs.String("format", "", "query results as: table (default) or json (JSON lines; updating results carry an \"op\" field: +I, -U, +U, -D)")
	dataDir := new(string)
	dataDirVar(c, fs, dataDir, "data directory of the embedded log (for 'connector' = 'sluice' tables)")
	parallelism := fs.Int("parallelism", 0, "default parallelism (SET 'parallelism.default')")
	var mf memoryFlag
	mf.register(c, fs)
	httpAddr := fs.String("http", "", "serve the dashboard and /metrics on this address while jobs run (e.g. 127.0.0.1:8080)")
	httpToken := fs.String("http-token", "", "bearer token required by the HTTP listener (required off loopback)")
	var sets settingFlags
	fs.Var(&sets, "set", "a setting KEY=VALUE, as SET 'KEY' = 'VALUE' (repeatable)")
	var lf logFlags
	lf.register(c, fs)
	// Job logs stay quiet unless asked for: results go to the same terminal.
	lf.level = envOr(c, "SLUICE_LOG_LEVEL", "warn")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 1 && *exprFlag != "" {
		return usagef("takes one SQL file, or -e STATEMENTS, not both")
	}
	switch *format {
	case "", "table", "json":
	default:
		return usagef("--format is table or json, not %q", *format)
	}
	logger, err := lf.logger(c.stderr)
	if err != nil {
		return err
	}
	var src string
	interactive := false
	switch {
	case *exprFlag != "":
		src = *exprFlag
	case len(pos) == 1:
		b, err := os.ReadFile(pos[0])
		if err != nil {
			return fmt.Errorf("sql: %w", err)
		}
		src = string(b)
	default:
		if f, ok := c.stdin.(*os.File); ok && isTerminal(f) {
			interactive = true
		} else {
			b, err := io.ReadAll(c.stdin)
			if err != nil {
				return fmt.Errorf("sql: read standard input: %w", err)
			}
			src = string(b)
		}
	}
	if *format == "" {
		*format = "table"
	}
	mem, err := mf.setup()
	if err != nil {
		return err
	}
	defer mem.release()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), mem.collector())
	obs, err := newObserver(reg, logger)
	if err != nil {
		return err
	}
	var log *logstore.Log
	defer func() {
		if log != nil {
			if err := log.Close(); err != nil {
				logger.Error("closing the embedded log", "err", err)
			}
		}
	}()
	cenv := connect.Env{DataDir: *dataDir, Stdout: c.stdout, Stderr: c.stderr, Logger: logger}
	if needsLog(src) {
		l, err := logstore.Open(logstore.Options{Dir: *dataDir, Logger: logger, Registerer: reg})
		if err != nil {
			return fmt.Errorf("open data directory %s: %w", *dataDir, err)
		}
		log = l
		obs.SetLog(l)
		cenv.Log = l
	}
	jobs := 0
	sess := sql.NewSession(sql.Options{Out: c.stdout, Format: *format, Logger: logger, Connect: cenv,
		StreamOptions: mem.streamOptions(*parallelism), Pebble: mem.pebbleOptions(*parallelism),
		OnJob: func(name string, j *stream.Job, plan string) {
			jobs++
			id := observe.JobID(fmt.Sprintf("%s-%d", name, jobs))
			if unregister, err := obs.Register(id, j); err == nil {
				go func() { <-j.Done(); unregister() }()
			}
			logger.Info("job started", "name", name, "job", id)
		}})
	if *parallelism > 0 {
		if err := sess.Set("parallelism.default", fmt.Sprint(*parallelism)); err != nil {
			return usagef("%v", err)
		}
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--set takes KEY=VALUE, not %q", kv)
		}
		if err := sess.Set(strings.Trim(strings.TrimSpace(k), "'"), strings.Trim(strings.TrimSpace(v), "'")); err != nil {
			return usagef("%v", err)
		}
	}
	go obs.Run(ctx)
	if *httpAddr != "" {
		cfg := web.Config{Addr: *httpAddr, Token: *httpToken, Gatherer: reg, Observer: obs}
		if err := serveHTTP(ctx, cfg, logger, "dashboard and metrics", "/"); err != nil {
			return err
		}
	}
	if interactive {
		return sqlPrompt(ctx, c, sess)
	}
	err = sess.ExecuteScript(ctx, src)
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the normal way to stop an unbounded job
	}
	return err
}

// needsLog reports whether a script names the embedded log's connector.
func needsLog(src string) bool {
	l := strings.ToLower(src)
	return strings.Contains(l, "'sluice'") || strings.Contains(l, "'log'")
}

// sqlPrompt reads statements from a terminal: a statement ends with ';'.
// An interrupt stops the running statement and returns to the prompt;
// an interrupt at the prompt, EOF (Ctrl-D) or QUIT/EXIT ends the session.
func sqlPrompt(ctx context.Context, c *cli, sess *sql.Session) error {
	fmt.Fprintln(c.stdout, "Sluice SQL. End statements with ';'. QUIT; to leave. Ctrl-C stops a running query.")
	in := bufio.NewScanner(c.stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	var buf strings.Builder
	for {
		if buf.Len() == 0 {
			fmt.Fprint(c.stdout, "sluice> ")
		} else {
			fmt.Fprint(c.stdout, "     -> ")
		}
		if !in.Scan() {
			fmt.Fprintln(c.stdout)
			return in.Err()
		}
		line := in.Text()
		buf.WriteString(line)
		buf.WriteByte('\n')
		text := strings.TrimSpace(buf.String())
		if u := strings.ToUpper(strings.TrimSuffix(text, ";")); u == "QUIT" || u == "EXIT" {
			return nil
		}
		if !strings.HasSuffix(text, ";") {
			continue
		}
		buf.Reset()
		script, err := parser.ParseScript(text)
		if err != nil {
			fmt.Fprintln(c.stderr, "error:", err)
			continue
		}
		for _, st := range script.Statements {
			sctx, stop := signal.NotifyContext(ctx, os.Interrupt)
			err := sess.Execute(sctx, st)
			interrupted := sctx.Err() != nil && ctx.Err() == nil
			stop()
			if err != nil && !(interrupted && errors.Is(err, context.Canceled)) {
				fmt.Fprintln(c.stderr, "error:", err)
				break
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}
