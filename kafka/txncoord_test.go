package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeTxnBackend records what the coordinator asks of the log.
type fakeTxnBackend struct {
	persisted  [][]byte // every persisted record, JSON
	nextPID    int64
	markers    []string
	offsets    []string
	failMarker error
}

func (b *fakeTxnBackend) persist(_ context.Context, r *txnRecord) error {
	b.persisted = append(b.persisted, r.marshal())
	return nil
}

func (b *fakeTxnBackend) nextProducerID(context.Context) (int64, error) {
	b.nextPID++
	return b.nextPID, nil
}

func (b *fakeTxnBackend) writeMarker(_ context.Context, p tp, pid int64, epoch int16, commit bool) error {
	if b.failMarker != nil {
		return b.failMarker
	}
	b.markers = append(b.markers, fmt.Sprintf("%s/%d pid=%d epoch=%d commit=%v", p.Topic, p.Partition, pid, epoch, commit))
	return nil
}

func (b *fakeTxnBackend) commitOffsets(_ context.Context, group string, offs []txnOffset) error {
	for _, o := range offs {
		b.offsets = append(b.offsets, fmt.Sprintf("%s %s/%d=%d", group, o.Topic, o.Partition, o.Offset))
	}
	return nil
}

func (b *fakeTxnBackend) partitionExists(p tp) bool { return p.Topic != "missing" && p.Partition < 4 }

// replayInto loads every persisted record into a fresh coordinator, as a
// restart does.
func (b *fakeTxnBackend) replayInto() *txnCoordinator {
	c := newTxnCoordinator(b, time.Minute)
	for _, raw := range b.persisted {
		var r txnRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			panic(err)
		}
		c.load(r)
	}
	return c
}

func str(s string) *string { return &s }

func TestTxnCoordinatorCommitAndAbort(t *testing.T) {
	be := &fakeTxnBackend{}
	c := newTxnCoordinator(be, time.Minute)
	ctx, now := context.Background(), time.Unix(100, 0)
	pid, epoch, terr := c.InitProducerID(ctx, now, str("tx"), 10000, -1, -1)
	if terr != nil || pid != 1 || epoch != 0 {
		t.Fatalf("init: %d %d %v", pid, epoch, terr)
	}
	if codes := c.AddPartitions(ctx, now, "tx", pid, epoch, []tp{{"a", 0}, {"b", 1}}); codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("add partitions: %v", codes)
	}
	if code := c.CheckProduce("tx", pid, epoch, tp{"a", 0}); code != 0 {
		t.Fatalf("check produce: %d", code)
	}
	if code := c.CheckProduce("tx", pid, epoch, tp{"a", 3}); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not in the transaction: %d", code)
	}
	if code := c.AddOffsets(ctx, now, "tx", pid, epoch, "g"); code != 0 {
		t.Fatalf("add offsets: %d", code)
	}
	if code := c.CommitOffsets(ctx, "tx", pid, epoch, "g", []txnOffset{{Topic: "in", Partition: 0, Offset: 42}}); code != 0 {
		t.Fatalf("txn offset commit: %d", code)
	}
	if !c.HasPendingOffsets("g", tp{"in", 0}) {
		t.Fatal("pending offsets not reported")
	}
	if terr := c.EndTxn(ctx, "tx", pid, epoch, true); terr != nil {
		t.Fatalf("commit: %v", terr)
	}
	if len(be.markers) != 2 || len(be.offsets) != 1 || be.offsets[0] != "g in/0=42" {
		t.Fatalf("markers %v offsets %v", be.markers, be.offsets)
	}
	// A retried commit succeeds without new markers; an abort now is invalid.
	if terr := c.EndTxn(ctx, "tx", pid, epoch, true); terr != nil {
		t.Fatalf("retried commit: %v", terr)
	}
	if terr := c.EndTxn(ctx, "tx", pid, epoch, false); terr == nil || terr.code != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %v", terr)
	}
	if len(be.markers) != 2 {
		t.Fatalf("retry wrote markers: %v", be.markers)
	}
	// Abort: markers, no offsets.
	c.AddPartitions(ctx, now, "tx", pid, epoch, []tp{{"a", 0}})
	c.AddOffsets(ctx, now, "tx", pid, epoch, "g")
	c.CommitOffsets(ctx, "tx", pid, epoch, "g", []txnOffset{{Topic: "in", Partition: 0, Offset: 99}})
	if terr := c.EndTxn(ctx, "tx", pid, epoch, false); terr != nil {
		t.Fatalf("abort: %v", terr)
	}
	if len(be.markers) != 3 || len(be.offsets) != 1 {
		t.Fatalf("after abort: markers %v offsets %v", be.markers, be.offsets)
	}
}

