package logstore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/record"
)

// The compaction model test. Random operations on a compacted topic with
// small segments: plain, idempotent and transactional producers (some
// transactions aborted), tombstones, rolls, cleaner passes at a simulated
// clock, restarts (some losing every producer-state snapshot, so that the
// state is rebuilt from the compacted log). A model keeps every record ever
// appended. After every pass and restart the log, read from its start,
// must agree with the model:
//   - offsets strictly increase, and every record read is the record the
//     model has at that offset (same key and value);
//   - read_committed (aborted records skipped), the latest value of every
//     key is the model's latest committed value, and a key whose latest
//     committed record is a tombstone is absent or ends in a tombstone;
//   - below the first dirty offset no aborted record remains and no key
//     appears twice;
//   - no tombstone remains below the delete horizon (the end of the newest
//     pass that completed at least delete.retention.ms before the pass);
//   - a retried batch of an idempotent producer is still recognised as a
//     duplicate (its sequence numbers survived compaction).

type compactRec struct {
	key, value []byte
	txnPID     int64 // producer id of the transaction, -1 if none
	txnID      int   // which transaction of that producer
}

type compactProducer struct {
	pid      int64
	epoch    int16
	seq      int32
	txnOpen  bool
	txnID    int
	lastSent []byte // the last batch as sent, to retry
	lastRes  AppendResult
}

func TestCompactionModel(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runCompactionModel(t, seed, 400) })
	}
}

func runCompactionModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 77))
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.Cleaner = CleanerOptions{Interval: -1, DedupeBufferBytes: 1 << 16}
	retention := 10 * time.Second
	cfg := TopicConfig{Partitions: 1, SegmentBytes: 2048, Cleanup: CleanupCompact, DeleteRetention: &retention,
		MinCleanableDirtyRatio: 0.01}
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "c", cfg)
	defer func() { l.Close() }()

	model := map[int64]compactRec{}
	aborted := map[[2]int64]bool{} // (pid, txn id) -> aborted
	var tombstones []int64
	var passes []passMark
	clock := time.Unix(1_700_000_000, 0)
	producers := []*compactProducer{{pid: 100}, {pid: 101}, {pid: 200}, {pid: 201}} // 2xx are transactional
	keys := 12 + int(seed%3)*8
	ctx := context.Background()

	appendBatch := func(pr *compactProducer, n int) {
		recs := make([]record.Record, n)
		for i := range recs {
			k := fmt.Appendf(nil, "key-%02d", rng.IntN(keys))
			var v []byte
			if rng.IntN(6) != 0 {
				v = fmt.Appendf(nil, "v%d-%d", seed, rng.Uint32())
			}
			recs[i] = record.Record{Key: k, Value: v, Timestamp: clock.UnixMilli()}
		}
		opt := record.BatchOptions{}
		if pr != nil {
			opt = record.BatchOptions{ProducerID: pr.pid, ProducerEpoch: pr.epoch, BaseSequence: pr.seq, Idempotent: true, Transactional: pr.pid >= 200}
		}
		if rng.IntN(3) == 0 {
			opt.Codec = record.Zstd
		}
		b, err := record.AppendBatch(nil, recs, opt)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Append(ctx, b)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		if res.Duplicate {
			t.Fatalf("fresh batch taken for a duplicate: %+v", res)
		}
		for i, r := range recs {
			mr := compactRec{key: r.Key, value: r.Value, txnPID: -1}
			if pr != nil && pr.pid >= 200 {
				mr.txnPID, mr.txnID = pr.pid, pr.txnID
				pr.txnOpen = true
			}
			off := res.BaseOffset + int64(i)
			model[off] = mr
			if r.Value == nil {
				tombstones = append(tombstones, off)
			}
		}
		if pr != nil {
			pr.seq += int32(n)
			pr.lastSent, pr.lastRes = b, res
		}
	}

	firstDirty := func() int64 { return p.CleanerStats().FirstDirty }

	check := func(what string) int {
		t.Helper()
		ls, hw, _ := p.Offsets()
		var got []record.Record
		var gotH []record.Header
		off := ls
		for off < hw {
			res, err := p.Read(off, 1<<16)
			if err != nil {
				t.Fatalf("%s: Read(%d): %v", what, off, err)
			}
			if len(res.Batches) == 0 {
				break
			}
			next := off
			err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
				next = h.LastOffset() + 1
				return record.Decode(raw, func(h record.Header, r record.Record) error {
					if r.Offset < off {
						return nil
					}
					r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
					got = append(got, r)
					gotH = append(gotH, h)
					return nil
				})
			})
			if err != nil {
				t.Fatalf("%s: decode at %d: %v", what, off, err)
			}
			if next <= off {
				t.Fatalf("%s: no progress at %d", what, off)
			}
			off = next
		}
		fd := firstDirty()
		seenClean := map[string]int64{}
		last := int64(-1)
		state := map[string][]byte{}
		for i, r := range got {
			h := gotH[i]
			if r.Offset <= last {
				t.Fatalf("%s: offset %d after %d", what, r.Offset, last)
			}
			last = r.Offset
			if h.IsControl() {
				continue
			}
			m, ok := model[r.Offset]
			if !ok || !bytes.Equal(m.key, r.Key) || !bytes.Equal(m.value, r.Value) || (m.value == nil) != (r.Value == nil) {
				t.Fatalf("%s: offset %d holds %q=%q, the model has %q=%q (known %v)", what, r.Offset, r.Key, r.Value, m.key, m.value, ok)
			}
			isAborted := m.txnPID >= 0 && aborted[[2]int64{m.txnPID, int64(m.txnID)}]
			if r.Offset < fd {
				if isAborted {
					t.Fatalf("%s: aborted record at offset %d below the first dirty offset %d", what, r.Offset, fd)
				}
				if prev, dup := seenClean[string(r.Key)]; dup {
					t.Fatalf("%s: key %q at offsets %d and %d below the first dirty offset %d", what, r.Key, prev, r.Offset, fd)
				}
				seenClean[string(r.Key)] = r.Offset
			}
			if isAborted || (m.txnPID >= 0 && !txnDecided(producers, m)) {
				continue // read_committed does not see it (or not yet)
			}
			if r.Value == nil {
				delete(state, string(r.Key))
			} else {
				state[string(r.Key)] = r.Value
			}
		}
		// The model's committed state.
		want := map[string][]byte{}
		for o := int64(0); o < hw; o++ {
			m, ok := model[o]
			if !ok || (m.txnPID >= 0 && (aborted[[2]int64{m.txnPID, int64(m.txnID)}] || !txnDecided(producers, m))) {
				continue
			}
			if m.value == nil {
				delete(want, string(m.key))
			} else {
				want[string(m.key)] = m.value
			}
		}
		if len(want) != len(state) {
			t.Fatalf("%s: %d live keys in the log, the model has %d", what, len(state), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(state[k], v) {
				t.Fatalf("%s: key %q is %q in the log, %q in the model", what, k, state[k], v)
			}
		}
		// Tombstones below the horizon are gone.
		horizon := int64(0)
		if n := len(passes); n > 0 {
			at := passes[n-1].TimeMs
			for _, pm := range passes[:n-1] {
				if pm.TimeMs <= at-retention.Milliseconds() {
					horizon = max(horizon, pm.End)
				}
			}
		}
		present := map[int64]bool{}
		for _, r := range got {
			present[r.Offset] = true
		}
		for _, o := range tombstones {
			if o < horizon && present[o] {
				t.Fatalf("%s: tombstone at offset %d still present below the delete horizon %d", what, o, horizon)
			}
		}
		// A tombstone that is its key's latest committed record stays
		// until the horizon passes it.
		latest := map[string]int64{}
		for o := int64(0); o < hw; o++ {
			if m, ok := model[o]; ok && (m.txnPID < 0 || (!aborted[[2]int64{m.txnPID, int64(m.txnID)}] && txnDecided(producers, m))) {
				latest[string(m.key)] = o
			}
		}
		for _, o := range latest {
			if model[o].value == nil && o >= horizon && o >= ls && !present[o] {
				t.Fatalf("%s: tombstone at offset %d (its key's latest) removed before the delete horizon %d", what, o, horizon)
			}
		}
		return len(got)
	}

	for step := 0; step < steps; step++ {
		clock = clock.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		switch op := rng.IntN(100); {
		case op < 35:
			appendBatch(nil, 1+rng.IntN(5))
		case op < 55:
			appendBatch(producers[rng.IntN(2)], 1+rng.IntN(4))
		case op < 70:
			pr := producers[2+rng.IntN(2)]
			appendBatch(pr, 1+rng.IntN(4))
		case op < 78:
			pr := producers[2+rng.IntN(2)]
			if !pr.txnOpen {
				continue
			}
			commit := rng.IntN(3) != 0
			if _, err := p.WriteTxnMarker(ctx, pr.pid, pr.epoch, commit); err != nil {
				t.Fatalf("marker: %v", err)
			}
			if !commit {
				aborted[[2]int64{pr.pid, int64(pr.txnID)}] = true
			}
			pr.txnOpen = false
			pr.txnID++
		case op < 82:
			if err := p.roll(false, 0); err != nil {
				t.Fatal(err)
			}
		case op < 84:
			// A retried idempotent batch is still a duplicate.
			pr := producers[rng.IntN(2)]
			if pr.lastSent == nil {
				continue
			}
			res, err := p.Append(ctx, pr.lastSent)
			if err != nil || !res.Duplicate || res.BaseOffset != pr.lastRes.BaseOffset {
				t.Fatalf("step %d: retry of producer %d's last batch: %+v, %v; want a duplicate at %d", step, pr.pid, res, err, pr.lastRes.BaseOffset)
			}
		case op < 94:
			if _, err := p.Compact(clock, rng.IntN(2) == 0); err != nil {
				t.Fatalf("step %d: compact: %v", step, err)
			}
			passes = recordPasses(passes, p)
			check(fmt.Sprintf("step %d after compaction", step))
		default:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				// Lose the producer snapshots: the state is rebuilt
				// from the compacted log.
				pdir := filepath.Join(dir, topicsDir, "c", "0")
				ents, _ := os.ReadDir(pdir)
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), snapshotSuffix) {
						os.Remove(filepath.Join(pdir, e.Name()))
					}
				}
			}
			l = mustOpen(t, opts)
			p = mustPartition(t, l, "c", cfg)
			check(fmt.Sprintf("step %d after restart", step))
		}
	}
	if _, err := p.Compact(clock.Add(time.Hour), true); err != nil {
		t.Fatal(err)
	}
	passes = recordPasses(passes, p)
	if n := check("final"); len(passes) < 2 || n >= len(model)/2 {
		t.Fatalf("the cleaner did little: %d passes, %d of %d records left", len(passes), n, len(model))
	}
	t.Logf("%d passes, %d of %d records left", len(passes), check("final"), len(model))
}

