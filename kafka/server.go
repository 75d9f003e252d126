package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/auth"
	"github.com/sluicehq/sluice/internal/netutil"
	"github.com/sluicehq/sluice/logstore"
)

// Server serves the Kafka wire protocol over a logstore.Log. It is safe for
// concurrent use; one Server may serve several listeners.
type Server struct {
	log    *logstore.Log
	cfg    Config
	logger *slog.Logger

	// offmu orders committed-offset writes against their deletion: an
	// OffsetCommit, and a committing transaction's offsets, hold it shared
	// from their checks (member, generation, topic) to their write;
	// DeleteGroups, OffsetDelete and DeleteTopics hold
	// it exclusively from their checks to their deletion, so each commit
	// lands wholly before or wholly after a deletion. Lock order: offmu,
	// then gmu, then the log's own locks (the log never calls back into the
	// server).
	offmu sync.RWMutex
	// gmu guards groups and cgroups (deterministic state machines without
	// locks). The topic list the consumer coordinator is given is read
	// under it, and DeleteGroups and OffsetDelete hold it across their
	// check and their offset deletion.
	gmu sync.Mutex
	// checked, set only by tests, is called by OffsetCommit, DeleteGroups,
	// OffsetDelete, a transactional Produce and the tick between their
	// checks (or their read of the topic list) and their writes, with the
	// operation's name.
	checked func(op string)
	groups  *groupCoordinator
	cgroups *consumerCoordinator
	txns    *txnCoordinator
	txnBE   *logTxnBackend
	metrics *metrics
	// fetchWaiting, set only by tests, is called when a Fetch starts to
	// long-poll.
	fetchWaiting func()
	// offsets is the log's consumer-offset store (opened by New).
	offsets *logstore.OffsetStore
	// creds holds the SASL users' SCRAM credentials (opened by New).
	creds   *auth.Store
	quotas  *quotaManager
	tenants *tenancy
	// acls holds the ACLs (opened by New); authz decides requests against
	// them, nil without Config.Authorizer.Enabled.
	acls         *auth.ACLStore
	authz        *auth.Authorizer
	authOK       atomic.Int64
	reauthOK     atomic.Int64
	principalsMu sync.Mutex
	principals   map[string]struct{}
	// sessions are the incremental fetch sessions (fetchsession.go).
	sessions *fetchSessions

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	tickStart sync.Once
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve and ListenAndServe after Close.
var ErrServerClosed = errors.New("kafka server closed")

// New returns a server for log. It validates cfg (see Config.Validate) and
// opens the log's consumer-offset store (logstore.OpenOffsetStore: the log
// must not have another one open) and loads the transaction coordinator's
// state from the internal topic __transaction_state, creating it if needed. The log stays owned by the
// caller: Close does not close it.
func New(log *logstore.Log, cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		log:       log,
		cfg:       cfg,
		logger:    logger.With("component", "kafka"),
		groups:    newGroupCoordinator(nil),
		sessions:  newFetchSessions(cfg.FetchSessionCacheSlots, cfg.FetchSessionIdleTimeout),
		cgroups:   newConsumerCoordinator(cfg.ConsumerHeartbeatInterval, cfg.ConsumerSessionTimeout, nil),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		cancel()
		return nil, err
	}
	s.metrics = m
	if s.cfg.ClusterID == "" {
		if s.cfg.ClusterID, err = loadClusterID(log.Dir()); err != nil {
			cancel()
			return nil, fmt.Errorf("kafka: %w", err)
		}
	}
	offsets, err := logstore.OpenOffsetStore(ctx, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: opening the consumer offset store: %w", err)
	}
	s.offsets = offsets
	// An empty consumer-protocol group with committed offsets is kept.
	s.cgroups.hasOffsets = func(group string) bool { return len(offsets.Fetch(group)) > 0 }
	// Offsets of topics deleted just before a crash, whose tombstones were
	// not written yet (deleteTopicOffsets), go now.
	if n, err := offsets.DeleteOffsetsOfMissingTopics(ctx, func(topic string) bool {
		_, err := log.Topic(topic)
		return !errors.Is(err, logstore.ErrUnknownTopic)
	}); err != nil {
		s.logger.Warn("deleting the committed offsets of deleted topics", "err", err)
	} else if n > 0 {
		s.logger.Info("deleted the committed offsets of deleted topics", "offsets", n)
	}
	be, err := newLogTxnBackend(ctx, log, offsets, s.logger)
	if err != nil {
		cancel()
		return nil, err
	}
	be.offmu = &s.offmu
	s.txnBE = be
	creds, err := auth.OpenStore(ctx, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: opening the credential store: %w", err)
	}
	s.creds = creds
	quotas, err := auth.OpenQuotas(ctx, log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: opening the client quotas: %w", err)
	}
	if s.quotas, err = newQuotaManager(quotas, cfg.Registerer); err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: quota metrics: %w", err)
	}
	tenants := cfg.Tenants
	if tenants == nil {
		if tenants, err = auth.OpenTenants(ctx, log); err != nil {
			cancel()
			return nil, fmt.Errorf("kafka: opening the tenants: %w", err)
		}
	}
	if s.tenants, err = newTenancy(tenants, log, s.logger, cfg.Registerer); err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: tenant metrics: %w", err)
	}
	if s.acls, err = auth.OpenACLStore(ctx, log); err != nil {
		cancel()
		return nil, fmt.Errorf("kafka: opening the ACL store: %w", err)
	}
	if cfg.Authorizer.Enabled {
		s.authz = auth.NewAuthorizer(s.acls, cfg.Authorizer.SuperUsers, cfg.Authorizer.AllowEveryoneIfNoACL).WithTenants(tenants)
		s.cgroups.authzVersion = s.authz.Version // regex subscriptions follow ACL changes
	}
	s.txns = newTxnCoordinator(be, cfg.MaxTransactionTimeout)
	if err := be.replay(s.txns); err != nil {
		cancel()
		return nil, err
	}
	if cfg.AllowUnauthenticated {
		if loop, _ := netutil.IsLoopback(cfg.Addr); !loop {
			s.logger.Warn("kafka listener accepts unauthenticated clients on a non-loopback address", "addr", cfg.Addr)
		}
	}
	return s, nil
}

