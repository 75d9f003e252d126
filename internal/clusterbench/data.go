package clusterbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// baseTS is the event time of the first order, on a window boundary.
const baseTS = int64(1_700_000_000_000)

// windowMs is the size of the benchmark's tumbling window.
const windowMs = 10_000

// farFuture is how far after the last order the end records are: every
// order's window has ended by then (the end records' own window never
// fires, and is left out of the counts).
const farFuture = int64(time.Hour / time.Millisecond)

// endUser is the user of the end records.
const endUser = "end"

// orders is the input of the throughput section: order i is by a
// pseudo-random user, with a pseudo-random amount, at an event time that
// grows with i over span milliseconds; it goes to partition i mod parts
// with the order number as its Kafka key, so the window's key (user) is
// not the partitioning and records cross the repartition topic.
type orders struct {
	n     int
	keys  int
	parts int32
	span  int64 // milliseconds of event time covered
}

// mix is SplitMix64's finaliser: a cheap, well-spread hash of i.
func mix(i uint64) uint64 {
	z := i + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// at returns order i's user number, amount and event time.
func (o orders) at(i int) (user int, amount, ts int64) {
	h := mix(uint64(i))
	user = int(h % uint64(o.keys))
	amount = int64((h>>40)%100) + 1
	ts = baseTS + int64(i)*o.span/int64(o.n)
	return user, amount, ts
}

// appendOrder appends the JSON value of an order.
func appendOrder(dst []byte, user string, amount, ts int64) []byte {
	dst = append(dst, `{"user":"`...)
	dst = append(dst, user...)
	dst = append(dst, `","amount":`...)
	dst = strconv.AppendInt(dst, amount, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, ts, 10)
	return append(dst, '}')
}

func userName(k int) string { return "u" + strconv.Itoa(k) }

// orderKey is the Kafka key of order i: its order number, not its user.
func orderKey(i int) []byte { return strconv.AppendInt([]byte("o"), int64(i), 10) }

// windows is the number of tumbling windows the event-time span touches.
func (o orders) windows() int { return int(o.span/windowMs) + 1 }

// expected is what a correct run outputs: one window per user and window
// the user has an order in.
type expected struct {
	windows int64 // distinct (user, window) pairs
	count   int64 // sum of the windows' counts: the orders
	amount  int64 // sum of the windows' sums
}

func (o orders) expected() expected {
	set := newBitset(o.keys * o.windows())
	var e expected
	nw := o.windows()
	for i := range o.n {
		u, a, ts := o.at(i)
		if set.add(u*nw + int((ts-baseTS)/windowMs)) {
			e.windows++
		}
		e.count++
		e.amount += a
	}
	return e
}

// bitset is a set of small integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

// add inserts i and reports whether it was new.
func (b bitset) add(i int) bool {
	w, m := i/64, uint64(1)<<(i%64)
	if b[w]&m != 0 {
		return false
	}
	b[w] |= m
	return true
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// producer writes records with explicit partitions.
type producer struct {
	cl *kgo.Client
}

func newProducer(broker string) (*producer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(broker, ",")...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20),
		kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &producer{cl: cl}, nil
}

func (p *producer) close() { p.cl.Close() }

// produce writes n records made by rec into topic and waits until all are
// acknowledged.
func (p *producer) produce(ctx context.Context, topic string, n int, rec func(i int) (key, value []byte, part int32)) error {
	var (
		mu    sync.Mutex
		first error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if first == nil {
				first = fmt.Errorf("producing to %s partition %d: %w", r.Topic, r.Partition, err)
			}
			mu.Unlock()
		}
	}
	for i := range n {
		k, v, part := rec(i)
		p.cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: part, Key: k, Value: v}, promise)
		if i%65536 == 0 {
			mu.Lock()
			err := first
			mu.Unlock()
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("producing to %s: %w", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return first
}

// produceOrders writes the orders and then one end record per partition.
func (p *producer) produceOrders(ctx context.Context, topic string, o orders) error {
	err := p.produce(ctx, topic, o.n, func(i int) ([]byte, []byte, int32) {
		u, a, ts := o.at(i)
		return orderKey(i), appendOrder(make([]byte, 0, 48), userName(u), a, ts), int32(i % int(o.parts))
	})
	if err != nil {
		return err
	}
	end := baseTS + o.span + farFuture
	return p.produce(ctx, topic, int(o.parts), func(i int) ([]byte, []byte, int32) {
		return []byte("end"), appendOrder(nil, endUser, 0, end), int32(i)
	})
}

// createTopics creates topics with parts partitions (replication factor
// the broker's default).
func createTopics(ctx context.Context, broker string, parts int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(broker, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, parts, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("creating topics %v on %s: %w", topics, broker, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("creating topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// reader reads a topic from the start with read_committed and keeps
// count of what it found.
type reader struct {
	cl *kgo.Client
}

func newReader(broker, topic string) (*reader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(broker, ",")...),
		kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("consumer of %s: %w", topic, err)
	}
	return &reader{cl: cl}, nil
}

func (r *reader) close() { r.cl.Close() }

// poll returns the next records, waiting at most wait.
func (r *reader) poll(ctx context.Context, wait time.Duration, each func(*kgo.Record)) error {
	pctx, cancel := context.WithTimeout(ctx, wait)
	fs := r.cl.PollFetches(pctx)
	cancel()
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		return fmt.Errorf("reading %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
	}
	fs.EachRecord(each)
	return ctx.Err()
}

// windowTally counts window results read from the output.
type windowTally struct {
	o          orders
	seen       bitset
	windows    int64
	duplicates int64
	count      int64
	amount     int64
	bad        int64 // records that are not a window of a known user
	end        int64 // windows of the end records (none expected)
}

func newWindowTally(o orders) *windowTally {
	return &windowTally{o: o, seen: newBitset(o.keys * o.windows())}
}

// add counts one output record: {"user":"u<k>","window_start":S,
// "window_end":E,"n":N,"total":T}.
func (t *windowTally) add(v []byte) {
	if bytes.Contains(v, []byte(`"user":"`+endUser+`"`)) {
		t.end++
		return
	}
	u, ok1 := userField(v)
	start, ok2 := intField(v, "window_start")
	n, ok3 := intField(v, "n")
	total, ok4 := intField(v, "total")
	w := (start - baseTS) / windowMs
	if !ok1 || !ok2 || !ok3 || !ok4 || u >= t.o.keys || start < baseTS || int(w) >= t.o.windows() {
		t.bad++
		return
	}
	if !t.seen.add(u*t.o.windows() + int(w)) {
		t.duplicates++
		return
	}
	t.windows++
	t.count += n
	t.amount += total
}

// exact reports whether the tally is exactly the expected output.
func (t *windowTally) exact(e expected) bool {
	return t.windows == e.windows && t.duplicates == 0 && t.bad == 0 && t.count == e.count && t.amount == e.amount
}

// userField parses the number of a "user":"u<k>" field.
func userField(v []byte) (int, bool) {
	i := bytes.Index(v, []byte(`"user":"u`))
	if i < 0 {
		return 0, false
	}
	n, ok := digits(v[i+len(`"user":"u`):])
	return int(n), ok
}

// intField parses the integer value of field name in a flat JSON object.
func intField(v []byte, name string) (int64, bool) {
	key := make([]byte, 0, len(name)+3)
	key = append(append(append(key, '"'), name...), '"', ':')
	i := bytes.Index(v, key)
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(v[i+len(key):], " ")
	neg := len(rest) > 0 && rest[0] == '-'
	if neg {
		rest = rest[1:]
	}
	n, ok := digits(rest)
	if neg {
		n = -n
	}
	return n, ok
}

func digits(b []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, i > 0
}
