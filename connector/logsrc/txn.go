package logsrc

// Transactional writes through the log's own transactions.
//
// A transactional sink subtask owns MaxPendingCheckpoints+1 slots (more
// when checkpoints fail and pre-committed transactions pile up), each
// with a transactional id "<TransactionalID>-<subtask>-<slot>" and a
// producer id. A slot's transaction begins at the first write after a
// barrier: the slot takes a new epoch, recorded durably in the registry
// topic (TxnRegistryTopic: transactional id -> producer id, epoch) before
// any data is written, and appends transactional batches with sequence
// numbers from 0 in that epoch. At a barrier the transaction is
// pre-committed by PreCommit (its batches are already durable), and
// Commit writes its commit markers, one per partition it touched, once
// the checkpoint is complete (checkpoint.TwoPhaseCommitter). Read-committed readers see nothing of a
// transaction before its commit marker, and nothing past the first open
// transaction of a partition (the last stable offset).
//
// Fencing: a slot whose transactional id is in the registry takes a new
// epoch and writes an abort marker with it to every partition of the
// topic. That aborts whatever a crashed earlier incarnation left open (so
// the last stable offset moves on) and fences a zombie still writing with
// the old epoch. It must come after recovery has committed what the
// restored checkpoint pre-committed (with the old epochs, which a newer
// one would fence), so Open does not fence: Recover does (the runtime
// calls it right after Open), for every id whose subtask maps to this one
// after rescaling; a writer never recovered fences its own slots before
// its first transaction or at Close.
//
// A new epoch per transaction keeps sequence numbers short-lived, so a
// producer that stays idle past the log's producer expiry never meets an
// "unknown producer" sequence error; at epoch 32767 a slot moves to a new
// producer id.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/record"
	"github.com/sluicehq/sluice/stream"
)

// TxnRegistryTopic is the internal topic mapping the transactional ids of
// transactional log sinks to their producer ids and latest epochs.
const TxnRegistryTopic = logstore.SinkTxnsTopic

// Txn describes a pre-committed transaction of a transactional log sink:
// what a checkpoint saves so that recovery can commit it.
type Txn struct {
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	Partitions      []int32
}

// registry is the durable map of transactional ids to producers.
type registry struct {
	p   *logstore.Partition
	ids *logstore.ProducerIDs

	mu sync.Mutex
	m  map[string]producer
}

type producer struct {
	pid   int64
	epoch int16
}

var errBadRegistryRecord = errors.New("malformed transactional-id registry record")

// registry record value, big-endian: version u16 = 1 | producer id i64 | epoch i16.
func encodeRegistryValue(p producer) []byte {
	b := binary.BigEndian.AppendUint16(nil, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(p.pid))
	return binary.BigEndian.AppendUint16(b, uint16(p.epoch))
}

func decodeRegistryValue(b []byte) (producer, error) {
	if len(b) != 12 || binary.BigEndian.Uint16(b) != 1 {
		return producer{}, fmt.Errorf("%w: %d bytes", errBadRegistryRecord, len(b))
	}
	p := producer{pid: int64(binary.BigEndian.Uint64(b[2:])), epoch: int16(binary.BigEndian.Uint16(b[10:]))}
	if p.pid < 0 || p.epoch < 0 {
		return producer{}, fmt.Errorf("%w: producer %d epoch %d", errBadRegistryRecord, p.pid, p.epoch)
	}
	return p, nil
}

