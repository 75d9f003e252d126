package http

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	nethttp "net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/internal/netutil"
	"github.com/sluicehq/sluice/stream"
)

// Policy is what the source does with records that the rate limit or the
// full buffer does not admit.
type Policy int

const (
	// Block holds the request until its records are admitted.
	Block Policy = iota
	// Reject answers 429 with Retry-After and accepts nothing of the request.
	Reject
	// DropOldest sheds the oldest records to keep the newest.
	DropOldest
	// Sample keeps a fraction (Config.SampleFraction) of a request that
	// does not fit, and sheds the rest.
	Sample
)

var policyNames = []string{"block", "reject", "drop_oldest", "sample"}

func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy parses block, reject, drop_oldest or sample.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("shedding %q: want block, reject, drop_oldest or sample", s)
}

// Delivery says when a request is answered.
type Delivery int

const (
	// AtLeastOnce answers once the request's records are in the pipeline.
	AtLeastOnce Delivery = iota
	// ExactlyOnce answers once a completed checkpoint covers them
	// (CommitPosition).
	ExactlyOnce
)

// Defaults of Config.
const (
	DefaultAddr          = "127.0.0.1:8090"
	DefaultPath          = "/ingest"
	DefaultBufferRecords = 65536
	DefaultMaxBodyBytes  = 16 << 20
	DefaultBlockTimeout  = 10 * time.Second
	DefaultAckTimeout    = 60 * time.Second
	DefaultReadTimeout   = 30 * time.Second
	DefaultIdleTimeout   = 120 * time.Second
	DefaultPollInterval  = 100 * time.Millisecond
	DefaultMaxRequests   = 1024
)

// Config configures a Source. The zero value of every field means its
// default.
type Config struct {
	// Addr is the listen address; DefaultAddr when empty. Port 0 picks a
	// free port (see Source.Addr).
	Addr string
	// Path is the ingest endpoint; DefaultPath when empty.
	Path string
	// Token, when set, is the bearer token every request must carry. It is
	// required when Addr is not a loopback address, unless Authorizer is
	// set.
	Token string
	// Authorizer, when set, accepts bearer tokens tied to principals: a
	// request whose token is not Token is let through when the
	// Authorizer allows it, answered 401 for an unknown, revoked or
	// expired token and 403 for a principal it denies. Token, if also
	// set, keeps working.
	Authorizer Authorizer
	// Rate is the sustained admission rate in records per second; 0 means
	// unlimited.
	Rate float64
	// Burst is the token bucket's size in records; 0 means one second of
	// Rate (at least 1).
	Burst int
	// Shedding is the policy when the rate or the buffer says no; the zero
	// value is Block.
	Shedding Policy
	// SampleFraction is the fraction of records Sample keeps, in (0, 1].
	SampleFraction float64
	// BufferRecords is the capacity of the buffer toward the pipeline;
	// DefaultBufferRecords when 0.
	BufferRecords int
	// MaxBodyBytes bounds a request body (413 beyond); DefaultMaxBodyBytes
	// when 0.
	MaxBodyBytes int64
	// MaxRequests bounds the ingest requests in flight at once (reading
	// their bodies, held for admission or waiting for their
	// acknowledgement), and with MaxBodyBytes the memory their bodies
	// take: one more is answered 503 with Retry-After at once, before its
	// body is read. DefaultMaxRequests when 0.
	MaxRequests int
	// BlockTimeout bounds how long Block holds a request;
	// DefaultBlockTimeout when 0.
	BlockTimeout time.Duration
	// AckTimeout bounds how long a request waits for its acknowledgement
	// (503 beyond); DefaultAckTimeout when 0.
	AckTimeout time.Duration
	// ReadTimeout bounds reading a whole request; DefaultReadTimeout when 0.
	ReadTimeout time.Duration
	// IdleTimeout bounds idle keep-alive connections; DefaultIdleTimeout
	// when 0.
	IdleTimeout time.Duration
	// Splits is the number of splits sharing the buffer; 1 when 0.
	Splits int
	// Delivery says when requests are answered; AtLeastOnce by default.
	Delivery Delivery
	// PollInterval is the longest a split's Read waits for records;
	// DefaultPollInterval when 0.
	PollInterval time.Duration
	// Logger gets the server's errors; slog.Default() when nil.
	Logger *slog.Logger
	// Body, when set, splits request bodies instead of DecodeBody (JSON
	// lines or one array): it appends the body's records to dst and
	// returns the headers every record of the body carries (an Avro
	// object container's writer schema). An error makes the request a
	// 400 with the error's text.
	Body func(dst [][]byte, body []byte) ([][]byte, []connector.Header, error)
}

