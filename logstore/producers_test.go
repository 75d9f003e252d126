package logstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// Attribute bits of a batch header, as the record package sets them.
const (
	testAttrTxn     = 0x10
	testAttrControl = 0x20
)

// dataHdr is the header of an idempotent (or transactional) batch of n records.
func dataHdr(pid int64, epoch int16, seq int32, n int32, txn bool) record.Header {
	h := record.Header{Magic: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, NumRecords: n}
	if txn {
		h.Attributes |= testAttrTxn
	}
	return h
}

// ctrlHdr is the header of a transaction marker.
func ctrlHdr(pid int64, epoch int16) record.Header {
	return record.Header{Magic: 2, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, NumRecords: 1, Attributes: testAttrTxn | testAttrControl}
}

// logged is one batch the harness wrote, kept for replay.
type logged struct {
	h      record.Header
	commit bool
}

// harness plays the partition's part: assigns offsets and calls the hooks the
// way Partition.Append does.
type harness struct {
	t    testing.TB
	s    *producerState
	next int64
	log  []logged
	dir  string
	// clock is the append time of offset 0 (append time grows with offsets)
	clock int64
}

// quietLogger discards log lines; captureLogger collects them.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func captureLogger() (*slog.Logger, *strings.Builder) {
	var sb strings.Builder
	return slog.New(slog.NewTextHandler(&sb, nil)), &sb
}

func newHarness(t testing.TB) *harness {
	dir := t.TempDir()
	s, off, err := loadProducerStateLogger(OSFS{}, dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	if off != 0 {
		t.Fatalf("fresh dir: snapshot offset %d", off)
	}
	return &harness{t: t, s: s, dir: dir, clock: time.Now().UnixMilli()}
}

func (hs *harness) append(h record.Header) (AppendResult, error) {
	dup, isDup, err := hs.s.checkAppend(h)
	if err != nil {
		return AppendResult{}, err
	}
	if isDup {
		return dup, nil
	}
	h.BaseOffset = hs.next
	hs.next = h.LastOffset() + 1
	hs.s.onAppend(h, hs.clock+h.BaseOffset)
	hs.log = append(hs.log, logged{h: h})
	return AppendResult{BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), LogAppendTime: -1}, nil
}

// marker appends a commit or abort marker the way WriteTxnMarker does.
func (hs *harness) marker(pid int64, epoch int16, commit bool) (int64, error) {
	h := ctrlHdr(pid, epoch)
	if err := hs.s.expectMarker(pid, commit); err != nil {
		return 0, err
	}
	defer hs.s.releaseMarker(pid)
	if _, _, err := hs.s.checkAppend(h); err != nil {
		return 0, err
	}
	h.BaseOffset = hs.next
	hs.next++
	hs.s.onAppend(h, hs.clock+h.BaseOffset)
	hs.log = append(hs.log, logged{h: h, commit: commit})
	return h.BaseOffset, nil
}

// reopen writes a snapshot at the current end (when snap), loads the newest
// snapshot and replays the logged batches at and above its offset, the way
// partition recovery does, with onAppendBatch and real control batches.
func (hs *harness) reopen(snap bool) {
	hs.t.Helper()
	if snap {
		if err := hs.s.writeSnapshot(hs.next); err != nil {
			hs.t.Fatal(err)
		}
	}
	s, off, err := loadProducerStateLogger(OSFS{}, hs.dir, quietLogger())
	if err != nil {
		hs.t.Fatal(err)
	}
	for _, l := range hs.log {
		if l.h.BaseOffset < off {
			continue
		}
		var batch []byte
		if l.h.IsControl() {
			batch = record.AppendControlBatch(nil, l.h.ProducerID, l.h.ProducerEpoch, l.commit, 0)
			record.SetBaseOffset(batch, l.h.BaseOffset)
		}
		s.onAppendBatch(l.h, batch, hs.clock+l.h.BaseOffset)
	}
	hs.s = s
}

