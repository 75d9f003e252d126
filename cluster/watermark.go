package cluster

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Watermarks cross repartition topics as control records: at every commit
// each task of the upstream sub-topology writes one record to every
// partition of the repartition topic, with no key and no value and one
// header (a first sub-topology's task publishes the watermark of the event
// times it forwarded; a keyed task the input watermark it acted on, see
// Instance.marker):
//
//	sluice-watermark: version (1 byte, 1), flags (1 byte, bit 0: idle),
//	                  upstream task (int32 big-endian), watermark (int64
//	                  big-endian, milliseconds)
//
// A downstream task's watermark is the minimum over the upstream tasks of
// the latest watermark each published, leaving out those that said they
// are idle (when all are idle, the largest); an upstream task it has not
// heard from yet holds it back.
// The per-upstream watermarks are state of the downstream task, written to
// its changelog at every commit (keys starting with a 0 byte and "wm"), so
// a new owner continues from exactly the watermark the committed offset
// had.

// WatermarkHeader is the header key of watermark control records.
const WatermarkHeader = "sluice-watermark"

const markerVersion = 1

// NoWatermark is the watermark before any: no event time is complete.
const NoWatermark = math.MinInt64

var errMarker = errors.New("cluster: malformed watermark record")

// marker is one upstream task's watermark.
type marker struct {
	from int32
	wm   int64
	idle bool
}

func (m marker) header() kgo.RecordHeader {
	b := make([]byte, 14)
	b[0] = markerVersion
	if m.idle {
		b[1] = 1
	}
	binary.BigEndian.PutUint32(b[2:], uint32(m.from))
	binary.BigEndian.PutUint64(b[6:], uint64(m.wm))
	return kgo.RecordHeader{Key: WatermarkHeader, Value: b}
}

// parseMarker returns the watermark a record carries, if it is a
// watermark record.
func parseMarker(r *kgo.Record) (marker, bool, error) {
	if r.Key != nil || len(r.Value) != 0 {
		return marker{}, false, nil
	}
	for _, h := range r.Headers {
		if h.Key != WatermarkHeader {
			continue
		}
		b := h.Value
		if len(b) != 14 || b[0] != markerVersion {
			return marker{}, true, errMarker
		}
		return marker{idle: b[1]&1 != 0, from: int32(binary.BigEndian.Uint32(b[2:])), wm: int64(binary.BigEndian.Uint64(b[6:]))}, true, nil
	}
	return marker{}, false, nil
}

// combiner keeps a downstream task's view of its upstream tasks'
// watermarks, with the copy at the last commit for Abort.
type combiner struct {
	wm, committedWM     []int64
	idle, committedIdle []bool
	dirty               map[int32]struct{}
	// emitted is the watermark the task last acted on; it never goes
	// back (a watermark valve's output), also across owners: it is
	// written to the changelog (key from -1) when it changes, so a new
	// owner does not start from a lower combination — upstream tasks
	// idle when it advanced may have become active again since, below it.
	emitted, committedEmitted int64
}

func newCombiner(upstream int32) *combiner {
	c := &combiner{wm: make([]int64, upstream), idle: make([]bool, upstream), dirty: map[int32]struct{}{}, emitted: NoWatermark, committedEmitted: NoWatermark}
	for i := range c.wm {
		c.wm[i] = NoWatermark
	}
	c.committedWM = append([]int64(nil), c.wm...)
	c.committedIdle = append([]bool(nil), c.idle...)
	return c
}

// observe applies an upstream task's marker; watermarks only go forward.
func (c *combiner) observe(m marker) {
	if m.from < 0 || int(m.from) >= len(c.wm) {
		return // a task of a larger upstream topology than we know: ignored
	}
	if m.wm > c.wm[m.from] {
		c.wm[m.from] = m.wm
		c.dirty[m.from] = struct{}{}
	}
	if c.idle[m.from] != m.idle {
		c.idle[m.from] = m.idle
		c.dirty[m.from] = struct{}{}
	}
}

// current is the combined watermark; ok is false when it has not moved
// past what was last returned as advanced.
func (c *combiner) advance() (int64, bool) {
	w := int64(math.MaxInt64)
	active := false
	for i, v := range c.wm {
		if c.idle[i] {
			continue
		}
		active = true
		w = min(w, v)
	}
	if !active {
		// Every upstream task is idle: the watermark moves to the
		// largest they published, as Flink's watermark valve does when
		// its last active channel goes idle (otherwise whichever went
		// idle last would hold back what the others completed).
		w = NoWatermark
		for _, v := range c.wm {
			w = max(w, v)
		}
	}
	if w <= c.emitted {
		return c.emitted, false
	}
	c.emitted = w
	return w, true
}