// Stats are the source's counters since it was created.
type Stats struct {
	Requests         int64 // requests decoded (authorised, well-formed)
	Records          int64 // records in those requests
	Accepted         int64 // records admitted into the buffer, less those evicted since
	Handed           int64 // records handed to the pipeline
	ShedRateLimit    int64 // records shed because of the rate limit
	ShedBackpressure int64 // records shed because the buffer was full (including evicted ones)
	NotAdmitted      int64 // records of requests refused after Stop, of Block requests that timed out or were stopped, records dropped from the buffer when a run ended, and under ExactlyOnce records of a failed request withdrawn before being handed over
	Rejected         int64 // requests answered 429 (or 413 by Reject: more records than the burst or the buffer)
	Unauthorized     int64 // requests answered 401: no, wrong, unknown, revoked or expired token
	Forbidden        int64 // requests answered 403: a principal token the Authorizer denied
	BadRequests      int64 // malformed or oversized requests
	Overloaded       int64 // requests answered 503 because MaxRequests were in flight
}

type counters struct {
	requests, records, accepted, handed, shedRate, shedBack, notAdmitted, rejected, unauthorized, forbidden, bad, overloaded atomic.Int64
}

// Source is the HTTP ingest source. It implements
// stream.Source[connector.Message]. Create it with NewSource; it listens
// from Listen or the job's start until its splits are closed or Close.
type Source struct {
	cfg    Config
	lim    *rate.Limiter // nil: unlimited
	logger *slog.Logger
	cnt    counters
	// inflight holds a slot per ingest request in flight (MaxRequests).
	inflight chan struct{}
	// authLog spaces the log lines of refused requests.
	authLog *rate.Sometimes

	mu      sync.Mutex
	ring    []entry
	head, n int
	changed chan struct{} // closed and replaced when the buffer changes
	stopped bool
	closed  bool
	// ended: the last run's splits are all closed and no new run has
	// asked for splits yet (a job restarting in-process); nothing is
	// admitted meanwhile.
	ended     bool
	sampleAcc float64
	seq       int64
	open      int // splits not closed
	waiting   map[*ticket]struct{}

	ln  net.Listener
	srv *nethttp.Server
	wg  sync.WaitGroup
	// bound is the address the first Listen bound (the port chosen for
	// port 0): a run after the first listens there again.
	bound string
}

var _ stream.Source[connector.Message] = (*Source)(nil)

type entry struct {
	msg connector.Message
	t   *ticket
}

// ticket tracks one request's admitted records until each is released
// (handed over, or committed under ExactlyOnce) or evicted.
type ticket struct {
	hdrs     []connector.Header // headers of the request's records
	admitted int                // records enqueued
	pending  int                // admitted, not yet released or evicted
	evicted  int
	sealed   bool // admission finished
	failed   bool
	done     chan struct{}
}