type stepKind int

const (
	produce stepKind = iota
	commitTxn
	abortTxn
	reopenSnap   // snapshot, reload
	reopenReplay // reload the last snapshot and replay after it
)

type step struct {
	kind  stepKind
	pid   int64
	epoch int16
	seq   int32
	n     int32
	txn   bool
	// expectations
	wantErr  error
	wantDup  bool
	wantBase int64 // checked when >= 0 (for dups and accepted batches)
}

func TestProducerStateMachine(t *testing.T) {
	p := func(pid int64, epoch int16, seq, n int32, base int64) step {
		return step{kind: produce, pid: pid, epoch: epoch, seq: seq, n: n, wantBase: base}
	}
	dup := func(pid int64, epoch int16, seq, n int32, base int64) step {
		return step{kind: produce, pid: pid, epoch: epoch, seq: seq, n: n, wantDup: true, wantBase: base}
	}
	bad := func(pid int64, epoch int16, seq, n int32, err error) step {
		return step{kind: produce, pid: pid, epoch: epoch, seq: seq, n: n, wantErr: err, wantBase: -1}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first batch at sequence 0", []step{p(1, 0, 0, 3, 0), p(1, 0, 3, 2, 3), p(1, 0, 5, 1, 5)}},
		{"unknown producer not at 0", []step{bad(1, 0, 7, 1, ErrOutOfOrderSequence)}},
		{"retry of the last batch", []step{p(1, 0, 0, 3, 0), dup(1, 0, 0, 3, 0), p(1, 0, 3, 1, 3), dup(1, 0, 3, 1, 3)}},
		{"retry of each of the last five", []step{
			p(1, 0, 0, 1, 0), p(1, 0, 1, 1, 1), p(1, 0, 2, 1, 2), p(1, 0, 3, 1, 3), p(1, 0, 4, 1, 4), p(1, 0, 5, 1, 5),
			dup(1, 0, 1, 1, 1), dup(1, 0, 5, 1, 5), dup(1, 0, 3, 1, 3),
			bad(1, 0, 0, 1, ErrOutOfOrderSequence), // sixth from the end: forgotten
			p(1, 0, 6, 1, 6),
		}},
		{"gap", []step{p(1, 0, 0, 2, 0), bad(1, 0, 3, 1, ErrOutOfOrderSequence), p(1, 0, 2, 1, 2)}},
		{"partial overlap is not a duplicate", []step{p(1, 0, 0, 4, 0), bad(1, 0, 0, 2, ErrOutOfOrderSequence), bad(1, 0, 2, 2, ErrOutOfOrderSequence)}},
		{"old epoch is fenced", []step{p(1, 1, 0, 1, 0), bad(1, 0, 1, 1, ErrProducerFenced), bad(1, 0, 0, 1, ErrInvalidProducerEpoch)}},
		{"new epoch restarts at 0", []step{p(1, 0, 0, 5, 0), p(1, 1, 0, 1, 5), bad(1, 0, 5, 1, ErrProducerFenced), p(1, 1, 1, 1, 6)}},
		{"new epoch not at 0", []step{p(1, 0, 0, 5, 0), bad(1, 1, 5, 1, ErrOutOfOrderSequence)}},
		{"duplicates of an old epoch are fenced", []step{p(1, 0, 0, 1, 0), p(1, 1, 0, 1, 1), bad(1, 0, 0, 1, ErrProducerFenced)}},
		{"producers are independent", []step{p(1, 0, 0, 2, 0), p(2, 0, 0, 2, 2), p(1, 0, 2, 1, 4), dup(2, 0, 0, 2, 2), bad(2, 0, 3, 1, ErrOutOfOrderSequence)}},
		{"dedup survives a snapshot", []step{p(1, 0, 0, 2, 0), p(1, 0, 2, 2, 2), {kind: reopenSnap}, dup(1, 0, 0, 2, 0), dup(1, 0, 2, 2, 2), p(1, 0, 4, 1, 4), bad(1, 0, 9, 1, ErrOutOfOrderSequence)}},
		{"dedup survives replay", []step{p(1, 0, 0, 2, 0), {kind: reopenSnap}, p(1, 0, 2, 2, 2), p(1, 1, 0, 1, 4), {kind: reopenReplay}, dup(1, 1, 0, 1, 4), bad(1, 0, 2, 2, ErrProducerFenced), p(1, 1, 1, 1, 5)}},
		{"marker fences an old epoch", []step{
			{kind: produce, pid: 1, epoch: 0, seq: 0, n: 1, txn: true, wantBase: 0},
			{kind: abortTxn, pid: 1, epoch: 1},
			{kind: produce, pid: 1, epoch: 0, seq: 1, n: 1, txn: true, wantErr: ErrProducerFenced, wantBase: -1},
			{kind: produce, pid: 1, epoch: 1, seq: 1, n: 1, txn: true, wantErr: ErrOutOfOrderSequence, wantBase: -1},
			{kind: produce, pid: 1, epoch: 1, seq: 0, n: 1, txn: true, wantBase: 2},
			{kind: commitTxn, pid: 1, epoch: 0, wantErr: ErrProducerFenced},
			{kind: commitTxn, pid: 1, epoch: 1},
		}},
		{"non-transactional batch inside a transaction", []step{
			{kind: produce, pid: 1, seq: 0, n: 1, txn: true, wantBase: 0},
			{kind: produce, pid: 1, seq: 1, n: 1, txn: false, wantErr: ErrInvalidTxnState, wantBase: -1},
			{kind: commitTxn, pid: 1},
			{kind: produce, pid: 1, seq: 1, n: 1, txn: false, wantBase: 2},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t)
			for i, st := range tc.steps {
				switch st.kind {
				case reopenSnap:
					hs.reopen(true)
					continue
				case reopenReplay:
					hs.reopen(false)
					continue
				case commitTxn, abortTxn:
					_, err := hs.marker(st.pid, st.epoch, st.kind == commitTxn)
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: marker err = %v, want %v", i, err, st.wantErr)
					}
					continue
				}
				res, err := hs.append(dataHdr(st.pid, st.epoch, st.seq, st.n, st.txn))
				if st.wantErr != nil {
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: err = %v, want %v", i, err, st.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: unexpected error %v", i, err)
				}
				if res.Duplicate != st.wantDup {
					t.Fatalf("step %d: duplicate = %v, want %v", i, res.Duplicate, st.wantDup)
				}
				if st.wantBase >= 0 && (res.BaseOffset != st.wantBase || res.LastOffset != st.wantBase+int64(st.n)-1) {
					t.Fatalf("step %d: offsets %d..%d, want %d..%d", i, res.BaseOffset, res.LastOffset, st.wantBase, st.wantBase+int64(st.n)-1)
				}
			}
		})
	}
}

