package latbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/kafka/kbench"
)

// clock reads a monotonic time in nanoseconds since the run's base, shared
// by the producer (send stamps) and the consumer (receive times).
type clock struct{ base time.Time }

func (c clock) now() int64 { return int64(time.Since(c.base)) }

// schedule is the open-loop plan of one mode: record i is due at
// start + i/rate; records [first, first+count) are measured, those before
// are the warm-up.
type schedule struct {
	start        int64 // clock time of record 0
	rate         int
	total        int64
	first, count int64
}

func (s schedule) due(i int64) int64 {
	return s.start + i*int64(time.Second)/int64(s.rate)
}

func (s schedule) measured(seq int64) bool { return seq >= s.first && seq < s.first+s.count }

// appendValue appends the JSON value of record seq stamped sent (clock
// nanoseconds), padded with a "pad" string to size bytes when size allows.
func appendValue(b []byte, seq, sent int64, size int) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"sent_ns":`...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `,"pad":"`...)
	for n := size - len(b) - 2; n > 0; n-- {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// intField finds "key": in a JSON object and returns the number after it
// (an integer, or a float truncated to one).
func intField(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(`"`+key+`"`))
	if i < 0 {
		return 0, false
	}
	b = bytes.TrimLeft(b[i+len(key)+2:], " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return 0, false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	end := bytes.IndexAny(b, ",} \t\r\n")
	if end < 0 {
		end = len(b)
	}
	if v, err := strconv.ParseInt(string(b[:end]), 10, 64); err == nil {
		return v, true
	}
	if f, err := strconv.ParseFloat(string(b[:end]), 64); err == nil {
		return int64(f), true
	}
	return 0, false
}

// receiver consumes the output topic of a mode and records the latency of
// the first arrival of every measured record.
type receiver struct {
	cl    *kgo.Client
	clk   clock
	sched schedule // set before the load starts (under mu)

	mu        sync.Mutex
	seen      []uint64 // bitmap over measured seqs
	hist      Histogram
	dups      int64
	unparsed  int64
	other     int64 // probes and warm-up records
	first     chan struct{}
	firstOnce sync.Once
	all       chan struct{}
	received  atomic.Int64 // measured records received (first arrivals)
	err       error
}

func newReceiver(broker, topic string, readCommitted bool, clk clock) (*receiver, error) {
	iso := kgo.ReadUncommitted()
	if readCommitted {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(broker),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &receiver{cl: cl, clk: clk, first: make(chan struct{}), all: make(chan struct{})}, nil
}

// expect sets the schedule whose measured records the receiver counts.
func (r *receiver) expect(s schedule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sched = s
	r.seen = make([]uint64, (s.count+63)/64)
	if s.count == 0 {
		close(r.all)
	}
}

// run polls until ctx ends or a fetch fails.
func (r *receiver) run(ctx context.Context) {
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := r.clk.now()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("consumer: fetch %s/%d: %w", t, p, err)
			}
		})
		r.mu.Lock()
		if ferr != nil {
			r.err = ferr
			r.mu.Unlock()
			return
		}
		fs.EachRecord(func(rec *kgo.Record) { r.take(rec.Value, now) })
		r.mu.Unlock()
	}
}

// take accounts for one received value; r.mu is held.
func (r *receiver) take(v []byte, now int64) {
	r.firstOnce.Do(func() { close(r.first) })
	seq, ok1 := intField(v, "seq")
	sent, ok2 := intField(v, "sent_ns")
	if !ok1 || !ok2 {
		r.unparsed++
		return
	}
	if r.seen == nil || !r.sched.measured(seq) {
		r.other++
		return
	}
	i := seq - r.sched.first
	if r.seen[i/64]&(1<<(i%64)) != 0 {
		r.dups++
		return
	}
	r.seen[i/64] |= 1 << (i % 64)
	r.hist.Record(time.Duration(now - sent))
	if r.received.Add(1) == r.sched.count {
		close(r.all)
	}
}

// sender is the open-loop producer of a mode.
type sender struct {
	cl   *kgo.Client
	clk  clock
	size int

	sent     atomic.Int64 // measured records handed to the client
	lag      Histogram    // actual − intended send time of measured records
	failed   atomic.Int64
	errOnce  sync.Once
	firstErr error
	// lastSend is the clock time of the last measured send.
	lastSend int64
}

func newSender(broker, topic string, size int, clk clock) (*sender, error) {
	cl, err := kgo.NewClient(kbench.ProducerOptions(broker, topic, 0, 1<<20, kgo.NoCompression(), 10_000)...)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &sender{cl: cl, clk: clk, size: size}, nil
}

func (s *sender) promise(_ *kgo.Record, err error) {
	if err != nil {
		s.failed.Add(1)
		s.errOnce.Do(func() { s.firstErr = err })
	}
}

func (s *sender) send(ctx context.Context, seq, stamp int64) {
	v := appendValue(make([]byte, 0, max(s.size, 48)), seq, stamp, s.size)
	s.cl.Produce(ctx, &kgo.Record{Value: v}, s.promise)
}

// probe sends a record stamped now every 100 ms until the receiver has
// seen one or wait ends. The probes are produced under ctx, the run's
// context, not under wait: probes still in the client's buffer when the first one
// arrives must not fail when wait's deadline is cancelled.
func (s *sender) probe(ctx, wait context.Context, r *receiver) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		s.send(ctx, -1, s.clk.now())
		select {
		case <-r.first:
			return nil
		case <-wait.Done():
			return context.Cause(wait)
		case <-t.C:
		}
	}
}

// load sends the records of sched at their due times. A record is stamped
// with its due time, not the time it actually left, so that any delay of
// the producer counts as latency; that delay is recorded in s.lag.
func (s *sender) load(ctx context.Context, sched schedule) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); i < sched.total; {
		now := s.clk.now()
		for ; i < sched.total && sched.due(i) <= now; i++ {
			due := sched.due(i)
			if sched.measured(i) {
				at := s.clk.now()
				s.lag.Record(time.Duration(at - due))
				s.lastSend = at
				s.sent.Add(1)
			}
			s.send(ctx, i, due)
		}
		if i == sched.total {
			break
		}
		timer.Reset(time.Duration(sched.due(i) - s.clk.now()))
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.cl.Flush(fctx); err != nil {
		return fmt.Errorf("producer: flush: %w", err)
	}
	if n := s.failed.Load(); n > 0 {
		return fmt.Errorf("producer: %d records failed: %w", n, s.firstErr)
	}
	return nil
}