// NewSource validates cfg and returns a source. It does not listen yet.
func NewSource(cfg Config) (*Source, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	loop, err := netutil.IsLoopback(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("http source: %w", err)
	}
	if !loop && cfg.Token == "" && cfg.Authorizer == nil {
		return nil, fmt.Errorf("http source: address %s is not loopback: a bearer token (or principal tokens) is required", cfg.Addr)
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) {
		return nil, fmt.Errorf("http source: rate %v: want records per second >= 0", cfg.Rate)
	}
	if cfg.Burst < 0 {
		return nil, fmt.Errorf("http source: burst %d: want >= 0", cfg.Burst)
	}
	if cfg.Shedding < Block || cfg.Shedding > Sample {
		return nil, fmt.Errorf("http source: unknown shedding policy %d", cfg.Shedding)
	}
	if cfg.Shedding == Sample && !(cfg.SampleFraction > 0 && cfg.SampleFraction <= 1) {
		return nil, fmt.Errorf("http source: sample_fraction %v: want a fraction in (0, 1]", cfg.SampleFraction)
	}
	if cfg.Delivery != AtLeastOnce && cfg.Delivery != ExactlyOnce {
		return nil, fmt.Errorf("http source: unknown delivery %d", cfg.Delivery)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.BlockTimeout, DefaultBlockTimeout)
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.ReadTimeout, DefaultReadTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.PollInterval, DefaultPollInterval)
	if cfg.BufferRecords <= 0 {
		cfg.BufferRecords = DefaultBufferRecords
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Splits <= 0 {
		cfg.Splits = 1
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Source{cfg: cfg, logger: cfg.Logger, ring: make([]entry, cfg.BufferRecords), changed: make(chan struct{}), waiting: map[*ticket]struct{}{}, authLog: newAuthLog(), inflight: make(chan struct{}, cfg.MaxRequests)}
	if cfg.Rate > 0 {
		if cfg.Burst == 0 {
			cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
			s.cfg.Burst = cfg.Burst
		}
		s.lim = rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
	}
	return s, nil
}

// Listen binds the address and starts serving, once; Splits calls it.
func (s *Source) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("http source: closed")
	}
	if s.ln != nil {
		return nil
	}
	addr := s.cfg.Addr
	if s.bound != "" {
		addr = s.bound
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("http source: %w", err)
	}
	s.bound = ln.Addr().String()
	mux := nethttp.NewServeMux()
	mux.HandleFunc(s.cfg.Path, s.serveIngest)
	s.srv = &nethttp.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.ReadTimeout + s.cfg.BlockTimeout + s.cfg.AckTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.ln = ln
	srv := s.srv // endRun may set s.srv to nil while this goroutine starts
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			s.logger.Error("http source stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return nil
}

// Addr returns the address listened on (with the port chosen for port 0),
// or "" before Listen.
func (s *Source) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Config returns the source's configuration with its defaults filled in.
func (s *Source) Config() Config { return s.cfg }

// Stats returns the counters.
func (s *Source) Stats() Stats {
	c := &s.cnt
	return Stats{
		Requests: c.requests.Load(), Records: c.records.Load(), Accepted: c.accepted.Load(), Handed: c.handed.Load(),
		ShedRateLimit: c.shedRate.Load(), ShedBackpressure: c.shedBack.Load(), NotAdmitted: c.notAdmitted.Load(),
		Rejected: c.rejected.Load(), Unauthorized: c.unauthorized.Load(), Forbidden: c.forbidden.Load(), BadRequests: c.bad.Load(),
		Overloaded: c.overloaded.Load(),
	}
}

// Stop ends the input: new requests get 503 with Retry-After, held
// requests stop waiting for admission, and the splits end (io.EOF) once
// the buffer is drained. It is how a job over an HTTP source finishes
// cleanly: the requests admitted before it are answered as usual (under
// ExactlyOnce once the job's final checkpoint covers them).
func (s *Source) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.signal()
	s.mu.Unlock()
}

// Close stops the server for good and fails the requests still waiting
// for their acknowledgement (503 with Retry-After). A job ends a run of
// the source when its last split closes (see Splits); Close is for a
// source that is not used again.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.stopped = true, true
	s.mu.Unlock()
	return s.endRun()
}