func openRegistry(l *logstore.Log, ids *logstore.ProducerIDs) (*registry, error) {
	t, err := l.Topic(TxnRegistryTopic)
	if errors.Is(err, logstore.ErrUnknownTopic) {
		err = l.CreateTopic(TxnRegistryTopic, logstore.TopicConfig{Partitions: 1, Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncAlways}})
		if err == nil || errors.Is(err, logstore.ErrTopicExists) {
			t, err = l.Topic(TxnRegistryTopic)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("transactional-id registry: %w", err)
	}
	p, err := t.Partition(0)
	if err != nil {
		return nil, fmt.Errorf("transactional-id registry: %w", err)
	}
	r := &registry{p: p, ids: ids, m: map[string]producer{}}
	start, hw, _ := p.Offsets()
	for off := start; off < hw; {
		res, err := p.Read(off, DefaultMaxBytes)
		if err != nil {
			return nil, fmt.Errorf("transactional-id registry: %w", err)
		}
		next := off
		_ = record.Batches(res.Batches, func(h record.Header, _ []byte) error {
			next = max(next, h.LastOffset()+1) // compaction may leave empty batches and gaps
			return nil
		})
		if len(res.Batches) == 0 {
			break // compaction removed everything up to the high watermark
		}
		err = record.Decode(res.Batches, func(h record.Header, rec record.Record) error {
			if h.IsControl() {
				return nil
			}
			v, err := decodeRegistryValue(rec.Value)
			if err != nil {
				return fmt.Errorf("offset %d: %w", rec.Offset, err)
			}
			r.m[string(rec.Key)] = v
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("transactional-id registry: %w", err)
		}
		if next == off {
			return nil, fmt.Errorf("transactional-id registry: no progress at offset %d", off)
		}
		off = next
	}
	return r, nil
}

// next gives txnID its next epoch (or a new producer id) and records it
// durably before returning.
func (r *registry) next(ctx context.Context, txnID string) (producer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, ok := r.m[txnID]
	var p producer
	if ok && cur.epoch < math.MaxInt16 {
		p = producer{pid: cur.pid, epoch: cur.epoch + 1}
	} else {
		pid, err := r.ids.Next(ctx)
		if err != nil {
			return producer{}, err
		}
		p = producer{pid: pid}
	}
	rec := []record.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte(txnID), Value: encodeRegistryValue(p)}}
	b, err := record.AppendBatch(nil, rec, record.BatchOptions{})
	if err != nil {
		return producer{}, err
	}
	if _, err := r.p.Append(ctx, b); err != nil {
		return producer{}, fmt.Errorf("record transactional id %s: %w", txnID, err)
	}
	r.m[txnID] = p
	return p, nil
}

// txnIDs returns the registered transactional ids starting with prefix.
func (r *registry) txnIDs(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id := range r.m {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id)
		}
	}
	return out
}

func (r *registry) lookup(txnID string) (producer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.m[txnID]
	return p, ok
}

func (s *Sink) registry() (*registry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reg == nil {
		r, err := openRegistry(s.log, s.cfg.ProducerIDs)
		if err != nil {
			return nil, fmt.Errorf("log sink %s: %w", s.cfg.Topic, err)
		}
		s.reg = r
	}
	return s.reg, nil
}

// slot is one transactional id of a subtask and its transaction.
type slot struct {
	txnID   string
	pid     int64
	epoch   int16
	open    bool
	seq     []int32 // next sequence per partition, in this epoch
	touched []bool  // partitions written in this transaction
}

func (t *slot) describe() Txn {
	x := Txn{TransactionalID: t.txnID, ProducerID: t.pid, Epoch: t.epoch}
	for p, ok := range t.touched {
		if ok {
			x.Partitions = append(x.Partitions, int32(p))
		}
	}
	return x
}

// openTxn opens a transactional writer. It does not fence yet: a recovery
// must first commit what the restored checkpoint pre-committed (with the
// old epochs), so fencing happens in Recover, or, for a writer that is
// never recovered, before its first transaction or at Close.
func (s *Sink) openTxn(_ context.Context, info stream.SubtaskInfo, w *writer) (*txnWriter, error) {
	reg, err := s.registry()
	if err != nil {
		return nil, err
	}
	tw := &txnWriter{writer: w, sink: s, reg: reg, index: info.Index, par: max(info.Parallelism, 1)}
	for range s.cfg.MaxPendingCheckpoints + 1 {
		tw.free = append(tw.free, tw.addSlot())
	}
	return tw, nil
}