func TestProducerSequenceWraparound(t *testing.T) {
	hs := newHarness(t)
	hs.s.producers[7] = &producerEntry{epoch: 3, txnFirst: -1, batches: []batchMeta{
		{firstSeq: math.MaxInt32 - 9, lastSeq: math.MaxInt32 - 1, baseOffset: 0, lastOffset: 8},
	}}
	hs.next = 9
	// One record at MaxInt32; the next batch starts at 0.
	if _, err := hs.append(dataHdr(7, 3, math.MaxInt32, 1, false)); err != nil {
		t.Fatalf("seq MaxInt32: %v", err)
	}
	if _, err := hs.append(dataHdr(7, 3, 1, 1, false)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("seq 1 after MaxInt32: err = %v, want out of order", err)
	}
	if _, err := hs.append(dataHdr(7, 3, 0, 3, false)); err != nil {
		t.Fatalf("seq 0 after MaxInt32: %v", err)
	}
	// A batch whose sequence range itself wraps.
	hs2 := newHarness(t)
	hs2.s.producers[7] = &producerEntry{epoch: 0, txnFirst: -1, batches: []batchMeta{
		{firstSeq: math.MaxInt32 - 5, lastSeq: math.MaxInt32 - 2},
	}}
	res, err := hs2.append(dataHdr(7, 0, math.MaxInt32-1, 4, false)) // MaxInt32-1, MaxInt32, 0, 1
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := hs2.append(dataHdr(7, 0, math.MaxInt32-1, 4, false)); !r.Duplicate || r.BaseOffset != res.BaseOffset {
		t.Fatalf("retry of wrapping batch: %+v, want duplicate of %+v", r, res)
	}
	if _, err := hs2.append(dataHdr(7, 0, 2, 1, false)); err != nil {
		t.Fatalf("seq 2 after wrapping batch: %v", err)
	}
}