// endRun ends a run of the source: the requests still waiting for their
// acknowledgement fail (503 with Retry-After: the pipeline will not
// acknowledge them, and the source cannot replay them), the records
// still buffered are dropped with them (a retry sends them again), and
// the server stops until the next run's Splits.
func (s *Source) endRun() error {
	s.mu.Lock()
	for t := range s.waiting {
		t.failed = true
		close(t.done)
	}
	clear(s.waiting)
	if s.n > 0 {
		s.cnt.accepted.Add(-int64(s.n))
		s.cnt.notAdmitted.Add(int64(s.n))
		clear(s.ring)
		s.head, s.n = 0, 0
	}
	s.ended = true
	s.signal()
	srv := s.srv
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	var err error
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err = srv.Shutdown(ctx); err != nil {
			err = errors.Join(err, srv.Close())
		}
		s.wg.Wait()
	}
	if err != nil {
		return fmt.Errorf("http source: close: %w", err)
	}
	return nil
}

// signal wakes everyone waiting on the buffer (mu held).
func (s *Source) signal() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Splits implements stream.Source: Config.Splits splits sharing the buffer.
// It starts listening. Each call starts a run of the source, which ends
// when its last split is closed: a job restarted in-process
// (stream.WithRestartPolicy) asks for splits again and the source serves
// again on the same address.
func (s *Source) Splits(context.Context, int) ([]stream.Split[connector.Message], error) {
	if err := s.Listen(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = false
	out := make([]stream.Split[connector.Message], s.cfg.Splits)
	for i := range out {
		out[i] = &split{s: s, id: fmt.Sprintf("http-%d", i), wake: make(chan struct{}, 1)}
		s.open++
	}
	return out, nil
}

// tokens returns how many of n records the rate limit admits now (mu held).
func (s *Source) tokens(now time.Time, n int) int {
	if s.lim == nil {
		return n
	}
	return max(0, min(n, int(math.Floor(s.lim.TokensAt(now)))))
}

// take consumes k tokens (mu held; k <= tokens(now, k)).
func (s *Source) take(now time.Time, k int) {
	if s.lim != nil && k > 0 {
		s.lim.AllowN(now, k)
	}
}

// delay is how long until k tokens are available (mu held).
func (s *Source) delay(now time.Time, k int) time.Duration {
	if s.lim == nil {
		return 0
	}
	k = min(k, s.lim.Burst())
	r := s.lim.ReserveN(now, k)
	if !r.OK() {
		return time.Second
	}
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// enqueue admits recs for t (mu held; room and tokens checked).
func (s *Source) enqueue(t *ticket, recs [][]byte, now int64) {
	for _, r := range recs {
		i := (s.head + s.n) % len(s.ring)
		s.ring[i] = entry{msg: connector.Message{Value: r, Timestamp: now, Origin: "http", Offset: s.seq, Headers: t.hdrs}, t: t}
		s.seq++
		s.n++
	}
	t.pending += len(recs)
	t.admitted += len(recs)
	s.cnt.accepted.Add(int64(len(recs)))
	if len(recs) > 0 {
		s.signal()
	}
}

// evict drops the k oldest buffered records (mu held).
func (s *Source) evict(k int) {
	for range k {
		e := &s.ring[s.head]
		e.t.pending--
		e.t.evicted++
		s.resolve(e.t)
		*e = entry{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
	s.cnt.shedBack.Add(int64(k))
	s.cnt.accepted.Add(-int64(k))
}

// withdraw removes t's records still in the buffer, keeping the order
// of the others (mu held). Records already handed over stay pending until
// CommitPosition releases them: they cannot be taken back. It is linear
// in the buffered records, and runs only for a failed request.
func (s *Source) withdraw(t *ticket) {
	kept := 0
	for i := range s.n {
		e := s.ring[(s.head+i)%len(s.ring)]
		if e.t != t {
			s.ring[(s.head+kept)%len(s.ring)] = e
			kept++
		}
	}
	k := s.n - kept
	if k == 0 {
		return
	}
	for i := kept; i < s.n; i++ {
		s.ring[(s.head+i)%len(s.ring)] = entry{}
	}
	s.n = kept
	t.pending -= k
	s.cnt.accepted.Add(-int64(k))
	s.cnt.notAdmitted.Add(int64(k))
	s.signal() // room for requests held by Block
}

// resolve answers t if nothing of it is pending (mu held).
func (s *Source) resolve(t *ticket) {
	if t.sealed && t.pending == 0 && !t.failed {
		if _, ok := s.waiting[t]; ok {
			delete(s.waiting, t)
			close(t.done)
		}
	}
}

func (s *Source) release(t *ticket, k int) {
	t.pending -= k
	s.resolve(t)
}

type answer struct {
	Accepted int64  `json:"accepted"`
	Shed     int64  `json:"shed"`
	Error    string `json:"error,omitempty"`
}

func reply(w nethttp.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(a)
	w.Write(append(b, '\n'))
}

func (s *Source) serveIngest(w nethttp.ResponseWriter, r *nethttp.Request) {
	if r.Method != nethttp.MethodPost {
		w.Header().Set("Allow", "POST")
		reply(w, nethttp.StatusMethodNotAllowed, answer{Error: "use POST"})
		return
	}
	if !s.authenticate(w, r) {
		return
	}
	select {
	case s.inflight <- struct{}{}:
		defer func() { <-s.inflight }()
	default:
		s.cnt.overloaded.Add(1)
		w.Header().Set("Retry-After", "1")
		reply(w, nethttp.StatusServiceUnavailable, answer{Error: fmt.Sprintf("%d requests in flight already: retry later", s.cfg.MaxRequests)})
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.cnt.bad.Add(1)
		var tooBig *nethttp.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, errInflatedTooBig) {
			reply(w, nethttp.StatusRequestEntityTooLarge, answer{Error: fmt.Sprintf("body larger than %d bytes", s.cfg.MaxBodyBytes)})
			return
		}
		reply(w, nethttp.StatusBadRequest, answer{Error: "reading body: " + err.Error()})
		return
	}
	var recs [][]byte
	var hdrs []connector.Header
	if s.cfg.Body != nil {
		recs, hdrs, err = s.cfg.Body(nil, body)
	} else {
		recs, err = DecodeBody(nil, body)
	}
	if err != nil {
		s.cnt.bad.Add(1)
		reply(w, nethttp.StatusBadRequest, answer{Error: err.Error()})
		return
	}
	s.cnt.requests.Add(1)
	s.cnt.records.Add(int64(len(recs)))
	code, a, t, retry := s.admit(r.Context(), recs, hdrs)
	if t != nil {
		code, a = s.await(r.Context(), t, code, a)
	}
	if code == nethttp.StatusServiceUnavailable && retry <= 0 {
		retry = time.Second // every 503 says when to retry
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
	}
	reply(w, code, a)
}

var errInflatedTooBig = errors.New("decompressed body too large")

// readBody reads the request body, inflating it when it is sent with
// Content-Encoding: gzip; MaxBodyBytes bounds both the bytes received and
// the bytes inflated.
func (s *Source) readBody(w nethttp.ResponseWriter, r *nethttp.Request) ([]byte, error) {
	in := nethttp.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return io.ReadAll(in)
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(zr, s.cfg.MaxBodyBytes+1))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if int64(len(body)) > s.cfg.MaxBodyBytes {
			return nil, errInflatedTooBig
		}
		return body, nil
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q (gzip or none)", enc)
	}
}

// admit applies the rate limit, the buffer's room and the shedding policy
// to a request's records. It returns the ticket to wait for, if any
// record was admitted.
func (s *Source) admit(ctx context.Context, recs [][]byte, hdrs []connector.Header) (int, answer, *ticket, time.Duration) {
	n := len(recs)
	if n == 0 {
		return nethttp.StatusOK, answer{}, nil, 0
	}
	if s.cfg.Shedding == Block {
		return s.admitBlocking(ctx, recs, hdrs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.ended {
		s.cnt.notAdmitted.Add(int64(n))
		return nethttp.StatusServiceUnavailable, answer{Shed: 0, Error: s.refusal()}, nil, time.Second
	}
	now := time.Now()
	nowMs := now.UnixMilli()
	t := &ticket{done: make(chan struct{}), sealed: true, hdrs: hdrs}
	tokens := s.tokens(now, n)
	room := len(s.ring) - s.n
	var shed int64
	switch s.cfg.Shedding {
	case Reject:
		if overBurst := s.lim != nil && n > s.lim.Burst(); overBurst || n > len(s.ring) {
			s.cnt.rejected.Add(1)
			if overBurst {
				s.cnt.shedRate.Add(int64(n))
			} else {
				s.cnt.shedBack.Add(int64(n))
			}
			return nethttp.StatusRequestEntityTooLarge, answer{Shed: int64(n), Error: fmt.Sprintf("%d records in one request: more than the burst or the buffer admits at once", n)}, nil, 0
		}
		if tokens < n {
			s.cnt.rejected.Add(1)
			s.cnt.shedRate.Add(int64(n))
			return nethttp.StatusTooManyRequests, answer{Shed: int64(n), Error: "rate limit"}, nil, max(time.Second, s.delay(now, n))
		}
		if room < n {
			s.cnt.rejected.Add(1)
			s.cnt.shedBack.Add(int64(n))
			return nethttp.StatusTooManyRequests, answer{Shed: int64(n), Error: "pipeline backpressure"}, nil, time.Second
		}
		s.take(now, n)
		s.enqueue(t, recs, nowMs)
	case DropOldest:
		if k := n - tokens; k > 0 {
			recs = recs[k:]
			shed += int64(k)
			s.cnt.shedRate.Add(int64(k))
		}
		if k := len(recs) - len(s.ring); k > 0 {
			recs = recs[k:]
			shed += int64(k)
			s.cnt.shedBack.Add(int64(k))
		}
		s.take(now, len(recs))
		if k := len(recs) - room; k > 0 {
			s.evict(k)
		}
		s.enqueue(t, recs, nowMs)
	case Sample:
		if tokens < n || room < n {
			kept := recs[:0:0]
			for _, r := range recs {
				s.sampleAcc += s.cfg.SampleFraction
				if s.sampleAcc >= 1 {
					s.sampleAcc--
					kept = append(kept, r)
				}
			}
			dropped := int64(n - len(kept))
			if tokens < n {
				s.cnt.shedRate.Add(dropped)
			} else {
				s.cnt.shedBack.Add(dropped)
			}
			shed += dropped
			if k := len(kept) - min(tokens, room); k > 0 {
				kept = kept[:len(kept)-k]
				shed += int64(k)
				if tokens < room {
					s.cnt.shedRate.Add(int64(k))
				} else {
					s.cnt.shedBack.Add(int64(k))
				}
			}
			recs = kept
		}
		s.take(now, len(recs))
		s.enqueue(t, recs, nowMs)
	}
	if t.pending == 0 && t.evicted == 0 {
		return nethttp.StatusOK, answer{Shed: shed}, nil, 0
	}
	s.waiting[t] = struct{}{}
	return nethttp.StatusOK, answer{Shed: shed}, t, 0
}

// admitBlocking admits recs as tokens and room allow, waiting for them up
// to BlockTimeout. A request the timeout cuts short is told when to retry:
// when the bucket has the tokens for the rest, or in a second when it
// waited for room.
func (s *Source) admitBlocking(ctx context.Context, recs [][]byte, hdrs []connector.Header) (int, answer, *ticket, time.Duration) {
	deadline := time.NewTimer(s.cfg.BlockTimeout)
	defer deadline.Stop()
	t := &ticket{done: make(chan struct{}), hdrs: hdrs}
	s.mu.Lock()
	s.waiting[t] = struct{}{}
	s.mu.Unlock()
	code, msg := nethttp.StatusOK, ""
	var retry time.Duration
	for len(recs) > 0 {
		s.mu.Lock()
		if s.stopped || s.ended {
			msg = s.refusal()
			s.mu.Unlock()
			code, retry = nethttp.StatusServiceUnavailable, time.Second
			break
		}
		now := time.Now()
		k := min(s.tokens(now, len(recs)), len(s.ring)-s.n)
		if k > 0 {
			s.take(now, k)
			s.enqueue(t, recs[:k], now.UnixMilli())
			recs = recs[k:]
		}
		var wait time.Duration
		if len(recs) > 0 && s.tokens(now, 1) == 0 {
			wait = max(time.Millisecond, s.delay(now, len(recs)))
		}
		changed := s.changed
		s.mu.Unlock()
		if len(recs) == 0 {
			break
		}
		var tick <-chan time.Time
		var tm *time.Timer
		if wait > 0 {
			tm = time.NewTimer(wait)
			tick = tm.C
		}
		select {
		case <-changed:
		case <-tick:
		case <-ctx.Done():
			code, msg = nethttp.StatusServiceUnavailable, "request cancelled"
		case <-deadline.C:
			code, msg = nethttp.StatusServiceUnavailable, fmt.Sprintf("not admitted within %v", s.cfg.BlockTimeout)
			retry = time.Second
			if wait > 0 {
				s.mu.Lock()
				retry = max(retry, s.delay(time.Now(), len(recs)))
				s.mu.Unlock()
			}
		}
		if tm != nil {
			tm.Stop()
		}
		if code != nethttp.StatusOK {
			break
		}
	}
	s.cnt.notAdmitted.Add(int64(len(recs)))
	s.mu.Lock()
	t.sealed = true
	s.resolve(t)
	s.mu.Unlock()
	return code, answer{Error: msg}, t, retry
}

// refusal says why nothing is admitted (mu held; stopped or ended).
func (s *Source) refusal() string {
	if s.stopped {
		return "source stopped: it takes no more records"
	}
	return "the pipeline is restarting: retry"
}

// await waits for t's records to be released and completes the answer.
func (s *Source) await(ctx context.Context, t *ticket, code int, a answer) (int, answer) {
	timer := time.NewTimer(s.cfg.AckTimeout)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-ctx.Done():
	case <-timer.C:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a.Shed += int64(t.evicted)
	unacked := t.pending
	select {
	case <-t.done:
		if t.failed {
			unacked = t.pending
			code, a.Error = nethttp.StatusServiceUnavailable, "the pipeline stopped before acknowledging the records"
		}
	default:
		delete(s.waiting, t)
		t.failed = true
		code, a.Error = nethttp.StatusServiceUnavailable, fmt.Sprintf("records not acknowledged within %v", s.cfg.AckTimeout)
		if ctx.Err() != nil {
			a.Error = "request cancelled before its records were acknowledged"
		}
		if s.cfg.Delivery == ExactlyOnce {
			// The client is told to retry: the records not handed over
			// yet must not reach the pipeline too.
			s.withdraw(t)
		}
	}
	// Accepted: admitted, not evicted and acknowledged.
	a.Accepted = int64(t.admitted - t.evicted - unacked)
	return code, a
}

// split is one reader of the shared buffer.
type split struct {
	s      *Source
	id     string
	handed int64
	acks   []ack // ExactlyOnce: handed, not yet committed
	closed bool
	// wake gets a token from Wake: a waiting Read returns at once.
	wake chan struct{}
}

// Wake implements stream.Waker: a Read waiting for records returns (0, nil)
// at once (or the next one, if none is waiting).
func (sp *split) Wake() {
	select {
	case sp.wake <- struct{}{}:
	default:
	}
}

// Buffered implements stream.Buffered: records wait in the buffer.
func (sp *split) Buffered() bool {
	sp.s.mu.Lock()
	defer sp.s.mu.Unlock()
	return sp.s.n > 0
}

type ack struct {
	upTo int64 // position after the last record of this run
	t    *ticket
	n    int
}

func (sp *split) ID() string { return sp.id }

// Position implements stream.Split: the number of records handed over.
func (sp *split) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(sp.handed)) }

// Seek implements stream.Split: HTTP input cannot be replayed, so it only
// continues the count.
func (sp *split) Seek(pos []byte) error {
	v, err := decodePos(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.id, err)
	}
	sp.handed = v
	return nil
}

