package kbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/testcerts"
	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/logstore"
)

// ServerConfig describes an in-process Sluice server.
type ServerConfig struct {
	// DataDir is the log directory; "" = a temporary directory, removed
	// by Close.
	DataDir string
	// Fsync is the log's default fsync policy (zero: always).
	Fsync logstore.FsyncPolicy
	// Cleaner configures the log cleaner (zero: the log's defaults).
	Cleaner logstore.CleanerOptions
	// Security is the protocol of the server's one listener (default
	// PLAINTEXT). For TLS the server gets a throwaway CA and a certificate
	// for 127.0.0.1; for SASL it creates the user Security.User (default
	// "kbench", a random password unless Security.Password is given) with
	// both SCRAM credentials at the default iteration count.
	Security Security
}

// Server is Sluice's Kafka listener on a loopback port over its own log,
// in this process.
type Server struct {
	Addr string        // host:port of the listener
	Log  *logstore.Log // the server's log
	// Security is ServerConfig.Security completed with what clients need
	// to connect: TLS trusting the throwaway CA, the SASL user and
	// password. Its ClientOptions connect to Addr.
	Security Security
	stop     func()
}

// Close stops the listener, closes the log and removes a temporary data
// directory.
func (s *Server) Close() { s.stop() }

// StartServer opens a log and serves the Kafka protocol on it on a
// loopback port (an ephemeral one), as `sluice serve` runs it with its
// defaults, with one listener of cfg.Security's protocol.
func StartServer(cfg ServerConfig) (*Server, error) {
	sec := cfg.Security.withDefaults()
	if err := sec.validate(); err != nil {
		return nil, err
	}
	// tmp holds the TLS files and, without DataDir, the log.
	tmp, err := os.MkdirTemp("", "sluice-kbench-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dir := cfg.DataDir
	if dir == "" {
		dir = tmp
	}
	logger := slog.New(slog.DiscardHandler)
	l, err := logstore.Open(logstore.Options{Dir: dir, DefaultFsync: cfg.Fsync, Logger: logger, Cleaner: cfg.Cleaner})
	if err != nil {
		cleanup()
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		l.Close()
		cleanup()
		return nil, err
	}
	kcfg := kafka.DefaultConfig()
	lis := kafka.Listener{Name: sec.Protocol, Protocol: kafka.SecurityProtocol(sec.Protocol)}
	if lis.Protocol.TLS() {
		if err := setUpTLS(tmp, &kcfg, &sec); err != nil {
			return fail(err)
		}
	}
	if lis.Protocol.SASL() {
		if err := addUser(l, &sec); err != nil {
			return fail(err)
		}
	}
	s, err := kafka.New(l, kcfg, logger)
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return fail(err)
	}
	lis.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { s.ServeListener(context.Background(), ln, lis); close(done) }()
	return &Server{Addr: lis.Addr, Log: l, Security: sec, stop: func() {
		s.Close()
		<-done
		l.Close()
		cleanup()
	}}, nil
}

// setUpTLS writes a throwaway CA and server certificate into dir, gives
// the server their TLS configuration and sec a client one trusting the CA.
func setUpTLS(dir string, kcfg *kafka.Config, sec *Security) error {
	certs, err := testcerts.New(dir)
	if err != nil {
		return fmt.Errorf("kbench certificates: %w", err)
	}
	if kcfg.TLS, err = certs.ServerTLS(false); err != nil {
		return fmt.Errorf("kbench server TLS: %w", err)
	}
	if sec.TLS, err = certs.ClientTLS("", ""); err != nil {
		return fmt.Errorf("kbench client TLS: %w", err)
	}
	return nil
}

// addUser stores sec.User's SCRAM credentials in l (before the server
// opens its credential store).
func addUser(l *logstore.Log, sec *Security) error {
	if sec.User == "" {
		sec.User = "kbench"
	}
	if sec.Password == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		sec.Password = hex.EncodeToString(b)
	}
	st, err := auth.OpenStore(context.Background(), l)
	if err != nil {
		return err
	}
	for _, m := range auth.Mechanisms {
		c, err := auth.NewCredential(m, sec.Password, auth.DefaultIterations)
		if err != nil {
			return err
		}
		if err := st.Set(context.Background(), sec.User, c); err != nil {
			return fmt.Errorf("kbench user: %w", err)
		}
	}
	return nil
}