func TestTransactionsLSOAndAborted(t *testing.T) {
	hs := newHarness(t)
	must := func(r AppendResult, err error) AppendResult {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	mustMarker := func(off int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	must(hs.append(dataHdr(1, 0, 0, 2, false)))     // 0-1 plain idempotent
	a := must(hs.append(dataHdr(2, 0, 0, 3, true))) // 2-4 txn of producer 2
	must(hs.append(dataHdr(3, 0, 0, 1, true)))      // 5 txn of producer 3
	must(hs.append(dataHdr(2, 0, 3, 1, true)))      // 6
	if got := hs.s.lastStable(hs.next); got != a.BaseOffset {
		t.Fatalf("LSO with open txns = %d, want %d", got, a.BaseOffset)
	}
	abortAt := mustMarker(hs.marker(2, 0, false)) // 7
	if got := hs.s.lastStable(hs.next); got != 5 {
		t.Fatalf("LSO after abort of 2 = %d, want 5", got)
	}
	mustMarker(hs.marker(3, 0, true)) // 8
	if got := hs.s.lastStable(hs.next); got != hs.next {
		t.Fatalf("LSO with no open txn = %d, want HW %d", got, hs.next)
	}
	// A marker for a producer without data here records nothing.
	mustMarker(hs.marker(9, 0, false)) // 9
	want := []AbortedTxn{{ProducerID: 2, FirstOffset: 2, LastOffset: abortAt}}
	if got := hs.s.abortedTxns(0, hs.next); !slices.Equal(got, want) {
		t.Fatalf("aborted = %v, want %v", got, want)
	}
	for _, w := range []struct {
		from, to int64
		n        int
	}{{0, 2, 0}, {0, 3, 1}, {7, 8, 1}, {8, 100, 0}, {3, 4, 1}} {
		if got := hs.s.abortedTxns(w.from, w.to); len(got) != w.n {
			t.Errorf("aborted[%d,%d) = %v, want %d entries", w.from, w.to, got, w.n)
		}
	}
	// The LSO never exceeds the high watermark passed in.
	must(hs.append(dataHdr(2, 0, 4, 1, true))) // 10, opens a new txn
	if got := hs.s.lastStable(5); got != 5 {
		t.Fatalf("LSO bounded by HW: %d", got)
	}
	if got := hs.s.lastStable(100); got != 10 {
		t.Fatalf("LSO = %d, want 10", got)
	}
	// Survives a snapshot round trip and a replay.
	hs.reopen(true)
	if got := hs.s.lastStable(100); got != 10 {
		t.Fatalf("LSO after reopen = %d, want 10", got)
	}
	mustMarker(hs.marker(2, 0, false)) // 11
	hs.reopen(false)                   // replay of the abort marker from bytes
	want = append(want, AbortedTxn{ProducerID: 2, FirstOffset: 10, LastOffset: 11})
	if got := hs.s.abortedTxns(0, hs.next); !slices.Equal(got, want) {
		t.Fatalf("aborted after replay = %v, want %v", got, want)
	}
	// Retention drops entries entirely below the log start.
	hs.s.dropBelow(8)
	if got := hs.s.abortedTxns(0, hs.next); !slices.Equal(got, want[1:]) {
		t.Fatalf("aborted after dropBelow = %v, want %v", got, want[1:])
	}
}

func TestProducerSnapshotFiles(t *testing.T) {
	hs := newHarness(t)
	for i := range int32(4) {
		if _, err := hs.append(dataHdr(1, 0, i, 1, true)); err != nil {
			t.Fatal(err)
		}
		if err := hs.s.writeSnapshot(hs.next); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := listSnapshots(OSFS{}, hs.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snaps, []int64{3, 4}) {
		t.Fatalf("snapshots kept = %v, want [3 4]", snaps)
	}
	entries, _ := os.ReadDir(hs.dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".tmp" {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}

	// Corrupt the newest: the older one is used, and replay restores the rest.
	newest := filepath.Join(hs.dir, snapshotName(4))
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-3] ^= 0x40
	if err := os.WriteFile(newest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	logger, logged := captureLogger()
	s, off, err := loadProducerStateLogger(OSFS{}, hs.dir, logger)
	if err != nil || off != 3 {
		t.Fatalf("load with corrupt newest: off=%d err=%v, want 3", off, err)
	}
	if !strings.Contains(logged.String(), "ignoring corrupt snapshot") || !strings.Contains(logged.String(), snapshotName(4)) {
		t.Fatalf("no warning naming the corrupt snapshot; log:\n%s", logged)
	}
	if first, ok := s.openTxn(1); !ok || first != 0 {
		t.Fatalf("open txn after fallback = %d,%v", first, ok)
	}
	if _, isDup, err := s.checkAppend(dataHdr(1, 0, 2, 1, true)); err != nil || !isDup {
		t.Fatalf("seq 2 should be a duplicate after fallback: dup=%v err=%v", isDup, err)
	}

	// Both corrupt (one truncated, one garbage): start empty at 0.
	os.WriteFile(filepath.Join(hs.dir, snapshotName(3)), data[:20], 0o644)
	s, off, err = loadProducerStateLogger(OSFS{}, hs.dir, logger)
	if err != nil || off != 0 || len(s.producers) != 0 {
		t.Fatalf("all corrupt: off=%d producers=%d err=%v", off, len(s.producers), err)
	}

	// Snapshots above the recovered end are removed.
	if err := removeSnapshotsAbove(OSFS{}, hs.dir, 3); err != nil {
		t.Fatal(err)
	}
	if snaps, _ := listSnapshots(OSFS{}, hs.dir); !slices.Equal(snaps, []int64{3}) {
		t.Fatalf("after removeSnapshotsAbove(3): %v", snaps)
	}
}

func TestSnapshotNameMismatchIsCorrupt(t *testing.T) {
	hs := newHarness(t)
	hs.append(dataHdr(1, 0, 0, 1, false))
	if err := hs.s.writeSnapshot(1); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(hs.dir, snapshotName(1)), filepath.Join(hs.dir, snapshotName(5))); err != nil {
		t.Fatal(err)
	}
	_, off, err := loadProducerStateLogger(OSFS{}, hs.dir, quietLogger())
	if err != nil || off != 0 {
		t.Fatalf("renamed snapshot: off=%d err=%v, want it ignored", off, err)
	}
}

func TestProducerExpiry(t *testing.T) {
	hs := newHarness(t)
	now := time.Now().UnixMilli()
	hs.s.clock = func() int64 { return now - producerExpiryMs - 1000 }
	hs.s.onAppend(record.Header{ProducerID: 1, BaseSequence: 0}, now)
	hs.s.onAppend(record.Header{ProducerID: 2, BaseSequence: 0, BaseOffset: 1, Attributes: testAttrTxn}, now)
	hs.s.onAppend(record.Header{ProducerID: 4, BaseSequence: 0, BaseOffset: 3}, now)
	hs.s.clock = func() int64 { return now }
	// An old batch timestamp does not make an active producer look idle.
	hs.s.onAppend(record.Header{ProducerID: 3, BaseSequence: 0, BaseOffset: 2, MaxTimestamp: 1}, 1)
	hs.s.onAppend(record.Header{ProducerID: 4, BaseSequence: 1, BaseOffset: 4}, now)
	if err := hs.s.writeSnapshot(5); err != nil {
		t.Fatal(err)
	}
	if _, ok := hs.s.producers[1]; ok {
		t.Fatal("idle producer 1 not expired")
	}
	if _, ok := hs.s.producers[2]; !ok {
		t.Fatal("producer 2 with an open transaction expired")
	}
	for _, pid := range []int64{3, 4} {
		if _, ok := hs.s.producers[pid]; !ok {
			t.Fatalf("active producer %d expired", pid)
		}
	}
}

// oracle is the simple model of the property test: every batch written, in
// offset order; it answers LSO and aborted ranges by scanning.
type oracle struct {
	batches []logged
}

func (o *oracle) lso(hw int64) int64 {
	open := map[int64]int64{}
	for _, b := range o.batches {
		pid := b.h.ProducerID
		switch {
		case b.h.IsControl():
			delete(open, pid)
		case b.h.IsTransactional():
			if _, ok := open[pid]; !ok {
				open[pid] = b.h.BaseOffset
			}
		}
	}
	lso := hw
	for _, f := range open {
		lso = min(lso, f)
	}
	return lso
}

func (o *oracle) aborted(from, to int64) []AbortedTxn {
	open := map[int64]int64{}
	var out []AbortedTxn
	for _, b := range o.batches {
		pid := b.h.ProducerID
		switch {
		case b.h.IsControl():
			if f, ok := open[pid]; ok && !b.commit && b.h.BaseOffset >= from && f < to {
				out = append(out, AbortedTxn{ProducerID: pid, FirstOffset: f, LastOffset: b.h.BaseOffset})
			}
			delete(open, pid)
		case b.h.IsTransactional():
			if _, ok := open[pid]; !ok {
				open[pid] = b.h.BaseOffset
			}
		}
	}
	return out
}

// modelProducer is a client in the property test.
type modelProducer struct {
	pid     int64
	epoch   int16
	seq     int32
	txn     bool // a transactional producer
	inTxn   bool
	history []sent // accepted batches of the current epoch, oldest first
}

type sent struct {
	seq, n int32
	base   int64
}

func TestProducerStateProperty(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runProducerProperty(t, seed) })
	}
}

func runProducerProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	hs := newHarness(t)
	var o oracle
	prods := make([]*modelProducer, 4)
	for i := range prods {
		prods[i] = &modelProducer{pid: int64(100 + i), txn: i%2 == 0}
	}
	check := func(step int) {
		t.Helper()
		if got, want := hs.s.lastStable(hs.next), o.lso(hs.next); got != want {
			t.Fatalf("seed %d step %d: LSO %d, oracle %d", seed, step, got, want)
		}
		from := rng.Int64N(hs.next + 1)
		to := from + rng.Int64N(hs.next-from+2)
		got, want := hs.s.abortedTxns(from, to), o.aborted(from, to)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d: aborted[%d,%d) = %v, oracle %v", seed, step, from, to, got, want)
		}
	}
	for step := range 400 {
		p := prods[rng.IntN(len(prods))]
		switch r := rng.IntN(100); {
		case r < 55: // a new batch
			n := int32(1 + rng.IntN(4))
			res, err := hs.append(dataHdr(p.pid, p.epoch, p.seq, n, p.txn))
			if err != nil {
				t.Fatalf("seed %d step %d: append: %v", seed, step, err)
			}
			if res.Duplicate {
				t.Fatalf("seed %d step %d: fresh batch taken as duplicate", seed, step)
			}
			o.batches = append(o.batches, hs.log[len(hs.log)-1])
			p.history = append(p.history, sent{p.seq, n, res.BaseOffset})
			p.seq += n
			if p.txn {
				p.inTxn = true
			}
		case r < 70: // a retry of an earlier batch of this epoch
			if len(p.history) == 0 {
				continue
			}
			i := rng.IntN(len(p.history))
			b := p.history[i]
			res, err := hs.append(dataHdr(p.pid, p.epoch, b.seq, b.n, p.txn))
			if len(p.history)-i <= maxCachedBatches {
				if err != nil || !res.Duplicate || res.BaseOffset != b.base {
					t.Fatalf("seed %d step %d: retry of recent batch: %+v %v, want dup at %d", seed, step, res, err, b.base)
				}
			} else if !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("seed %d step %d: retry of forgotten batch: %+v %v", seed, step, res, err)
			}
		case r < 85: // end the transaction
			if !p.txn {
				continue
			}
			commit := rng.IntN(2) == 0
			if _, err := hs.marker(p.pid, p.epoch, commit); err != nil {
				t.Fatalf("seed %d step %d: marker: %v", seed, step, err)
			}
			o.batches = append(o.batches, hs.log[len(hs.log)-1])
			p.inTxn = false
		case r < 90: // a new epoch: the old one is fenced
			old := p.epoch
			p.epoch++
			if p.txn && p.inTxn { // the coordinator aborts with the new epoch
				if _, err := hs.marker(p.pid, p.epoch, false); err != nil {
					t.Fatal(err)
				}
				o.batches = append(o.batches, hs.log[len(hs.log)-1])
				p.inTxn = false
			}
			p.seq, p.history = 0, nil
			res, err := hs.append(dataHdr(p.pid, p.epoch, 0, 1, p.txn))
			if err != nil || res.Duplicate {
				t.Fatalf("seed %d step %d: first batch of a new epoch: %+v %v", seed, step, res, err)
			}
			o.batches = append(o.batches, hs.log[len(hs.log)-1])
			p.history = append(p.history, sent{0, 1, res.BaseOffset})
			p.seq = 1
			p.inTxn = p.txn
			if _, err := hs.append(dataHdr(p.pid, old, 0, 1, p.txn)); !errors.Is(err, ErrProducerFenced) {
				t.Fatalf("seed %d step %d: old epoch not fenced: %v", seed, step, err)
			}
		case r < 95: // a gap
			if _, err := hs.append(dataHdr(p.pid, p.epoch, p.seq+1+rng.Int32N(5), 1, p.txn)); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("seed %d step %d: gap accepted: %v", seed, step, err)
			}
		default: // restart, from a fresh snapshot or by replay from an older one
			hs.reopen(rng.IntN(2) == 0)
		}
		check(step)
	}
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	hs := newHarness(f)
	f.Add(hs.s.encodeLocked(0), false)
	hs.append(dataHdr(1, 2, 0, 3, true))
	hs.append(dataHdr(5, 0, 0, 1, false))
	hs.marker(1, 2, false)
	hs.append(dataHdr(1, 2, 3, 2, true))
	f.Add(hs.s.encodeLocked(hs.next), false)
	f.Add(hs.s.encodeLocked(hs.next), true)
	f.Add([]byte("SLPS"), false)
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= snapHeaderSize {
			// Explore the body decoder past the length and CRC checks.
			copy(b, snapMagic)
			binary.BigEndian.PutUint16(b[4:], snapVersion)
			binary.BigEndian.PutUint32(b[6:], uint32(len(b)-snapHeaderSize))
			binary.BigEndian.PutUint32(b[10:], crc32.Checksum(b[snapHeaderSize:], castagnoliTable))
		}
		snap, err := decodeProducerSnapshot(b)
		if err != nil {
			if !errors.Is(err, errCorruptSnapshot) {
				t.Fatalf("error %v does not wrap errCorruptSnapshot", err)
			}
			return
		}
		// A snapshot that decodes re-encodes to one that decodes the same.
		s := newProducerState(OSFS{}, "", quietLogger())
		s.install(snap)
		again, err := decodeProducerSnapshot(s.encodeLocked(snap.offset))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if again.offset != snap.offset || again.logStart != snap.logStart || !slices.Equal(again.aborted, snap.aborted) || len(again.producers) != len(snap.producers) {
			t.Fatalf("round trip changed the snapshot")
		}
		for pid, e := range snap.producers {
			g := again.producers[pid]
			if g == nil || g.epoch != e.epoch || g.txnFirst != e.txnFirst || !slices.Equal(g.batches, e.batches) {
				t.Fatalf("round trip changed producer %d", pid)
			}
		}
	})
}