func TestTxnCoordinatorFencing(t *testing.T) {
	be := &fakeTxnBackend{}
	c := newTxnCoordinator(be, time.Minute)
	ctx, now := context.Background(), time.Unix(100, 0)
	pid, e0, _ := c.InitProducerID(ctx, now, str("tx"), 10000, -1, -1)
	c.AddPartitions(ctx, now, "tx", pid, e0, []tp{{"a", 0}})
	// A new producer instance: the open transaction is aborted with a
	// bumped epoch and the new producer gets a newer one still.
	pid2, e1, terr := c.InitProducerID(ctx, now, str("tx"), 10000, -1, -1)
	if terr != nil || pid2 != pid || e1 <= e0+1 {
		t.Fatalf("re-init: pid %d epoch %d %v", pid2, e1, terr)
	}
	if len(be.markers) != 1 || be.markers[0] != fmt.Sprintf("a/0 pid=%d epoch=%d commit=false", pid, e0+1) {
		t.Fatalf("abort markers: %v", be.markers)
	}
	if codes := c.AddPartitions(ctx, now, "tx", pid, e0, []tp{{"a", 0}}); codes[0] != kerr.ProducerFenced.Code {
		t.Fatalf("fenced producer added partitions: %v", codes)
	}
	if terr := c.EndTxn(ctx, "tx", pid, e0, true); terr == nil || terr.code != kerr.ProducerFenced.Code {
		t.Fatalf("fenced producer ended: %v", terr)
	}
	if code := c.CheckProduce("tx", pid, e0, tp{"a", 0}); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced producer produced: %d", code)
	}
	if code := c.AddOffsets(ctx, now, "other", pid, e1, "g"); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("unknown transactional id: %d", code)
	}
	if _, _, terr := c.InitProducerID(ctx, now, str("tx"), 0, -1, -1); terr == nil || terr.code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("zero timeout: %v", terr)
	}
	if codes := c.AddPartitions(ctx, now, "tx", pid, e1, []tp{{"a", 0}, {"missing", 0}}); codes[0] != kerr.OperationNotAttempted.Code || codes[1] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("missing partition: %v", codes)
	}
}

func TestTxnCoordinatorTimeoutAndRestart(t *testing.T) {
	be := &fakeTxnBackend{}
	c := newTxnCoordinator(be, time.Minute)
	ctx, now := context.Background(), time.Unix(100, 0)
	pid, e, _ := c.InitProducerID(ctx, now, str("tx"), 1000, -1, -1)
	c.AddPartitions(ctx, now, "tx", pid, e, []tp{{"a", 1}})
	if err := c.Tick(ctx, now.Add(999*time.Millisecond)); err != nil || len(be.markers) != 0 {
		t.Fatalf("aborted before its timeout: %v %v", err, be.markers)
	}
	if err := c.Tick(ctx, now.Add(time.Second)); err != nil || len(be.markers) != 1 {
		t.Fatalf("not aborted at its timeout: %v %v", err, be.markers)
	}
	if terr := c.EndTxn(ctx, "tx", pid, e, true); terr == nil || terr.code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("commit after timeout: %v", terr)
	}

	// KIP-360: the timed-out producer may re-initialise with its old epoch
	// (checked on a copy of the state, after the restart checks below).
	// A restart replays the state: the fenced epoch stays fenced.
	r := be.replayInto()
	rec, ok := r.describe("tx")
	if !ok || rec.State != txnCompleteAbort || rec.Epoch != e+1 {
		t.Fatalf("replayed: %+v", rec)
	}
	if terr := r.EndTxn(ctx, "tx", pid, e, true); terr == nil {
		t.Fatal("fenced epoch accepted after restart")
	}
	if p2, e2, terr := r.InitProducerID(ctx, now, str("tx"), 1000, pid, e); terr != nil || p2 != pid || e2 != e+2 {
		t.Fatalf("KIP-360 recovery after timeout: %d %d %v", p2, e2, terr)
	}
	if _, _, terr := r.InitProducerID(ctx, now, str("tx"), 1000, pid, e); terr == nil {
		t.Fatal("stale epoch re-initialised twice")
	}
}

