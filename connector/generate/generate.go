package generate

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// Presets.
const (
	// Clickstream records: {"ts","user","page","action","duration_ms"}.
	// Users are active in bursts: every ActivePeriod a different group of
	// ten users is active, so that session windows close.
	Clickstream = "clickstream"
	// Orders records: {"ts","order_id","user_id","status","price","qty"}.
	Orders = "orders"
	// Sequence records: {"ts","seq"}.
	Sequence = "sequence"
)

// Config configures a generator.
type Config struct {
	// Preset is Clickstream, Orders or Sequence. This overrides the default
	// of Sequence.
	Preset string
	// Count is the number of records over all splits; 0 means unbounded.
	Count int64
	// Rate is the total records per second over all splits; 0 means as
	// fast as possible.
	Rate float64
	// Splits is the number of parallel splits; 0 means the job's
	// parallelism.
	Splits int
	// Seed varies the content.
	Seed uint64
	// Users is the number of distinct users. This overrides the default of
	// 100.
	Users int
	// Start is the event time of record 0 in epoch ms; 0 means the wall
	// clock when the job starts, unless StartGiven is set.
	Start int64
	// StartGiven makes Start the event time of record 0 even when it is
	// 0 (the Unix epoch).
	StartGiven bool
	// Interval is the event-time distance between consecutive records.
	// This overrides the default of 1s/Rate, or 1ms without a rate.
	Interval time.Duration
	// ActivePeriod is how long a group of users stays active (Clickstream).
	// This overrides the default of 20s.
	ActivePeriod time.Duration
}

// Source is a generator source.
type Source struct {
	cfg Config
}

// New checks cfg and returns a source.
func New(cfg Config) (*Source, error) {
	switch cfg.Preset {
	case "":
		cfg.Preset = Sequence
	case Clickstream, Orders, Sequence:
	default:
		return nil, fmt.Errorf("generate: unknown preset %q (allowed: clickstream, orders, sequence)", cfg.Preset)
	}
	if cfg.Count < 0 || cfg.Rate < 0 || cfg.Users < 0 || cfg.Splits < 0 || cfg.Interval < 0 {
		return nil, fmt.Errorf("generate: count, rate, users, splits and interval must not be negative")
	}
	if cfg.Users == 0 {
		cfg.Users = 100
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Millisecond
		if cfg.Rate > 0 {
			cfg.Interval = max(time.Duration(float64(time.Second)/cfg.Rate), time.Microsecond)
		}
	}
	if cfg.ActivePeriod <= 0 {
		cfg.ActivePeriod = 20 * time.Second
	}
	return &Source{cfg: cfg}, nil
}

// Splits implements stream.Source.
func (s *Source) Splits(_ context.Context, parallelism int) ([]stream.Split[connector.Message], error) {
	n := s.cfg.Splits
	if n <= 0 {
		n = max(parallelism, 1)
	}
	start := s.cfg.Start
	if start == 0 && !s.cfg.StartGiven {
		start = time.Now().UnixMilli()
	}
	out := make([]stream.Split[connector.Message], n)
	now := time.Now()
	for i := range n {
		out[i] = &split{s: s, id: fmt.Sprintf("generate-%d", i), next: int64(i), step: int64(n), start: start, began: now}
	}
	return out, nil
}

type split struct {
	s     *Source
	id    string
	next  int64
	step  int64
	start int64
	began time.Time
	made  int64 // records made by this split since it began (for the rate)
	slab  []byte
}

func (p *split) ID() string { return p.id }

func (p *split) Position() []byte { return binary.BigEndian.AppendUint64(nil, uint64(p.next)) }

func (p *split) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("generate split %s: %w", p.id, stream.ErrBadPosition)
	}
	p.next = int64(binary.BigEndian.Uint64(pos))
	return nil
}

// Read implements stream.Split.
func (p *split) Read(ctx context.Context, dst []connector.Message) (int, error) {
	c := &p.s.cfg
	limit := len(dst)
	if c.Rate > 0 {
		perSplit := c.Rate / float64(p.step)
		due := int64(time.Since(p.began).Seconds()*perSplit) + 1 - p.made
		if due <= 0 {
			wait := time.Duration(float64(-due+1) / perSplit * float64(time.Second))
			t := time.NewTimer(min(wait, 100*time.Millisecond))
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			return 0, nil
		}
		limit = int(min(due, int64(limit)))
	}
	n := 0
	for n < limit {
		if c.Count > 0 && p.next >= c.Count {
			break
		}
		dst[n] = connector.Message{Value: p.record(p.next), Origin: p.id, Offset: p.next, Timestamp: p.ts(p.next)}
		p.next += p.step
		n++
	}
	p.made += int64(n)
	if n == 0 && c.Count > 0 && p.next >= c.Count {
		return 0, io.EOF
	}
	return n, nil
}

func (p *split) ts(i int64) int64 { return p.start + i*int64(p.s.cfg.Interval)/int64(time.Millisecond) }

// mix is a 64-bit finaliser (splitmix64): a cheap, well-spread hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var (
	pages    = []string{"/", "/search", "/product/1", "/product/2", "/product/3", "/cart", "/checkout", "/help"}
	actions  = []string{"view", "view", "view", "click", "click", "add_to_cart", "purchase"}
	statuses = []string{"paid", "paid", "paid", "pending", "cancelled"}
)

func (p *split) record(i int64) []byte {
	c := &p.s.cfg
	h := mix(c.Seed ^ uint64(i)*0x9e3779b97f4a7c15)
	ts := p.ts(i)
	b := p.buf()
	b = append(b, `{"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	switch c.Preset {
	case Clickstream:
		group := (ts - p.start) / c.ActivePeriod.Milliseconds()
		groupSize := min(10, c.Users)
		u := (int(group)*groupSize + int(h%uint64(groupSize))) % c.Users
		b = append(b, `,"user":"u`...)
		b = strconv.AppendInt(b, int64(u), 10)
		b = append(b, `","page":"`...)
		b = append(b, pages[(h>>8)%uint64(len(pages))]...)
		b = append(b, `","action":"`...)
		b = append(b, actions[(h>>16)%uint64(len(actions))]...)
		b = append(b, `","duration_ms":`...)
		b = strconv.AppendInt(b, int64((h>>24)%5000), 10)
	case Orders:
		b = append(b, `,"order_id":`...)
		b = strconv.AppendInt(b, i, 10)
		b = append(b, `,"user_id":"u`...)
		b = strconv.AppendInt(b, int64(h%uint64(c.Users)), 10)
		b = append(b, `","status":"`...)
		b = append(b, statuses[(h>>8)%uint64(len(statuses))]...)
		b = append(b, `","price":`...)
		b = strconv.AppendFloat(b, float64((h>>16)%10000)/100, 'f', 2, 64)
		b = append(b, `,"qty":`...)
		b = strconv.AppendInt(b, int64(1+(h>>32)%5), 10)
	default:
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, i, 10)
	}
	b = append(b, '}')
	return p.keep(b)
}

// buf returns scratch space at the end of the slab; keep then commits the
// record's bytes there.
func (p *split) buf() []byte {
	if cap(p.slab)-len(p.slab) < 256 {
		p.slab = make([]byte, 0, 64<<10)
	}
	return p.slab[len(p.slab):]
}

func (p *split) keep(b []byte) []byte {
	if len(b) > cap(p.slab)-len(p.slab) {
		return b // grew beyond the slab: append allocated it
	}
	p.slab = p.slab[:len(p.slab)+len(b)]
	return b[:len(b):len(b)]
}