func decodePos(pos []byte) (int64, error) {
	if len(pos) != 8 {
		return 0, fmt.Errorf("%w: %d bytes, want 8", stream.ErrBadPosition, len(pos))
	}
	v := int64(binary.BigEndian.Uint64(pos))
	if v < 0 {
		return 0, fmt.Errorf("%w: negative count %d", stream.ErrBadPosition, v)
	}
	return v, nil
}

// CommitPosition releases, under ExactlyOnce, the requests whose records
// this split handed over up to pos (a Position taken at a checkpoint
// barrier): the checkpoint that recorded pos has completed.
func (sp *split) CommitPosition(_ context.Context, pos []byte) error {
	v, err := decodePos(pos)
	if err != nil {
		return fmt.Errorf("split %s: %w", sp.id, err)
	}
	s := sp.s
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for ; i < len(sp.acks) && sp.acks[i].upTo <= v; i++ {
		s.release(sp.acks[i].t, sp.acks[i].n)
	}
	sp.acks = append(sp.acks[:0], sp.acks[i:]...)
	return nil
}

// Read implements stream.Split.
func (sp *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	s := sp.s
	for {
		s.mu.Lock()
		if s.n > 0 {
			k := min(len(dst), s.n)
			// Counted before the releases below, which may answer
			// a request: Stats never shows fewer records handed over
			// than the answers have said.
			s.cnt.handed.Add(int64(k))
			for i := range k {
				e := &s.ring[s.head]
				dst[i] = e.msg
				sp.handed++
				if s.cfg.Delivery == ExactlyOnce {
					if l := len(sp.acks); l > 0 && sp.acks[l-1].t == e.t {
						sp.acks[l-1].upTo = sp.handed
						sp.acks[l-1].n++
					} else {
						sp.acks = append(sp.acks, ack{upTo: sp.handed, t: e.t, n: 1})
					}
				} else {
					s.release(e.t, 1)
				}
				*e = entry{}
				s.head = (s.head + 1) % len(s.ring)
				s.n--
			}
			s.signal()
			s.mu.Unlock()
			return k, nil
		}
		if s.stopped {
			s.mu.Unlock()
			return 0, io.EOF
		}
		changed := s.changed
		s.mu.Unlock()
		timer := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-changed:
			timer.Stop()
		case <-sp.wake:
			timer.Stop()
			return 0, nil
		case <-timer.C:
			return 0, nil
		case <-ctx.Done():
			timer.Stop()
			return 0, ctx.Err()
		}
	}
}

// Close implements io.Closer: the last split closed ends the source's run
// (Splits).
func (sp *split) Close() error {
	s := sp.s
	s.mu.Lock()
	if sp.closed {
		s.mu.Unlock()
		return nil
	}
	sp.closed = true
	s.open--
	last := s.open == 0
	s.mu.Unlock()
	if last {
		return s.endRun()
	}
	return nil
}

var _ interface {
	CommitPosition(context.Context, []byte) error
} = (*split)(nil)

var (
	_ stream.Buffered = (*split)(nil)
	_ stream.Waker    = (*split)(nil)
)