// BenchmarkProducerStateAppend measures the per-batch cost of the
// idempotence checks on the append path (checkAppend + onAppend), with 64
// producers interleaved, the common case of many idempotent clients.
func BenchmarkProducerStateAppend(b *testing.B) {
	s := newProducerState(OSFS{}, b.TempDir(), quietLogger())
	seqs := make([]int32, 64)
	now := time.Now().UnixMilli()
	var off int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pid := int64(i % len(seqs))
		h := dataHdr(pid, 0, seqs[pid], 10, false)
		if _, isDup, err := s.checkAppend(h); err != nil || isDup {
			b.Fatal(err, isDup)
		}
		h.BaseOffset = off
		off += 10
		s.onAppend(h, now)
		seqs[pid] += 10
	}
}

// BenchmarkProducerSnapshot measures writing a snapshot of 10,000 producers
// (encode + fsync + rename), what a segment roll pays.
func BenchmarkProducerSnapshot(b *testing.B) {
	s := newProducerState(OSFS{}, b.TempDir(), quietLogger())
	now := time.Now().UnixMilli()
	for pid := range int64(10000) {
		for j := range int32(5) {
			s.onAppend(record.Header{ProducerID: pid, BaseSequence: j, BaseOffset: pid*5 + int64(j)}, now)
		}
	}
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		if err := s.writeSnapshot(50000 + i); err != nil {
			b.Fatal(err)
		}
	}
}

