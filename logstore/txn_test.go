package logstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/record"
)

// e2e opens a log in dir with one single-partition topic "t".
func e2eOpen(t *testing.T, dir string, create bool) (*Log, *Partition) {
	t.Helper()
	l, err := Open(Options{Dir: dir, RetentionCheckInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if create {
		if err := l.CreateTopic("t", TopicConfig{Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	tp, err := l.Topic("t")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tp.Partition(0)
	if err != nil {
		t.Fatal(err)
	}
	return l, p
}

// producerBatch encodes n records from an idempotent or transactional producer.
func producerBatch(t *testing.T, pid int64, epoch int16, seq int32, n int, txn bool) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000, Value: []byte("v")}
	}
	b, err := record.AppendBatch(nil, recs, record.BatchOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Idempotent: true, Transactional: txn})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func txnAppend(t *testing.T, p *Partition, b []byte) AppendResult {
	t.Helper()
	r, err := p.Append(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// openTxn appends a one-record batch of producer 9 (epoch 0) that opens
// a transaction on p, and leaves it open.
func openTxn(t *testing.T, p *Partition) AppendResult {
	t.Helper()
	b, err := record.AppendBatch(nil, []record.Record{{Key: []byte("k"), Value: []byte("v"), Timestamp: 1}},
		record.BatchOptions{ProducerID: 9, ProducerEpoch: 0, BaseSequence: 0, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	return txnAppend(t, p, b)
}

func TestPartitionIdempotentAppend(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, p := e2eOpen(t, dir, true)
	r0 := txnAppend(t, p, producerBatch(t, 7, 0, 0, 3, false))
	r1 := txnAppend(t, p, producerBatch(t, 7, 0, 3, 2, false))
	if r0.BaseOffset != 0 || r1.BaseOffset != 3 || r1.LastOffset != 4 {
		t.Fatalf("offsets %+v %+v", r0, r1)
	}
	d, err := p.Append(ctx, producerBatch(t, 7, 0, 0, 3, false))
	if err != nil || !d.Duplicate || d.BaseOffset != 0 || d.LastOffset != 2 {
		t.Fatalf("retry: %+v %v", d, err)
	}
	if _, err := p.Append(ctx, producerBatch(t, 7, 0, 9, 1, false)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	txnAppend(t, p, producerBatch(t, 7, 1, 0, 1, false)) // new epoch, offset 5
	if _, err := p.Append(ctx, producerBatch(t, 7, 0, 5, 1, false)); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("old epoch: %v", err)
	}
	if _, hw, _ := p.Offsets(); hw != 6 {
		t.Fatalf("high watermark %d, want 6 (nothing written twice)", hw)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the retry is still recognised, from the snapshot
	// written by Close and, with the snapshots removed, by replay.
	for _, dropSnapshots := range []bool{false, true} {
		if dropSnapshots {
			removeSnapshots(t, dir)
		}
		l, p = e2eOpen(t, dir, false)
		d, err = p.Append(ctx, producerBatch(t, 7, 1, 0, 1, false))
		if err != nil || !d.Duplicate || d.BaseOffset != 5 {
			t.Fatalf("retry after restart (snapshots dropped: %v): %+v %v", dropSnapshots, d, err)
		}
		if _, err := p.Append(ctx, producerBatch(t, 7, 0, 5, 1, false)); !errors.Is(err, ErrProducerFenced) {
			t.Fatalf("old epoch after restart: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// removeSnapshots deletes every producer-state snapshot under dir, forcing
// recovery to rebuild the state by replaying the log.
func removeSnapshots(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, snapshotSuffix) {
			n++
			return os.Remove(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no snapshot found to remove")
	}
}

func TestPartitionTransactions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, p := e2eOpen(t, dir, true)
	txnAppend(t, p, producerBatch(t, 1, 0, 0, 2, false))     // 0-1 plain
	a := txnAppend(t, p, producerBatch(t, 2, 0, 0, 2, true)) // 2-3 txn A (will abort)
	c := txnAppend(t, p, producerBatch(t, 3, 0, 0, 1, true)) // 4 txn C (will commit)
	txnAppend(t, p, producerBatch(t, 2, 0, 2, 1, true))      // 5 txn A
	if _, hw, lso := p.Offsets(); hw != 6 || lso != a.BaseOffset {
		t.Fatalf("open txns: hw=%d lso=%d, want 6, %d", hw, lso, a.BaseOffset)
	}
	abortAt, err := p.WriteTxnMarker(ctx, 2, 0, false)
	if err != nil || abortAt != 6 {
		t.Fatalf("abort marker: %d %v", abortAt, err)
	}
	if _, _, lso := p.Offsets(); lso != c.BaseOffset {
		t.Fatalf("after abort: lso=%d, want %d", lso, c.BaseOffset)
	}
	if _, err := p.WriteTxnMarker(ctx, 3, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, hw, lso := p.Offsets(); lso != hw || hw != 8 {
		t.Fatalf("all closed: hw=%d lso=%d", hw, lso)
	}
	want := []AbortedTxn{{ProducerID: 2, FirstOffset: 2, LastOffset: 6}}
	if got := p.AbortedTransactions(0, 8); !slices.Equal(got, want) {
		t.Fatalf("aborted = %v, want %v", got, want)
	}
	// A stale epoch cannot end a transaction; a client cannot send markers.
	if _, err := p.WriteTxnMarker(ctx, 2, 0, true); err != nil {
		t.Fatalf("marker without an open transaction: %v", err)
	}
	txnAppend(t, p, producerBatch(t, 2, 3, 0, 1, true)) // epoch 3 opens a txn at 9
	if _, err := p.WriteTxnMarker(ctx, 2, 2, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("stale marker: %v", err)
	}
	client := record.AppendControlBatch(nil, 2, 3, true, 0)
	if _, err := p.Append(ctx, client); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("control batch from a client: %v", err)
	}
	// Read returns the last stable offset too.
	if rr, err := p.Read(0, 1<<20); err != nil || rr.LastStable != 9 {
		t.Fatalf("read: lso=%d err=%v, want 9", rr.LastStable, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	for _, dropSnapshots := range []bool{false, true} {
		if dropSnapshots {
			removeSnapshots(t, dir)
		}
		l, p = e2eOpen(t, dir, false)
		if got := p.AbortedTransactions(0, 100); !slices.Equal(got, want) {
			t.Fatalf("aborted after restart (snapshots dropped: %v) = %v, want %v", dropSnapshots, got, want)
		}
		if lso := p.pstate.lastStable(10); lso != 9 {
			t.Fatalf("producer state after restart (snapshots dropped: %v): lso=%d, want 9", dropSnapshots, lso)
		}
		// The published offsets must reflect the recovered open transaction.
		if _, hw, lso := p.Offsets(); hw != 10 || lso != 9 {
			t.Fatalf("after restart (snapshots dropped: %v): hw=%d lso=%d, want 10, 9", dropSnapshots, hw, lso)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	l, p = e2eOpen(t, dir, false)
	defer l.Close()
	at, err := p.WriteTxnMarker(ctx, 2, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, AbortedTxn{ProducerID: 2, FirstOffset: 9, LastOffset: at})
	if got := p.AbortedTransactions(0, 100); !slices.Equal(got, want) {
		t.Fatalf("aborted = %v, want %v", got, want)
	}
	if got := p.AbortedTransactions(7, 9); len(got) != 0 {
		t.Fatalf("aborted in [7,9) = %v, want none", got)
	}
}

// txnModelBatch is one batch the property test appended, with the fate of
// its transaction once known.
type txnModelBatch struct {
	pid      int64
	txn      int // transaction number of the producer, -1 for non-transactional
	base     int64
	n        int
	values   []string
	sequence int32
}

// readCommitted reads the partition the way a read_committed Kafka consumer
// does: only below the last stable offset, skipping control batches and the
// batches of aborted transactions named by AbortedTransactions.
func readCommitted(t *testing.T, p *Partition, lso int64) []string {
	t.Helper()
	start, _, _ := p.Offsets()
	aborted := p.AbortedTransactions(start, lso)
	slices.SortFunc(aborted, func(a, b AbortedTxn) int { return int(a.FirstOffset - b.FirstOffset) })
	abortedNow := map[int64]bool{}
	var out []string
	for off := start; off < lso; {
		res, err := p.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Batches) == 0 {
			break
		}
		err = record.Batches(res.Batches, func(h record.Header, raw []byte) error {
			off = h.LastOffset() + 1
			if h.BaseOffset >= lso {
				return nil
			}
			for len(aborted) > 0 && aborted[0].FirstOffset <= h.BaseOffset {
				abortedNow[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
			if h.IsControl() {
				return record.Decode(raw, func(h record.Header, r record.Record) error {
					if typ, err := record.ParseControlKey(r.Key); err == nil && typ == record.ControlAbort {
						delete(abortedNow, h.ProducerID)
					}
					return nil
				})
			}
			if h.IsTransactional() && abortedNow[h.ProducerID] {
				return nil
			}
			return record.Decode(raw, func(h record.Header, r record.Record) error {
				if r.Offset < lso {
					out = append(out, string(r.Value))
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestPartitionTransactionsProperty drives Partition.Append and
// WriteTxnMarker with random transactional and idempotent producers, retries
// and restarts, and checks what a read_committed reader sees against a model:
// exactly the non-transactional records and those of committed transactions,
// below the last stable offset, which must be the first offset of the oldest
// open transaction.
func TestPartitionTransactionsProperty(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			l, p := e2eOpen(t, dir, true)
			defer func() { l.Close() }()
			type prod struct {
				pid   int64
				txn   bool
				seq   int32
				txnNo int
				open  bool
				sent  []txnModelBatch // recent batches, for retries
			}
			prods := []*prod{{pid: 1, txn: true}, {pid: 2, txn: true}, {pid: 3, txn: true}, {pid: 10}}
			var batches []txnModelBatch
			fate := map[[2]int64]bool{} // (pid, txnNo) -> committed; absent while open
			check := func(when string) {
				t.Helper()
				_, hw, _ := p.Offsets()
				lso := hw
				var want []string
				for _, b := range batches {
					if b.txn >= 0 {
						if _, done := fate[[2]int64{b.pid, int64(b.txn)}]; !done {
							lso = min(lso, b.base)
						}
					}
				}
				for _, b := range batches {
					committed, done := fate[[2]int64{b.pid, int64(b.txn)}]
					if b.base < lso && (b.txn < 0 || done && committed) {
						want = append(want, b.values...)
					}
				}
				if _, _, got := p.Offsets(); got != lso {
					t.Fatalf("%s: last stable %d, model %d", when, got, lso)
				}
				if got := readCommitted(t, p, lso); !slices.Equal(got, want) {
					t.Fatalf("%s: read_committed sees\n%v\nmodel\n%v", when, got, want)
				}
			}
			for step := range 150 {
				pr := prods[rng.IntN(len(prods))]
				switch r := rng.IntN(100); {
				case r < 55:
					n := 1 + rng.IntN(3)
					txnNo := -1
					if pr.txn {
						txnNo = pr.txnNo
					}
					b := producerBatch(t, pr.pid, 0, pr.seq, n, pr.txn)
					vals := make([]string, n)
					for i := range vals {
						vals[i] = fmt.Sprintf("p%d-s%d", pr.pid, pr.seq+int32(i))
					}
					b = rebatch(t, b, vals)
					res, err := p.Append(ctx, b)
					if err != nil || res.Duplicate {
						t.Fatalf("step %d: append %+v %v", step, res, err)
					}
					mb := txnModelBatch{pid: pr.pid, txn: txnNo, base: res.BaseOffset, n: n, values: vals, sequence: pr.seq}
					batches = append(batches, mb)
					pr.sent = append(pr.sent, mb)
					if len(pr.sent) > maxCachedBatches {
						pr.sent = pr.sent[1:]
					}
					pr.seq += int32(n)
					pr.open = pr.txn
				case r < 70:
					if len(pr.sent) == 0 {
						continue
					}
					mb := pr.sent[rng.IntN(len(pr.sent))]
					b := rebatch(t, producerBatch(t, pr.pid, 0, mb.sequence, mb.n, pr.txn), mb.values)
					res, err := p.Append(ctx, b)
					if err != nil || !res.Duplicate || res.BaseOffset != mb.base {
						t.Fatalf("step %d: retry: %+v %v, want duplicate at %d", step, res, err, mb.base)
					}
				case r < 88:
					if !pr.txn || !pr.open {
						continue
					}
					commit := rng.IntN(2) == 0
					if _, err := p.WriteTxnMarker(ctx, pr.pid, 0, commit); err != nil {
						t.Fatalf("step %d: marker: %v", step, err)
					}
					fate[[2]int64{pr.pid, int64(pr.txnNo)}] = commit
					pr.txnNo++
					pr.open = false
					pr.sent = nil // batches of an ended transaction are not retried
				default:
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					if rng.IntN(2) == 0 {
						removeSnapshots(t, dir)
					}
					l, p = e2eOpen(t, dir, false)
				}
				check(fmt.Sprintf("step %d", step))
			}
		})
	}
}

// rebatch re-encodes batch b (same producer fields) with the given values.
func rebatch(t *testing.T, b []byte, values []string) []byte {
	t.Helper()
	h, err := record.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Timestamp: 1_700_000_000_000, Value: []byte(v)}
	}
	out, err := record.AppendBatch(nil, recs, record.BatchOptions{
		ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
		Idempotent: true, Transactional: h.IsTransactional(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWaitStableWakesOnMarker: a waiter for the last stable offset wakes
// when the transaction's marker is appended, not before and not by polling.
func TestWaitStableWakesOnMarker(t *testing.T) {
	_, p := e2eOpen(t, t.TempDir(), true)
	ctx := context.Background()
	res := openTxn(t, p)
	if _, _, lso := p.Offsets(); lso != res.BaseOffset {
		t.Fatalf("last stable offset %d with the transaction open, want %d", lso, res.BaseOffset)
	}
	woke := make(chan error, 1)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	go func() { woke <- p.WaitStable(wctx, res.BaseOffset) }()
	// An unrelated append moves the high watermark, not the LSO: the
	// waiter stays.
	if _, err := p.AppendRecords(ctx, []record.Record{{Key: []byte("x"), Value: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		t.Fatalf("WaitStable returned (%v) while the transaction is open", err)
	default:
	}
	if _, err := p.WriteTxnMarker(ctx, 9, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("WaitStable after the commit marker: %v", err)
	}
}