// addSlot adds a slot with the next slot number to the writer's.
func (w *txnWriter) addSlot() *slot {
	t := &slot{txnID: slotID(w.sink.cfg.TransactionalID, w.index, len(w.slots)), seq: make([]int32, len(w.parts)), touched: make([]bool, len(w.parts))}
	w.slots = append(w.slots, t)
	return t
}

func slotID(prefix string, subtask, slot int) string {
	return fmt.Sprintf("%s-%d-%d", prefix, subtask, slot)
}

// fence takes a new epoch for every transactional id in the registry that
// this subtask inherits (all: those of every earlier subtask s with
// s % parallelism == this index, so a rescaled job leaves nothing open;
// otherwise those of its own subtask index, including the slots an
// earlier run added when its checkpoints failed) and writes an abort
// marker with it to every partition. That aborts what an earlier incarnation left open (the
// last stable offsets move on) and fences a zombie still writing with an
// old epoch.
func (w *txnWriter) fence(ctx context.Context, all bool) error {
	w.fenced = true
	ids := map[string]bool{}
	for _, t := range w.slots {
		ids[t.txnID] = true
	}
	for _, id := range w.reg.txnIDs(w.cfg.TransactionalID + "-") {
		var sub, n int
		if _, err := fmt.Sscanf(id[len(w.cfg.TransactionalID)+1:], "%d-%d", &sub, &n); err != nil || slotID(w.cfg.TransactionalID, sub, n) != id {
			continue // another sink's prefix that happens to match
		}
		if sub == w.index || all && sub%w.par == w.index {
			ids[id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if _, ok := w.reg.lookup(id); !ok {
			continue // never used: nothing to fence
		}
		p, err := w.reg.next(ctx, id)
		if err != nil {
			return fmt.Errorf("log sink %s: fence %s: %w", w.cfg.Topic, id, err)
		}
		for _, part := range w.parts {
			if _, err := part.WriteTxnMarker(ctx, p.pid, p.epoch, false); err != nil {
				return fmt.Errorf("log sink %s: fence %s: %w", w.cfg.Topic, id, err)
			}
		}
	}
	return nil
}

// txnWriter is the transactional writer. Write, PreCommit, Recover and
// Close run on the sink's task; Commit and Abort run on the job's
// coordinator goroutine, hence mu around pending and free.
type txnWriter struct {
	*writer
	sink  *Sink
	reg   *registry
	index int // subtask index
	par   int // subtask count
	slots []*slot

	fenced bool // the earlier incarnation is fenced
	tpc    bool // driven by two-phase commit (Recover or PreCommit called)

	mu      sync.Mutex
	pending []pendingTxn
	free    []*slot
}

type pendingTxn struct {
	id uint64
	t  *slot
}

// Write implements stream.SinkWriter: the first write after a barrier
// begins a transaction in a free slot.
func (w *txnWriter) Write(ctx context.Context, msgs []connector.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if !w.fenced {
		if err := w.fence(ctx, false); err != nil {
			return err
		}
	}
	if w.txn == nil {
		t := w.take()
		p, err := w.reg.next(ctx, t.txnID)
		if err != nil {
			w.giveBack(t)
			return fmt.Errorf("log sink %s: begin transaction: %w", w.cfg.Topic, err)
		}
		t.pid, t.epoch, t.open = p.pid, p.epoch, true
		clear(t.seq)
		clear(t.touched)
		w.txn = t
	}
	return w.writer.Write(ctx, msgs)
}

// take returns a free slot for the next transaction. With every slot
// pending (checkpoints failed: an aborted checkpoint's transaction waits
// for the next one that completes) it adds a slot rather than end one of
// them: a transaction commits only once a checkpoint holding it
// completes, since committed earlier its records would be written again
// once the job restored an earlier checkpoint and replayed them. The
// slot's id enters the registry at its first transaction, so fencing
// finds it.
func (w *txnWriter) take() *slot {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.free); n > 0 {
		t := w.free[n-1]
		w.free = w.free[:n-1]
		return t
	}
	w.sink.addedSlots.Add(1)
	return w.addSlot()
}

func (w *txnWriter) giveBack(t *slot) {
	w.mu.Lock()
	w.free = append(w.free, t)
	w.mu.Unlock()
}

// end writes t's commit or abort markers on the partitions it touched.
func (w *txnWriter) end(ctx context.Context, t *slot, commit bool) error {
	if !t.open {
		return nil
	}
	for p, ok := range t.touched {
		if !ok {
			continue
		}
		if _, err := w.parts[p].WriteTxnMarker(ctx, t.pid, t.epoch, commit); err != nil {
			return err
		}
	}
	t.open = false
	clear(t.touched)
	return nil
}

// Close implements stream.SinkWriter. It ends the transaction not yet
// pre-committed: aborted (its records are replayed from the last
// checkpoint), or, without checkpoints (no two-phase commit: everything
// is in that transaction) committed at the end of the input. Pre-committed
// transactions are left to Commit (the runtime may call it after Close)
// or to the next run's Recover, since a checkpoint holding them may be
// complete.
func (w *txnWriter) Close(ctx context.Context) error {
	commit := !w.tpc && ctx.Err() == nil
	if ctx.Err() != nil {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = c
	}
	if !w.fenced {
		if err := w.fence(ctx, false); err != nil {
			return err
		}
	}
	t := w.txn
	if t == nil {
		return nil
	}
	w.txn = nil
	err := w.end(ctx, t, commit)
	w.giveBack(t)
	if err != nil {
		return fmt.Errorf("log sink %s: close: %w", w.cfg.Topic, err)
	}
	return nil
}

// PreCommit implements checkpoint.TwoPhaseCommitter: the transaction that
// took the writes since the last barrier (its batches are durable already,
// invisible to read_committed readers) is filed as pre-committed, and the
// next write begins another. The handle names its transactional id,
// producer id, epoch and partitions (nil when nothing was written).
func (w *txnWriter) PreCommit(_ context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	w.tpc = true
	t := w.txn
	if t == nil {
		return nil, nil
	}
	w.txn = nil
	x := t.describe()
	w.mu.Lock()
	w.pending = append(w.pending, pendingTxn{id: uint64(id), t: t})
	w.mu.Unlock()
	return EncodeTxn(x), nil
}

// resolve ends the pre-committed transaction that handle tx names, if it
// is still pending in this writer; one that is not was ended already (a
// slot is reused only after its transaction ended).
func (w *txnWriter) resolve(ctx context.Context, tx checkpoint.Transaction, commit bool) error {
	x, err := DecodeTxn(tx)
	if err != nil {
		return fmt.Errorf("log sink %s: %w", w.cfg.Topic, err)
	}
	w.mu.Lock()
	i := slices.IndexFunc(w.pending, func(p pendingTxn) bool {
		return p.t.txnID == x.TransactionalID && p.t.pid == x.ProducerID && p.t.epoch == x.Epoch
	})
	if i < 0 {
		w.mu.Unlock()
		return nil
	}
	p := w.pending[i]
	w.pending = slices.Delete(w.pending, i, i+1)
	w.mu.Unlock()
	err = w.end(ctx, p.t, commit)
	w.giveBack(p.t)
	if err != nil {
		kind := "abort"
		if commit {
			kind = "commit"
		}
		return fmt.Errorf("log sink %s: %s %s epoch %d: %w", w.cfg.Topic, kind, x.TransactionalID, x.Epoch, err)
	}
	return nil
}

// Commit implements checkpoint.TwoPhaseCommitter: it writes the commit
// markers of the pre-committed transaction tx on the partitions it wrote.
// Committing the same handle again does nothing.
func (w *txnWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return w.resolve(ctx, tx, true)
}

// Abort implements checkpoint.TwoPhaseCommitter: it writes the abort
// markers of the pre-committed transaction tx.
func (w *txnWriter) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return w.resolve(ctx, tx, false)
}