// recordPasses appends the partition's latest pass (from its checkpoint) to
// the test's own pass history.
func recordPasses(passes []passMark, p *Partition) []passMark {
	p.cleaner.mu.Lock()
	defer p.cleaner.mu.Unlock()
	ck := p.cleaner.ckpt.Passes
	if len(ck) == 0 {
		return passes
	}
	lastPass := ck[len(ck)-1]
	if len(passes) == 0 || passes[len(passes)-1] != lastPass {
		passes = append(passes, lastPass)
	}
	return passes
}

// txnDecided reports whether the model record's transaction has ended.
func txnDecided(producers []*compactProducer, m compactRec) bool {
	for _, pr := range producers {
		if pr.pid == m.txnPID {
			return m.txnID < pr.txnID
		}
	}
	return true
}

// TestCompactionOffsetMapFull: with more distinct keys than one pass's
// offset map holds, passes stop where the map fills and later passes go
// on; the result is the same as with a large map.
func TestCompactionOffsetMapFull(t *testing.T) {
	dir := t.TempDir()
	opts, _ := testOptions(dir)
	opts.Cleaner = CleanerOptions{Interval: -1, DedupeBufferBytes: 1} // the smallest map: 921 keys
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "big", TopicConfig{Partitions: 1, SegmentBytes: 4 << 10, Cleanup: CleanupCompact})
	const keys = 3000
	want := appendKeyRounds(t, p, keys, 3)
	if err := p.roll(false, 0); err != nil {
		t.Fatal(err)
	}
	passes := 0
	for prev := int64(-1); p.CleanerStats().FirstDirty != prev; passes++ {
		prev = p.CleanerStats().FirstDirty
		if _, err := p.Compact(time.Now(), true); err != nil {
			t.Fatal(err)
		}
	}
	if passes < 4 {
		t.Fatalf("%d passes: the map should have filled several times", passes)
	}
	expectLatest(t, p, want)
}

// expectLatest checks that p, read from its start, holds each key of want
// once, with want's value, and no other key.
func expectLatest(t testing.TB, p *Partition, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range readCompacted(t, p) {
		if _, dup := got[string(r.Key)]; dup {
			t.Fatalf("key %s twice after compaction", r.Key)
		}
		got[string(r.Key)] = string(r.Value)
	}
	if len(got) != len(want) {
		t.Fatalf("%d keys left, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %s = %q, want %q", k, got[k], v)
		}
	}
}