// removeFailFS fails the removal of files with a suffix.
type removeFailFS struct {
	FS
	suffix string
}

func (f removeFailFS) Remove(name string) error {
	if strings.HasSuffix(name, f.suffix) {
		return &os.PathError{Op: "remove", Path: name, Err: errEIO.Err}
	}
	return f.FS.Remove(name)
}

// TestSnapshotPruneFailureDoesNotFailAppends: a roll writes a
// producer-state snapshot and prunes the old ones; an old snapshot that
// cannot be deleted costs disk space, not correctness, so it must not fail
// the append that rolled (it did, with an error that matched neither
// ErrIO nor anything the Kafka listener answers as a storage error). The
// failure is logged, and the log reopens with every record.
func TestSnapshotPruneFailureDoesNotFailAppends(t *testing.T) {
	dir := t.TempDir()
	opts, logs := testOptions(dir)
	opts.FS = removeFailFS{FS: OSFS{}, suffix: snapshotSuffix}
	l := mustOpen(t, opts)
	p := mustPartition(t, l, "p", TopicConfig{Partitions: 1, SegmentBytes: 1500})
	o := &ackOracle{recs: make(map[int64]record.Record)}
	for i := range 40 {
		b, recs := makeBatch(t, uint64(i), 2, 90, int64(i))
		res, err := p.Append(bg, b)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		o.add(res, b, recs)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "prune") {
		t.Errorf("the failed prune was not logged: %s", logs)
	}
	opts.FS = nil
	l = mustOpen(t, opts)
	defer l.Close()
	tp, _ := l.Topic("p")
	p, _ = tp.Partition(0)
	if n := checkServed(t, p, o); n != int64(len(o.recs)) {
		t.Fatalf("served %d of %d records", n, len(o.recs))
	}
}