// Recover implements checkpoint.TwoPhaseCommitter. Called once, before the
// first record: it commits the transactions the restored checkpoint had
// pre-committed (with their own producer ids and epochs; one whose
// producer has moved to a newer epoch since was ended already), then
// fences every transactional id this subtask inherits, which aborts
// whatever the earlier run left open after that checkpoint and fences its
// zombies.
func (w *txnWriter) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	w.tpc = true
	for _, tx := range committed {
		x, err := DecodeTxn(tx)
		if err != nil {
			return fmt.Errorf("log sink %s: recover: %w", w.cfg.Topic, err)
		}
		for _, p := range x.Partitions {
			if p < 0 || int(p) >= len(w.parts) {
				return fmt.Errorf("log sink %s: recover %s: partition %d of %d", w.cfg.Topic, x.TransactionalID, p, len(w.parts))
			}
			if _, err := w.parts[p].WriteTxnMarker(ctx, x.ProducerID, x.Epoch, true); err != nil && !errors.Is(err, logstore.ErrProducerFenced) {
				return fmt.Errorf("log sink %s: recover: commit %s epoch %d: %w", w.cfg.Topic, x.TransactionalID, x.Epoch, err)
			}
		}
	}
	return w.fence(ctx, true)
}

// ErrBadTxn reports a transaction handle that does not decode.
var ErrBadTxn = errors.New("malformed log sink transaction handle")

