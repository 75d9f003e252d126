package kafkatest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Server is a running listener over an open log.
type Server struct {
	// Addr is the host:port clients connect to.
	Addr string
	// Dir is the log's data directory.
	Dir string
	// Log is the open log (owned by Server).
	Log *logstore.Log
	// Kafka is the protocol server.
	Kafka *kafka.Server
	// Addrs are the addresses of Options.Listeners, by listener name.
	Addrs map[string]string

	opts  Options
	done  chan error
	extra int // listeners besides Addr
}

// Options tune Start. The zero value is a server with kafka.DefaultConfig
// (auto-created topics of one partition) and the log's default fsync policy.
type Options struct {
	// Dir is the data directory; empty means t.TempDir().
	Dir string
	// Config is the listener configuration; Addr is ignored (127.0.0.1:0).
	Config *kafka.Config
	// Fsync is the log's default fsync policy; the zero value is the log's
	// default (always).
	Fsync logstore.FsyncPolicy
	// Logger receives server logs; nil discards them.
	Logger *slog.Logger
	// Listeners are served besides the PLAINTEXT one at Addr, each on
	// 127.0.0.1:0 (their Addr is ignored); Server.Addrs has their
	// addresses by name.
	Listeners []kafka.Listener
	// Cleaner configures the log cleaner; a negative Interval stops the
	// background cleaner, so that a test runs passes itself
	// (Partition.Compact) at the times it chooses.
	Cleaner logstore.CleanerOptions
	// FS is the log's file system (nil: the operating system's), for
	// tests that inject faults or hold an fdatasync.
	FS logstore.FS
}

// Start opens a log and serves it on 127.0.0.1:0. Everything is closed by
// t.Cleanup (or earlier by Close).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := StartE(o, t.TempDir)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// StartE is Start without a testing.TB: tempDir supplies a directory when
// o.Dir is empty. The caller must Close the server.
func StartE(o Options, tempDir func() string) (*Server, error) {
	if o.Dir == "" {
		o.Dir = tempDir()
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg := kafka.DefaultConfig()
	if o.Config != nil {
		cfg = *o.Config
	}
	cfg.Addr = "127.0.0.1:0"
	l, err := logstore.Open(logstore.Options{Dir: o.Dir, DefaultFsync: o.Fsync, DefaultPartitions: cfg.DefaultPartitions, Logger: logger, Cleaner: o.Cleaner, FS: o.FS})
	if err != nil {
		return nil, err
	}
	ks, err := kafka.New(l, cfg, logger)
	if err != nil {
		l.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		return nil, err
	}
	o.Config = &cfg
	s := &Server{Addr: ln.Addr().String(), Dir: o.Dir, Log: l, Kafka: ks, opts: o, done: make(chan error, 1+len(o.Listeners)), Addrs: map[string]string{}}
	go func() { s.done <- ks.Serve(context.Background(), ln) }()
	for _, lis := range o.Listeners {
		xl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			s.Close()
			return nil, err
		}
		lis.Addr = xl.Addr().String()
		s.Addrs[lis.Name] = lis.Addr
		s.extra++
		go func() { s.done <- ks.ServeListener(context.Background(), xl, lis) }()
	}
	return s, nil
}

// Close stops the listener and closes the log. It is idempotent.
func (s *Server) Close() error {
	if s.Kafka == nil {
		return nil
	}
	s.Kafka.Close()
	var err error
	for range 1 + s.extra {
		if e := <-s.done; err == nil && !errors.Is(e, kafka.ErrServerClosed) {
			err = e
		}
	}
	if cerr := s.Log.Close(); err == nil {
		err = cerr
	}
	s.Kafka = nil
	return err
}

// Restart closes the server and starts a new one on the same directory
// with the same options (on a new port).
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("kafkatest: closing before restart: %v", err)
	}
	return Start(t, s.opts)
}

// Client returns a franz-go client for the server, closed by t.Cleanup. It
// allows topic auto-creation (franz-go does not by default); opts come after
// and may override.
func (s *Server) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}