// ListenAndServe opens every configured listener (Config.Listeners, or
// one PLAINTEXT listener on Config.Addr) and serves them until ctx is done
// or Close is called. It returns ErrServerClosed then, or the first
// listener's failure (the others are closed too).
func (s *Server) ListenAndServe(ctx context.Context) error {
	serve, err := s.Listen()
	if err != nil {
		return err
	}
	return serve(ctx)
}

// Listen binds every listener now (so that a caller can say the server is
// up only once it is) and returns the function that serves them, as
// ListenAndServe does.
func (s *Server) Listen() (serve func(ctx context.Context) error, err error) {
	lists := s.cfg.listeners()
	lns := make([]net.Listener, 0, len(lists))
	for _, l := range lists {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			for _, o := range lns {
				o.Close()
			}
			return nil, fmt.Errorf("kafka listener %s: %w", l, err)
		}
		s.logger.Info("kafka listener started", "listener", l.Name, "protocol", string(l.Protocol), "addr", ln.Addr().String())
		lns = append(lns, ln)
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errs := make(chan error, len(lns))
		for i, ln := range lns {
			go func() { errs <- s.ServeListener(ctx, ln, lists[i]) }()
		}
		first := <-errs
		cancel()
		for range lns[1:] {
			<-errs
		}
		return first
	}, nil
}

// Serve serves ln as a PLAINTEXT listener (see ServeListener).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.ServeListener(ctx, ln, Listener{Name: "PLAINTEXT", Protocol: Plaintext, Addr: ln.Addr().String(), Advertised: s.cfg.AdvertisedAddr})
}

// ServeListener accepts connections on ln and serves them with lis's
// security protocol (TLS with Config.TLS, SASL authentication first) until
// ctx is done or Close is called; it closes ln before returning. It
// returns ErrServerClosed after Close or when ctx ends, and the accept
// error otherwise.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener, lis Listener) error {
	if lis.Protocol.TLS() {
		if s.cfg.TLS == nil {
			ln.Close()
			return fmt.Errorf("kafka listener %s: %s needs Config.TLS", lis, lis.Protocol)
		}
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	// Under mu, as the connections' Add: Close, which sets closed under
	// mu before it waits, never waits concurrently with this Add.
	s.tickStart.Do(func() {
		s.wg.Add(1)
		go s.tickLoop()
	})
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.ctx.Err() != nil {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("kafka accept: %w", err)
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than stop serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("kafka accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			case <-s.ctx.Done():
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c, lis)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops every listener, closes every connection, stops the background
// coordinator ticks and waits for handlers to return. It does not close the
// log.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// tickLoop drives time in the coordinators: group session expiry and
// rebalance deadlines, transaction timeouts.
func (s *Server) tickLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.tickGroups(now)
			if err := s.txns.Tick(s.ctx, now); err != nil && s.ctx.Err() == nil {
				s.logger.Warn("transaction coordinator tick", "err", err)
			}
		}
	}
}

// tickGroups ticks the group coordinators. The topic list is read under
// gmu: read before it, a tick could apply a list older than the one a
// heartbeat applied just before (and hand out a just-deleted topic's
// partitions until the next tick).
func (s *Server) tickGroups(now time.Time) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	var meta topicMeta
	if len(s.cgroups.groups) > 0 {
		meta = s.topicMeta()
	}
	s.hook("tick")
	s.groups.Tick(now)
	s.cgroups.Tick(now, meta)
}

// hook calls the test hook checked, if set.
func (s *Server) hook(op string) {
	if s.checked != nil {
		s.checked(op)
	}
}

// advertised returns the host and port clients of cc should connect to:
// its listener's advertised address, or the address it connected to.
func (s *Server) advertised(cc *clientConn) (string, int32) {
	addr := ""
	if cc.auth != nil {
		addr = cc.auth.lis.Advertised
	}
	if addr == "" && cc.local != nil {
		addr = cc.local.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "127.0.0.1", 9092
	}
	p, _ := strconv.Atoi(port)
	return host, int32(p)
}

// topicID is the id of the topic named name (logstore.TopicID: random,
// kept with the topic, new when a topic is created again under a deleted
// one's name), or the zero id if there is none.
func (s *Server) topicID(name string) [16]byte {
	t, err := s.log.Topic(name)
	if err != nil {
		return [16]byte{}
	}
	return t.ID()
}

// topicIDs returns the id of every topic, by name.
func (s *Server) topicIDs() map[string][16]byte {
	names := s.log.Topics()
	ids := make(map[string][16]byte, len(names))
	for _, n := range names {
		if t, err := s.log.Topic(n); err == nil {
			ids[n] = t.ID()
		}
	}
	return ids
}

// Offsets returns the consumer-offset store the server opened on its log,
// for other components of the same process (a log must have only one).
func (s *Server) Offsets() *logstore.OffsetStore { return s.offsets }
