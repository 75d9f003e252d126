package cluster

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func markerRecord(m marker) *kgo.Record {
	return &kgo.Record{Headers: []kgo.RecordHeader{m.header()}}
}

func TestMarkerRoundTrip(t *testing.T) {
	for _, m := range []marker{{from: 0, wm: NoWatermark}, {from: 3, wm: 1_700_000_000_000, idle: true}, {from: 1 << 20, wm: -5}} {
		got, ok, err := parseMarker(markerRecord(m))
		if err != nil || !ok || got != m {
			t.Fatalf("%+v: got %+v, %v, %v", m, got, ok, err)
		}
	}
	// A data record is not a marker, even with the header.
	r := markerRecord(marker{from: 1, wm: 5})
	r.Key = []byte("k")
	if _, ok, err := parseMarker(r); ok || err != nil {
		t.Fatalf("a keyed record was taken for a marker: %v %v", ok, err)
	}
	// A malformed header is an error, not a silent skip.
	r = &kgo.Record{Headers: []kgo.RecordHeader{{Key: WatermarkHeader, Value: []byte{9, 0}}}}
	if _, ok, err := parseMarker(r); !ok || err == nil {
		t.Fatalf("malformed marker: ok %v err %v", ok, err)
	}
}

// FuzzParseMarker: any header bytes decode to a marker, an error, or
// nothing, without panicking; a decoded marker encodes back to the same
// bytes.
func FuzzParseMarker(f *testing.F) {
	f.Add(marker{from: 2, wm: 77, idle: true}.header().Value)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok, err := parseMarker(&kgo.Record{Headers: []kgo.RecordHeader{{Key: WatermarkHeader, Value: b}}})
		if !ok {
			t.Fatal("a record with the header was not taken for a marker")
		}
		if err != nil {
			return
		}
		back := m.header().Value
		if string(back[2:]) != string(b[2:]) || back[0] != b[0] || (back[1]&1) != (b[1]&1) {
			t.Fatalf("%x decoded to %+v, encodes as %x", b, m, back)
		}
	})
}

func TestCombiner(t *testing.T) {
	c := newCombiner(3)
	adv := func(want int64, ok bool) {
		t.Helper()
		got, gotOK := c.advance()
		if gotOK != ok || (ok && got != want) {
			t.Fatalf("advance = %d, %v; want %d, %v", got, gotOK, want, ok)
		}
	}
	c.observe(marker{from: 0, wm: 100})
	c.observe(marker{from: 1, wm: 50})
	adv(0, false) // upstream 2 not heard from
	c.observe(marker{from: 2, wm: 70})
	adv(50, true)
	c.observe(marker{from: 1, wm: 40}) // watermarks only go forward
	adv(0, false)
	c.observe(marker{from: 1, wm: 200})
	adv(70, true)
	// Commit, then changes that abort.
	written := map[string][]byte{}
	c.flush(func(k, v []byte) { written[string(k)] = v })
	if len(written) != 4 {
		t.Fatalf("flushed %d entries, want 4 (3 upstreams and the watermark acted on)", len(written))
	}
	c.commit()
	c.observe(marker{from: 2, wm: 500, idle: true})
	adv(100, true) // idle upstream 2 left out: min(100, 200)
	c.abort()
	if got, ok := c.resumed(); !ok || got != 70 {
		t.Fatalf("rolled back: resumed = %d, %v; want the committed 70", got, ok)
	}
	// A restored combiner continues from the flushed state.
	r := newCombiner(3)
	for k, v := range written {
		if !isWatermarkKey([]byte(k)) {
			t.Fatalf("key %q is not a watermark key", k)
		}
		if err := r.restore([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := r.resumed(); !ok || got != 70 {
		t.Fatalf("restored: resumed = %d, %v; want 70", got, ok)
	}
	// All idle: the largest published watermark, once.
	a := newCombiner(2)
	a.observe(marker{from: 0, wm: 10})
	a.observe(marker{from: 1, wm: 30})
	if got, ok := a.advance(); !ok || got != 10 {
		t.Fatalf("advance = %d, %v; want 10", got, ok)
	}
	a.observe(marker{from: 1, wm: 30, idle: true})
	if got, ok := a.advance(); ok {
		t.Fatalf("one idle: advanced to %d; the active one is still at 10", got)
	}
	a.observe(marker{from: 0, wm: 10, idle: true})
	if got, ok := a.advance(); !ok || got != 30 {
		t.Fatalf("all idle: advance = %d, %v; want the largest, 30", got, ok)
	}
	if _, ok := a.advance(); ok {
		t.Fatal("all idle: advanced twice")
	}
}

func TestGeneratorIdle(t *testing.T) {
	now := time.Unix(1000, 0)
	g := &generator{maxTS: NoWatermark, committedTS: NoWatermark, ooo: 100, idleTO: time.Second, lastSeen: now}
	if m := g.marker(1, now); m.wm != NoWatermark || m.idle {
		t.Fatalf("fresh generator: %+v", m)
	}
	g.see(5000)
	if m := g.marker(1, now); m.wm != 4899 || m.idle {
		t.Fatalf("after 5000: %+v, want watermark 4899", m)
	}
	if m := g.marker(1, now.Add(time.Second)); !m.idle {
		t.Fatalf("no record for the idle timeout: %+v, want idle", m)
	}
	// An aborted transaction rewinds the input: the watermark goes back
	// to what was committed, or records replayed later would be late.
	g.commit()
	g.see(9000)
	g.abort()
	if m := g.marker(1, now); m.wm != 4899 {
		t.Fatalf("after an abort: %+v, want the committed watermark 4899", m)
	}
}

func TestRecommend(t *testing.T) {
	for _, c := range []struct {
		members    int
		busy, grow float64
		maxTasks   int
		want       int
	}{
		{3, 0.35, 0, 12, 2},   // half the target: fewer
		{3, 0.7, 0, 12, 3},    // at the target
		{3, 0.95, 0, 12, 5},   // busier: ceil(3*0.95/0.7)
		{3, 0.72, 100, 12, 4}, // lag growing above the target: at least one more
		{3, 1, 100, 4, 4},     // never more than the partitions
		{2, 0, 0, 12, 1},      // idle: one
		{0, 0.5, 0, 12, 1},    // no members known
		{4, 0.8, -100, 12, 5}, // lag shrinking: the busy ratio alone
	} {
		if got := Recommend(c.members, c.busy, c.grow, c.maxTasks); got != c.want {
			t.Errorf("Recommend(%d, %v, %v, %d) = %d, want %d", c.members, c.busy, c.grow, c.maxTasks, got, c.want)
		}
	}
}

// TestCombinerMarker: a keyed task passes on the watermark it acted on,
// idle only when every upstream task is.
func TestCombinerMarker(t *testing.T) {
	c := newCombiner(2)
	if m := c.marker(1); m != (marker{from: 1, wm: NoWatermark}) {
		t.Fatalf("before any upstream watermark: %+v", m)
	}
	c.observe(marker{from: 0, wm: 100})
	c.observe(marker{from: 1, wm: 300, idle: true})
	if m := c.marker(1); m != (marker{from: 1, wm: NoWatermark}) {
		t.Fatalf("not advanced yet: %+v", m)
	}
	c.advance()
	if m := c.marker(1); m != (marker{from: 1, wm: 100}) {
		t.Fatalf("one upstream idle: %+v", m)
	}
	c.observe(marker{from: 0, wm: 100, idle: true})
	c.advance()
	if m := c.marker(1); m != (marker{from: 1, wm: 300, idle: true}) {
		t.Fatalf("every upstream idle: %+v", m)
	}
}