// marker is the watermark a keyed task passes on to the next
// sub-topology: the combined watermark it last acted on, idle when every
// upstream task is (Flink's idleness propagates through an operator the
// same way).
func (c *combiner) marker(from int32) marker {
	m := marker{from: from, wm: c.emitted, idle: len(c.idle) > 0}
	for _, idle := range c.idle {
		if !idle {
			m.idle = false
			break
		}
	}
	return m
}

// wmKeyPrefix starts the changelog keys of a task's watermarks: the
// prefix, then the upstream task (int32, big-endian; -1 for the watermark
// the task acted on); the value is the watermark (int64, big-endian) and
// an idle byte.
var wmKeyPrefix = []byte{0, 'w', 'm'}

func isWatermarkKey(k []byte) bool {
	return len(k) == 7 && k[0] == 0 && k[1] == 'w' && k[2] == 'm'
}

func (c *combiner) flush(write func(k, v []byte)) {
	c.write(write, c.emitted != c.committedEmitted)
}

// emittedFrom is the upstream number under which the watermark the task
// acted on (emitted) is written; readers that do not know it ignore it.
const emittedFrom = -1

// write writes the dirty upstream watermarks and, if withEmitted, the
// emitted one.
func (c *combiner) write(write func(k, v []byte), withEmitted bool) {
	entry := func(from int32, wm int64, idle bool) {
		k := binary.BigEndian.AppendUint32(append([]byte(nil), wmKeyPrefix...), uint32(from))
		v := binary.BigEndian.AppendUint64(nil, uint64(wm))
		if idle {
			v = append(v, 1)
		} else {
			v = append(v, 0)
		}
		write(k, v)
	}
	if withEmitted {
		entry(emittedFrom, c.emitted, false)
	}
	for from := range c.dirty {
		entry(from, c.wm[from], c.idle[from])
	}
	clear(c.dirty)
}

func (c *combiner) commit() {
	copy(c.committedWM, c.wm)
	copy(c.committedIdle, c.idle)
	c.committedEmitted = c.emitted
	clear(c.dirty)
}

func (c *combiner) abort() {
	copy(c.wm, c.committedWM)
	copy(c.idle, c.committedIdle)
	clear(c.dirty)
	// Windows fired by the aborted transaction come back with the
	// tasks' rolled-back state and fire again when the watermark passes
	// them: the consumer rewinds, and advance reports the watermarks
	// read again.
	c.emitted = c.committedEmitted
}

// resumed is the watermark a task restored or rolled back acts on: the
// combination of its upstream watermarks, never below the one it had
// committed; false when it has none.
func (c *combiner) resumed() (int64, bool) {
	if wm, ok := c.advance(); ok {
		return wm, true
	}
	return c.emitted, c.emitted != NoWatermark
}

func (c *combiner) restore(k, v []byte) error {
	if len(v) != 9 {
		return errMarker
	}
	from := int32(binary.BigEndian.Uint32(k[3:]))
	if from == emittedFrom {
		c.emitted = int64(binary.BigEndian.Uint64(v))
		c.committedEmitted = c.emitted
		return nil
	}
	if from < 0 || int(from) >= len(c.wm) {
		return nil
	}
	c.wm[from] = int64(binary.BigEndian.Uint64(v))
	c.idle[from] = v[8] == 1
	c.committedWM[from], c.committedIdle[from] = c.wm[from], c.idle[from]
	return nil
}

// generator derives a first-sub-topology task's watermark from the event
// times it forwards (bounded out-of-orderness, Flink's rule: the largest
// event time minus the bound minus 1 ms) and says it is idle when it
// forwarded nothing for the idle timeout.
type generator struct {
	maxTS int64
	// committedTS is maxTS at the last commit: an aborted transaction
	// rewinds the input, and the watermark must not stay ahead of the
	// records it will forward again.
	committedTS int64
	ooo         int64
	idleTO      time.Duration
	lastSeen    time.Time
}

func (g *generator) see(ts int64) {
	if ts > g.maxTS {
		g.maxTS = ts
	}
}

func (g *generator) commit() { g.committedTS = g.maxTS }
func (g *generator) abort()  { g.maxTS = g.committedTS }

func (g *generator) marker(from int32, now time.Time) marker {
	m := marker{from: from, wm: NoWatermark}
	if g.maxTS != NoWatermark {
		m.wm = g.maxTS - g.ooo - 1
	}
	if g.idleTO > 0 && now.Sub(g.lastSeen) >= g.idleTO {
		m.idle = true
	}
	return m
}