// readCompacted reads every record of p from its start, across gaps.
func readCompacted(t testing.TB, p *Partition) []record.Record {
	t.Helper()
	var out []record.Record
	ls, hw, _ := p.Offsets()
	for off := ls; off < hw; {
		res, err := p.Read(off, 1<<16)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(res.Batches) == 0 {
			break
		}
		next := off
		err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
			next = h.LastOffset() + 1
			return record.Decode(raw, func(_ record.Header, r record.Record) error {
				if r.Offset >= off {
					r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
					out = append(out, r)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		off = next
	}
	return out
}

// TestCleanerMetrics: a pass shows in the cleaner's metrics.
func TestCleanerMetrics(t *testing.T) {
	opts, _ := testOptions(t.TempDir())
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.Cleaner.Interval = -1
	l := mustOpen(t, opts)
	defer l.Close()
	p := mustPartition(t, l, "cm", TopicConfig{Partitions: 1, Cleanup: CleanupCompact})
	for i := range 4 {
		recs := []record.Record{{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i), Timestamp: 1}}
		if _, err := p.AppendRecords(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.roll(false, 0); err != nil {
		t.Fatal(err)
	}
	if ran, err := p.Compact(time.Now(), false); err != nil || !ran {
		t.Fatalf("compact: ran %v, %v", ran, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				got[mf.GetName()] = m.GetCounter().GetValue()
			} else if m.GetGauge() != nil {
				got[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	if got["sluice_log_cleaner_passes_total"] != 1 || got["sluice_log_cleaner_removed_records_total"] != 3 ||
		got["sluice_log_cleaner_first_dirty_offset"] != 4 || got["sluice_log_cleaner_last_pass_timestamp_seconds"] == 0 ||
		got["sluice_log_cleaner_read_bytes_total"] == 0 {
		t.Fatalf("cleaner metrics after one pass removing 3 of 4 records: %v", got)
	}
}

// TestOffsetMapAgainstMap checks the offset map against a Go map: random
// puts of increasing offsets and gets, until and beyond full.
func TestOffsetMapAgainstMap(t *testing.T) {
	for _, size := range []int{1, 24 * 3000, 24*5000 + 7} {
		m := newOffsetMap(size)
		const base = 1000 // the pass's first dirty offset
		m.reset(base)
		oracle := map[string]int64{}
		putKey := map[int64]string{} // offset -> key of the records put
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		full := false
		for off := int64(base); off < base+20000; off++ {
			k := fmt.Sprintf("key-%d", rng.IntN(6000))
			_, known := oracle[k]
			ok := m.put([]byte(k), off)
			switch {
			case ok:
				oracle[k] = off
				putKey[off] = k
			case known:
				t.Fatalf("size %d: put of known key %s refused", size, k)
			default:
				full = true
				if !m.full() {
					t.Fatalf("size %d: put refused while not full (%d of %d)", size, m.used, m.limit)
				}
			}
			if rng.IntN(4) == 0 {
				probe := fmt.Sprintf("key-%d", rng.IntN(7000))
				got, has := m.get([]byte(probe))
				want, wantHas := oracle[probe]
				if has != wantHas || got != want {
					t.Fatalf("size %d: get(%s) = %d %v, oracle %d %v", size, probe, got, has, want, wantHas)
				}
			}
		}
		if m.used != len(oracle) {
			t.Fatalf("size %d: %d keys used, oracle has %d", size, m.used, len(oracle))
		}
		// The latest-record bitmap agrees with the oracle wherever it
		// reaches, and reaches the offsets from base on.
		reached := 0
		for off := int64(base - 10); off < base+20000; off++ {
			latest, known := m.latest(off)
			if off < base {
				if known {
					t.Fatalf("size %d: the bitmap claims offset %d, below the pass's first dirty offset", size, off)
				}
				continue
			}
			if !known {
				if off-base < int64(len(m.slots)) {
					t.Fatalf("size %d: offset %d out of the bitmap's reach of %d slots' worth", size, off, len(m.slots))
				}
				continue
			}
			reached++
			k, wasPut := putKey[off]
			if want := wasPut && oracle[k] == off; latest != want {
				t.Fatalf("size %d: latest(%d) = %v, oracle %v", size, off, latest, want)
			}
		}
		if reached == 0 {
			t.Fatalf("size %d: the bitmap reached no offset", size)
		}
		// anyLatest over a range agrees with latest over its offsets,
		// including ranges within one word, across words, past the last
		// marked offset and out of reach.
		reach := int64(len(m.bits)) * 64
		for range 3000 {
			from := base - 70 + rng.Int64N(reach+140)
			to := from + rng.Int64N(200)
			if rng.IntN(10) == 0 {
				to = from + rng.Int64N(reach)
			}
			wantFound, wantKnown := false, from >= base && to <= base+reach
			if wantKnown {
				for off := from; off < to; off++ {
					if latest, _ := m.latest(off); latest {
						wantFound = true
						break
					}
				}
			}
			if found, known := m.anyLatest(from, to); found != wantFound || known != wantKnown {
				t.Fatalf("size %d: anyLatest(%d, %d) = %v %v, want %v %v", size, from, to, found, known, wantFound, wantKnown)
			}
		}
		if size == 1 && !full {
			t.Fatal("the smallest map never filled: the test does not test what it says")
		}
		m.reset(0)
		if _, has := m.get([]byte("key-1")); has || m.used != 0 {
			t.Fatal("reset left keys")
		}
		for off := range int64(len(m.bits) * 64) {
			if latest, _ := m.latest(off); latest {
				t.Fatalf("size %d: reset left offset %d marked", size, off)
			}
		}
	}
}

// TestCompactionSkipsSupersededSegments: a pass does not read again the
// dirty segments whose records were all superseded, and the log it leaves
// holds the same records (offsets, keys, values, timestamps) as the pass
// that reads every segment.
func TestCompactionSkipsSupersededSegments(t *testing.T) {
	fill := func(p *Partition) (dirty int64) {
		for round := range 4 {
			for k := 0; k < 300; k += 10 {
				recs := make([]record.Record, 10)
				for i := range recs {
					recs[i] = record.Record{Key: fmt.Appendf(nil, "k%03d", k+i), Value: fmt.Appendf(nil, "r%d", round), Timestamp: int64(1000*round + k)}
				}
				if round == 3 && k >= 150 {
					recs = recs[:5] // the last round leaves half of the keys to earlier rounds
				}
				if _, err := p.AppendRecords(context.Background(), recs); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := p.roll(false, 0); err != nil {
			t.Fatal(err)
		}
		_, dirty = p.DirtyBytes()
		return dirty
	}
	run := func(skip bool) ([]record.Record, CleanerStats, int64) {
		if !skip {
			testHookNoSkip = true
			defer func() { testHookNoSkip = false }()
		}
		opts, _ := testOptions(t.TempDir())
		opts.Cleaner.Interval = -1
		l := mustOpen(t, opts)
		defer l.Close()
		p := mustPartition(t, l, "skip", TopicConfig{Partitions: 1, SegmentBytes: 4 << 10, Cleanup: CleanupCompact})
		dirty := fill(p)
		if ran, err := p.Compact(time.Now(), true); err != nil || !ran {
			t.Fatalf("compact: ran %v, %v", ran, err)
		}
		return readCompacted(t, p), p.CleanerStats(), dirty
	}
	got, st, dirty := run(true)
	want, stAll, dirtyAll := run(false)
	if dirty != dirtyAll || stAll.BytesRead != 2*dirtyAll {
		t.Fatalf("without skipping: %d dirty bytes (%d with), read %d: the pass should read them twice", dirtyAll, dirty, stAll.BytesRead)
	}
	t.Logf("dirty %d bytes; read %d skipping superseded segments, %d reading all", dirty, st.BytesRead, stAll.BytesRead)
	// Rounds 0-2 (about three quarters of the bytes) are superseded,
	// except in segments that hold round 3's records or round 2's
	// records of the keys round 3 left.
	if st.BytesRead > dirty+dirty/2 {
		t.Fatalf("read %d bytes of %d dirty: the superseded segments were read again", st.BytesRead, dirty)
	}
	if len(got) != len(want) || len(got) != 300 {
		t.Fatalf("%d records left, %d when every segment is read again, want 300", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.Timestamp != w.Timestamp || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("record %d: %d %s=%s at %d, reading every segment %d %s=%s at %d", i, g.Offset, g.Key, g.Value, g.Timestamp, w.Offset, w.Key, w.Value, w.Timestamp)
		}
	}
}

// appendKeyRounds appends rounds rounds of one record per key (k00000,
// k00001, ...; value r<round>), ten keys per batch, and returns the latest
// value of each key.
func appendKeyRounds(t *testing.T, p *Partition, keys, rounds int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for round := range rounds {
		for k := 0; k < keys; k += 10 {
			recs := make([]record.Record, 0, 10)
			for i := k; i < min(k+10, keys); i++ {
				key, val := fmt.Sprintf("k%05d", i), fmt.Sprintf("r%d", round)
				recs = append(recs, record.Record{Key: []byte(key), Value: []byte(val), Timestamp: 1})
				want[key] = val
			}
			if _, err := p.AppendRecords(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	return want
}