// EncodeTxn encodes x as a checkpoint transaction handle: version byte 1,
// then uvarint-length-prefixed transactional id, producer id (varint),
// epoch (varint), partition count (uvarint) and partitions (varints).
func EncodeTxn(x Txn) checkpoint.Transaction {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(x.TransactionalID)))
	b = append(b, x.TransactionalID...)
	b = binary.AppendVarint(b, x.ProducerID)
	b = binary.AppendVarint(b, int64(x.Epoch))
	b = binary.AppendUvarint(b, uint64(len(x.Partitions)))
	for _, p := range x.Partitions {
		b = binary.AppendVarint(b, int64(p))
	}
	return b
}

// DecodeTxn decodes a handle written by EncodeTxn; anything else fails
// with ErrBadTxn.
func DecodeTxn(b []byte) (Txn, error) {
	if len(b) == 0 || b[0] != 1 {
		return Txn{}, fmt.Errorf("%w: version", ErrBadTxn)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return Txn{}, fmt.Errorf("%w: transactional id", ErrBadTxn)
	}
	x := Txn{TransactionalID: string(b[k : k+int(n)])}
	b = b[k+int(n):]
	pid, k := binary.Varint(b)
	if k <= 0 || pid < 0 {
		return Txn{}, fmt.Errorf("%w: producer id", ErrBadTxn)
	}
	b = b[k:]
	ep, k := binary.Varint(b)
	if k <= 0 || ep < 0 || ep > math.MaxInt16 {
		return Txn{}, fmt.Errorf("%w: epoch", ErrBadTxn)
	}
	b = b[k:]
	np, k := binary.Uvarint(b)
	if k <= 0 || np > uint64(len(b)-k) {
		return Txn{}, fmt.Errorf("%w: partition count", ErrBadTxn)
	}
	b = b[k:]
	x.ProducerID, x.Epoch = pid, int16(ep)
	for range np {
		p, k := binary.Varint(b)
		if k <= 0 || p < 0 || p > math.MaxInt32 {
			return Txn{}, fmt.Errorf("%w: partition", ErrBadTxn)
		}
		x.Partitions = append(x.Partitions, int32(p))
		b = b[k:]
	}
	if len(b) != 0 {
		return Txn{}, fmt.Errorf("%w: %d trailing bytes", ErrBadTxn, len(b))
	}
	return x, nil
}

// The capability the runtime looks for.
var _ checkpoint.TwoPhaseCommitter = (*txnWriter)(nil)
