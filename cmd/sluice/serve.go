package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/web"
)

func serveCommand() *command {
	return &command{name: "serve", summary: "run the embedded log as a server (Kafka protocol, HTTP health, metrics and schema registry)", run: serveRun}
}

// logFlags configure the process logger.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(c *cli, fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&l.level, "log-level", envOr(c, "SLUICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SLUICE_LOG_LEVEL)")
	fs.StringVar(&l.format, "log-format", envOr(c, "SLUICE_LOG_FORMAT", "auto"), "log format: text, json, or auto (text on a terminal, json otherwise) (env SLUICE_LOG_FORMAT)")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level must be debug, info, warn or error, got %q", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := l.format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format must be text, json or auto, got %q", l.format)
}

func serveRun(ctx context.Context, c *cli, args []string) error {
	fs := flagSet(c, "sluice serve", "[--data-dir DIR] [--http-addr 127.0.0.1:8080] [--kafka-addr 127.0.0.1:9092] [--memory LIMIT] [--remote-storage s3://BUCKET/PREFIX [--remote-endpoint URL]]")
	dataDir := new(string)
	dataDirVar(c, fs, dataDir, "data directory of the embedded log")
	httpAddr := fs.String("http-addr", envOr(c, "SLUICE_HTTP_ADDR", "127.0.0.1:8080"), "HTTP address for /healthz, /readyz and /metrics (env SLUICE_HTTP_ADDR)")
	httpToken := fs.String("http-token", envOr(c, "SLUICE_HTTP_TOKEN", ""), "bearer token required by the HTTP endpoints; mandatory for a non-loopback --http-addr (env SLUICE_HTTP_TOKEN)")
	fsync := fs.String("fsync", envOr(c, "SLUICE_FSYNC", "always"), "default durability policy of topics: always (group commit), interval[:DURATION], never (env SLUICE_FSYNC)")
	retentionEvery := durationFlag(fs, "retention-check-interval", time.Minute, "how often retention deletes expired segments and segment.ms rolls segments")
	cleanup := fs.String("cleanup-policy", "delete", "default cleanup.policy of topics that set none: delete, compact or compact,delete")
	cleanerEvery := durationFlag(fs, "cleaner-interval", 15*time.Second, "how often the log cleaner looks for compacted partitions to clean (log.cleaner.backoff.ms)")
	cleanerBuf := byteSize(32 << 20)
	sizeVar(fs, &cleanerBuf, "cleaner-dedupe-buffer", "size of the cleaner's offset map, like 32MiB, 24 bytes per distinct key of a pass (log.cleaner.dedupe.buffer.size; with --memory at most an eighth of its heap part)")
	var mf memoryFlag
	mf.register(c, fs)
	pageCacheWindow := fs.String("page-cache-window", envOr(c, "SLUICE_PAGE_CACHE_WINDOW", "64MiB"), "how many of a partition's most recently synced bytes stay in the page cache, like 64MiB or 1GiB: older synced bytes (of the active segment, and sealed segments wholly behind the window) are dropped from it after each fdatasync, and the log cleaner drops what it reads and writes behind it, so that writes reuse freed pages (docs/benchmarks-kafka.md); consumers within it read from memory, older reads come from the disk; off: never drop, the kernel decides (env SLUICE_PAGE_CACHE_WINDOW)")
	segmentPrefill := fs.String("segment-prefill", envOr(c, "SLUICE_SEGMENT_PREFILL", "1MiB"), "how far ahead of the append position the active segment of an fsync-always partition is kept written with zeros and synced, like 1MiB, so that a commit's fdatasync overwrites allocated blocks instead of growing the file (no journal commit; docs/benchmarks.md, pre-written segment tails); topped up only after commits of at most 64 KiB; off: appends grow the file (env SLUICE_SEGMENT_PREFILL)")
	var cleanerIO byteRate
	rateVar(fs, &cleanerIO, "cleaner-io-bytes-per-second", "bound on what the cleaner reads plus writes per second, like 50MiB/s; 0 = unlimited (log.cleaner.io.max.bytes.per.second)")
	cleanerDuty := fs.Float64("cleaner-max-duty-cycle", 0.25, "share of wall time (so of one core) a cleaner pass may work while the log takes appends; it rests the remainder, leaving the CPU to producers; on an idle log it runs at full speed; 1 = no limit")
	registryDefault, envErr := strconv.ParseBool(envOr(c, "SLUICE_SCHEMA_REGISTRY", "true"))
	schemaRegistry := fs.Bool("schema-registry", registryDefault || envErr != nil, "serve the Confluent-compatible schema registry (/subjects, /schemas, /config, /mode, /compatibility) on the HTTP listener, kept in the topic _schemas (env SLUICE_SCHEMA_REGISTRY)")
	var rf remoteFlags
	rf.register(c, fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the server to this file until it stops (go tool pprof)")
	var lf logFlags
	lf.register(c, fs)
	kf := registerKafkaFlags(c, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if envErr != nil {
		return usagef("SLUICE_SCHEMA_REGISTRY must be true or false, got %q", envOr(c, "SLUICE_SCHEMA_REGISTRY", ""))
	}
	logger, err := lf.logger(c.stderr)
	if err != nil {
		return err
	}
	policy, err := logstore.ParseFsyncPolicy(*fsync)
	if err != nil {
		return usagef("--fsync: %v", err)
	}
	cleanupPolicy, err := logstore.ParseCleanupPolicy(*cleanup)
	if err != nil {
		return usagef("--cleanup-policy: %v", err)
	}
	if *retentionEvery <= 0 || *cleanerEvery <= 0 || cleanerBuf <= 0 {
		return usagef("--retention-check-interval, --cleaner-interval and --cleaner-dedupe-buffer must be positive, --cleaner-io-bytes-per-second not negative")
	}
	if *cleanerDuty <= 0 || *cleanerDuty > 1 {
		return usagef("--cleaner-max-duty-cycle must be in (0, 1], got %g", *cleanerDuty)
	}
	cacheWindow, err := parseSizeOrOff(*pageCacheWindow)
	if err != nil {
		return usagef("--page-cache-window: %v", err)
	}
	prefill, err := parseSizeOrOff(*segmentPrefill)
	if err != nil {
		return usagef("--segment-prefill: %v", err)
	}
	mem, err := mf.setup()
	if err != nil {
		return err
	}
	defer mem.release()
	if mem.plan != nil && !flagGiven(fs, "cleaner-dedupe-buffer") {
		cleanerBuf = min(cleanerBuf, byteSize(mem.plan.Heap/8))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), mem.collector())
	obs, err := newObserver(reg, logger)
	if err != nil {
		return err
	}
	httpTLS, err := kf.tlsConfig()
	if err != nil {
		return err
	}
	if httpTLS != nil {
		httpTLS = httpTLS.Clone()
		httpTLS.ClientAuth, httpTLS.ClientCAs = tls.NoClientCert, nil // HTTP authenticates with bearer tokens
	}
	l, err := logstore.Open(logstore.Options{
		Dir: *dataDir, DefaultFsync: policy, DefaultPartitions: kf.defaultPartitions(), Logger: logger, Registerer: reg,
		RetentionCheckInterval: *retentionEvery,
		DefaultCleanup:         cleanupPolicy,
		Cleaner:                logstore.CleanerOptions{Interval: *cleanerEvery, DedupeBufferBytes: int(cleanerBuf), IOBytesPerSecond: float64(cleanerIO), MaxDutyCycle: *cleanerDuty},
		PageCacheWindow:        cacheWindow,
		SegmentPrefill:         prefill,
	})
	if err != nil {
		return fmt.Errorf("open data directory %s: %w", *dataDir, err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			logger.Error("closing the log", "err", err)
		} else {
			logger.Info("log flushed and synced; bye")
		}
	}()
	stopTier, err := rf.start(ctx, l, logger, reg)
	if err != nil {
		return err
	}
	defer stopTier()
	tokens, err := auth.OpenTokens(ctx, l)
	if err != nil {
		return err
	}
	// One tenant registry for the Kafka listener and the HTTP admin API,
	// so that tenants and namespaces changed live apply at once.
	tenants, err := auth.OpenTenants(ctx, l)
	if err != nil {
		return err
	}
	kf.cfg.Tenants = tenants
	wcfg := web.Config{Addr: *httpAddr, Token: *httpToken, Gatherer: reg, Observer: obs, TLS: httpTLS, Authorize: kf.authorizeHTTP, Visible: kf.visibleHTTP,
		Tenants: tenants, SuperUser: kf.superUser}
	if *httpToken != "" || len(tokens.List()) > 0 {
		// Tokens tied to principals (sluice token create, or the token
		// admin API, which needs the --http-token or a super user's
		// token) authenticate the HTTP API too. Without either the
		// loopback-only listener asks for no token.
		wcfg.Tokens, wcfg.TokenAdmin = tokens, tokens
	}
	w, err := web.New(wcfg, logger)
	if err != nil {
		return usagef("%v (or create tokens with sluice token create)", err)
	}
	if *schemaRegistry {
		reg, err := schema.Open(ctx, l, logger)
		if err != nil {
			return err
		}
		schema.NewHandler(reg, logger).Mount(w.Mux)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	httpLn, err := w.Listen()
	if err != nil {
		return err
	}
	go func() { errc <- w.Serve(ctx, httpLn) }()
	obs.SetLog(l)
	stopKafka, err := kf.start(ctx, l, logger, reg, obs, errc)
	if err != nil {
		return err
	}
	defer stopKafka()
	go obs.Run(ctx)
	go func() {
		t := time.NewTicker(*retentionEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if err := l.EnforceRetention(now); err != nil {
					logger.Error("retention", "err", err)
				}
			}
		}
	}()
	logger.Info("sluice serving", "data_dir", *dataDir, "http", httpLn.Addr().String(), "version", version)
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		return nil
	case err := <-errc:
		if err == nil || errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
}

// parseSizeOrOff reads --page-cache-window and --segment-prefill: a size
// (memlimit.ParseSize units, at least one page), or off (also 0), which it
// returns as -1, the value logstore.Options.PageCacheWindow and
// SegmentPrefill read as off.
func parseSizeOrOff(v string) (int64, error) {
	if t := strings.TrimSpace(v); strings.EqualFold(t, "off") || t == "0" {
		return -1, nil
	}
	n, err := memlimit.ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("%q: want a size like 64MiB or 1GiB, or off", v)
	}
	if n < 4096 {
		return 0, fmt.Errorf("%q is less than a page (4KiB): give a larger size, or off", v)
	}
	return n, nil
}