func TestTxnCoordinatorFinishesPreparedAfterFailure(t *testing.T) {
	be := &fakeTxnBackend{}
	c := newTxnCoordinator(be, time.Minute)
	ctx, now := context.Background(), time.Unix(100, 0)
	pid, e, _ := c.InitProducerID(ctx, now, str("tx"), 10000, -1, -1)
	c.AddPartitions(ctx, now, "tx", pid, e, []tp{{"a", 0}})
	be.failMarker = errors.New("disk on fire")
	if terr := c.EndTxn(ctx, "tx", pid, e, true); terr == nil || terr.code != kerr.KafkaStorageError.Code {
		t.Fatalf("commit with failing markers: %v", terr)
	}
	// The decision is persisted: after a restart the commit is finished.
	r := be.replayInto()
	if rec, _ := r.describe("tx"); rec.State != txnPrepareCommit {
		t.Fatalf("persisted state %v, want PrepareCommit", rec.State)
	}
	be.failMarker = nil
	if err := r.Tick(ctx, now); err != nil {
		t.Fatal(err)
	}
	if rec, _ := r.describe("tx"); rec.State != txnCompleteCommit || len(be.markers) != 1 || be.markers[0] != fmt.Sprintf("a/0 pid=%d epoch=%d commit=true", pid, e) {
		t.Fatalf("after tick: %+v %v", rec, be.markers)
	}
	if terr := r.EndTxn(ctx, "tx", pid, e, true); terr != nil {
		t.Fatalf("client retry after recovery: %v", terr)
	}
}

func TestTxnCoordinatorIdempotentProducerIDs(t *testing.T) {
	be := &fakeTxnBackend{}
	c := newTxnCoordinator(be, time.Minute)
	ctx := context.Background()
	p1, e1, _ := c.InitProducerID(ctx, time.Now(), nil, 0, -1, -1)
	p2, _, _ := c.InitProducerID(ctx, time.Now(), nil, 0, -1, -1)
	if p1 == p2 || e1 != 0 {
		t.Fatalf("ids %d %d epoch %d", p1, p2, e1)
	}
	// A request carrying an id and epoch gets a fresh id at epoch 0, as
	// from Kafka, whether the id is an idempotent producer's (anyone's: ids
	// are sequential), one not handed out yet, one at its last epoch
	// (KIP-360 clients ask for a new id then) or a transactional id's.
	tp, te, _ := c.InitProducerID(ctx, time.Now(), str("tx"), 1000, -1, -1)
	seen := map[int64]bool{p1: true, p2: true, tp: true}
	for _, req := range []struct {
		pid   int64
		epoch int16
	}{{p1, 0}, {p2, 5}, {p2 + 100, 0}, {p1, math.MaxInt16 - 1}, {tp, te}} {
		p, e, terr := c.InitProducerID(ctx, time.Now(), nil, 0, req.pid, req.epoch)
		if terr != nil || seen[p] || e != 0 {
			t.Fatalf("init with id %d epoch %d: got %d %d %v, want a fresh id at epoch 0", req.pid, req.epoch, p, e, terr)
		}
		seen[p] = true
	}
}

// TestTxnCoordinatorAbortAtLastEpoch: a transaction left open by a producer
// whose epoch is the last one before the id is exhausted must be aborted
// with markers of its own producer id (which alone closes the transaction
// on its partitions, so the last stable offset moves on), both when a new
// producer initialises the transactional id and when the transaction
// times out; only then does the id get a fresh producer id.
func TestTxnCoordinatorAbortAtLastEpoch(t *testing.T) {
	for _, viaTimeout := range []bool{false, true} {
		be := &fakeTxnBackend{nextPID: 100}
		c := newTxnCoordinator(be, time.Minute)
		ctx, now := context.Background(), time.Unix(100, 0)
		c.load(txnRecord{TransactionalID: "tx", ProducerID: 7, Epoch: math.MaxInt16 - 1, TimeoutMillis: 1000,
			State: txnOngoing, Partitions: []tp{{"a", 0}}, StartMillis: now.UnixMilli()})
		if viaTimeout {
			if err := c.Tick(ctx, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		} else if _, _, terr := c.InitProducerID(ctx, now, str("tx"), 1000, -1, -1); terr != nil {
			t.Fatalf("init: %v", terr)
		}
		want := fmt.Sprintf("a/0 pid=7 epoch=%d commit=false", math.MaxInt16)
		if len(be.markers) != 1 || be.markers[0] != want {
			t.Fatalf("timeout=%v: markers %q, want [%q]", viaTimeout, be.markers, want)
		}
		// The fenced producer re-initialises (KIP-360 after a timeout) or
		// a new one does: either way a fresh producer id at epoch 0.
		pid, epoch, terr := c.InitProducerID(ctx, now, str("tx"), 1000, 7, math.MaxInt16-1)
		if viaTimeout && (terr != nil || pid != 101 || epoch != 0) {
			t.Fatalf("re-init after timeout: %d %d %v", pid, epoch, terr)
		}
	}
}
