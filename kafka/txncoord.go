package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The transaction coordinator: transactional id -> producer id, epoch, state
// and the partitions and groups of the open transaction.
//
// Every state change is persisted through txnBackend.persist (the internal
// topic __transaction_state, fsynced) before it is acted on or acknowledged,
// so a restart replays the latest record per transactional id and finishes
// what was decided: a transaction found in PrepareCommit or PrepareAbort has
// its markers (re)written; an Ongoing one is aborted by its timeout like any
// other abandoned transaction.
//
// EndTxn runs two-phase: persist Prepare{Commit,Abort}, write a control
// batch (commit or abort marker) to every partition of the transaction and,
// on commit, the transaction's offsets to the offset store, then persist
// Complete{Commit,Abort}. Writing a marker twice after a crash is harmless:
// the log closes a producer's transaction once.
//
// Each transactional id has its own lock, held across its I/O, so one slow
// transaction does not stall the others; the map lock is never held across
// I/O.
//
// A transactional produce is verified here (Kafka's KIP-890 part 1, without
// the network hop: the coordinator is in process) and holds its id's lock
// shared from that check until its batches have their offsets in the log
// (lockProduce). Every marker write (EndTxn, InitProducerId fencing, the
// timeout's abort) holds the lock exclusively, so a marker is either
// assigned after a verified batch, closing it, or before the check, which
// then refuses the batch: data can never land after its transaction's
// marker and leave the partition's last stable offset stuck.

// txnState is a transaction's state (Kafka's names).
type txnState int8

const (
	txnEmpty txnState = iota
	txnOngoing
	txnPrepareCommit
	txnPrepareAbort
	txnCompleteCommit
	txnCompleteAbort
)

// String returns Kafka's name for the state.
func (s txnState) String() string {
	return [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort"}[s]
}

// tp is a topic partition.
type tp struct {
	Topic     string `json:"t"`
	Partition int32  `json:"p"`
}

// txnOffset is one offset committed inside a transaction.
type txnOffset struct {
	Topic       string `json:"t"`
	Partition   int32  `json:"p"`
	Offset      int64  `json:"o"`
	LeaderEpoch int32  `json:"e"`
	Metadata    string `json:"m,omitempty"`
	// TopicID is the id of the topic when the offset was recorded (zero
	// in records written before topics had ids): the offset is dropped
	// if the topic is another one when the transaction commits.
	TopicID logstore.TopicID `json:"i,omitzero"`
}

// txnRecord is the persisted state of one transactional id.
type txnRecord struct {
	TransactionalID string                 `json:"id"`
	ProducerID      int64                  `json:"pid"`
	Epoch           int16                  `json:"epoch"`
	TimeoutMillis   int32                  `json:"timeout_ms"`
	State           txnState               `json:"state"`
	Partitions      []tp                   `json:"partitions,omitempty"`
	Offsets         map[string][]txnOffset `json:"offsets,omitempty"` // group -> offsets
	StartMillis     int64                  `json:"start_ms,omitempty"`
	// TimedOut: the last transaction was aborted by its timeout (with a
	// bumped epoch).
	TimedOut bool `json:"timed_out,omitempty"`
}

func (r *txnRecord) marshal() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("kafka: marshalling transaction state: %v", err)) // plain data: cannot fail
	}
	return b
}

// txnBackend is the I/O the coordinator needs. The server implements it on
// the log; tests use a fake.
type txnBackend interface {
	// persist durably stores a transactional id's state.
	persist(ctx context.Context, r *txnRecord) error
	// nextProducerID allocates a producer id never handed out before.
	nextProducerID(ctx context.Context) (int64, error)
	// writeMarker appends a commit or abort control batch to a partition.
	writeMarker(ctx context.Context, p tp, producerID int64, epoch int16, commit bool) error
	// commitOffsets stores a group's offsets durably.
	commitOffsets(ctx context.Context, group string, offs []txnOffset) error
	// partitionExists reports whether a partition exists.
	partitionExists(p tp) bool
}

type txnEntry struct {
	// mu is held exclusively by every coordinator operation and shared by
	// a transactional produce from its check to its append (lockProduce).
	mu  sync.RWMutex
	rec txnRecord
}

type txnCoordinator struct {
	be         txnBackend
	maxTimeout time.Duration

	mu    sync.Mutex
	byID  map[string]*txnEntry
	byPID map[int64]*txnEntry
}

func newTxnCoordinator(be txnBackend, maxTimeout time.Duration) *txnCoordinator {
	return &txnCoordinator{be: be, maxTimeout: maxTimeout, byID: make(map[string]*txnEntry), byPID: make(map[int64]*txnEntry)}
}

// load installs replayed records (latest per id wins; call in log order).
func (c *txnCoordinator) load(r txnRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byID[r.TransactionalID]
	if e == nil {
		e = &txnEntry{}
		c.byID[r.TransactionalID] = e
	} else {
		delete(c.byPID, e.rec.ProducerID)
	}
	e.rec = r
	c.byPID[r.ProducerID] = e
}

func (c *txnCoordinator) entry(id string) *txnEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

func (c *txnCoordinator) setPID(e *txnEntry, old, pid int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byPID[old] == e {
		delete(c.byPID, old)
	}
	c.byPID[pid] = e
}

// save persists e.rec; on failure the in-memory record is restored to prev.
func (c *txnCoordinator) save(ctx context.Context, e *txnEntry, prev txnRecord) error {
	if err := c.be.persist(ctx, &e.rec); err != nil {
		e.rec = prev
		return fmt.Errorf("persisting transaction %q: %w", e.rec.TransactionalID, err)
	}
	return nil
}

// errCode is a Kafka error code with the cause, for logging.
type txnErr struct {
	code int16
	err  error
}

func codeOnly(code int16) *txnErr { return &txnErr{code: code} }

// InitProducerID handles InitProducerId. Without a transactional id it
// allocates a fresh idempotent producer id at epoch 0, whatever id and
// epoch the request carries, as Kafka does: nothing records which client
// an idempotent id was handed to, and ids are sequential, so bumping the
// epoch of a given id would let any client fence another's producer.
// (KIP-360 clients bump an idempotent producer's epoch locally and send
// their id only when the epoch is exhausted, for a new one.) With a
// transactional id, it fences the previous producer by bumping the epoch,
// aborting its open transaction first.
func (c *txnCoordinator) InitProducerID(ctx context.Context, now time.Time, txnID *string, timeoutMillis int32, reqPID int64, reqEpoch int16) (int64, int16, *txnErr) {
	if txnID == nil || *txnID == "" {
		pid, err := c.be.nextProducerID(ctx)
		if err != nil {
			return -1, -1, &txnErr{kerr.UnknownServerError.Code, err}
		}
		return pid, 0, nil
	}
	if timeoutMillis <= 0 || time.Duration(timeoutMillis)*time.Millisecond > c.maxTimeout {
		return -1, -1, codeOnly(kerr.InvalidTransactionTimeout.Code)
	}
	c.mu.Lock()
	e := c.byID[*txnID]
	if e == nil {
		e = &txnEntry{rec: txnRecord{TransactionalID: *txnID, ProducerID: -1, Epoch: -1}}
		c.byID[*txnID] = e
	}
	c.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()

	if reqPID >= 0 && e.rec.ProducerID >= 0 && !e.recoverable(reqPID, reqEpoch) {
		return -1, -1, codeOnly(kerr.ProducerFenced.Code)
	}
	if err := c.finishPrepared(ctx, e); err != nil {
		return -1, -1, err
	}
	prev := e.rec
	oldPID := e.rec.ProducerID
	if e.rec.State == txnOngoing {
		// Fence the old producer and abort what it left open.
		e.fence()
		if err := c.complete(ctx, e, false); err != nil {
			return -1, -1, err
		}
		prev = e.rec
	}
	if err := c.bump(ctx, e); err != nil {
		return -1, -1, err
	}
	e.rec.TimeoutMillis = timeoutMillis
	e.rec.TimedOut = false
	e.rec.State = txnEmpty
	e.rec.Partitions = nil
	e.rec.Offsets = nil
	if err := c.save(ctx, e, prev); err != nil {
		return -1, -1, &txnErr{kerr.UnknownServerError.Code, err}
	}
	c.setPID(e, oldPID, e.rec.ProducerID)
	return e.rec.ProducerID, e.rec.Epoch, nil
}

// bump raises the epoch in memory (a new producer id when it would
// overflow or none exists yet).
func (c *txnCoordinator) bump(ctx context.Context, e *txnEntry) *txnErr {
	if e.rec.ProducerID < 0 || e.rec.Epoch >= math.MaxInt16-1 {
		pid, err := c.be.nextProducerID(ctx)
		if err != nil {
			return &txnErr{kerr.UnknownServerError.Code, err}
		}
		e.rec.ProducerID, e.rec.Epoch = pid, 0
		return nil
	}
	e.rec.Epoch++
	return nil
}

// fence raises the epoch in memory to abort an open transaction: its
// markers must carry the transaction's own producer id, the only one that
// closes it on its partitions, so the epoch may reach MaxInt16 here (an
// epoch bump never hands out); the next bump moves to a new producer id.
// At MaxInt16 already the epoch stays: the markers still close the
// transaction and the coordinator fences the producer.
func (e *txnEntry) fence() {
	if e.rec.Epoch < math.MaxInt16 {
		e.rec.Epoch++
	}
}

// recoverable reports whether a producer re-initialising with its current
// id and epoch may continue (KIP-360): its epoch is the current one, or the
// one just before when the coordinator bumped it to abort a timed-out
// transaction (that bumped epoch was never handed out).
func (e *txnEntry) recoverable(pid int64, epoch int16) bool {
	if pid != e.rec.ProducerID {
		return false
	}
	return epoch == e.rec.Epoch || epoch == e.rec.Epoch-1 && e.rec.State == txnCompleteAbort && e.rec.TimedOut
}

// check validates a request's producer id and epoch against the entry. A
// producer with another epoch is fenced (PRODUCER_FENCED: a newer producer
// initialised the transactional id), unless its epoch was bumped by the
// timeout of its last transaction: then INVALID_PRODUCER_EPOCH tells it to
// re-initialise, which recoverable allows (KIP-360, KIP-588).
func (e *txnEntry) check(pid int64, epoch int16) int16 {
	switch {
	case pid != e.rec.ProducerID:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != e.rec.Epoch && e.recoverable(pid, epoch):
		return kerr.InvalidProducerEpoch.Code
	case epoch != e.rec.Epoch:
		return kerr.ProducerFenced.Code
	}
	return 0
}

// fencedCompat adapts a coordinator's error code to the client: one that
// does not understand PRODUCER_FENCED (KIP-588: before InitProducerId v4,
// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2) gets
// INVALID_PRODUCER_EPOCH, as from Kafka. franz-go treats the two
// differently: INVALID_PRODUCER_EPOCH from the coordinator makes it try to
// recover its producer id (KIP-588), PRODUCER_FENCED is fatal, as it must
// be for a zombie.
func fencedCompat(code int16, understands bool) int16 {
	if code == kerr.ProducerFenced.Code && !understands {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// lookup returns the locked entry for a request, or an error code.
func (c *txnCoordinator) lookup(ctx context.Context, txnID string, pid int64, epoch int16) (*txnEntry, *txnErr) {
	e := c.entry(txnID)
	if e == nil {
		return nil, codeOnly(kerr.InvalidProducerIDMapping.Code)
	}
	e.mu.Lock()
	if code := e.check(pid, epoch); code != 0 {
		e.mu.Unlock()
		return nil, codeOnly(code)
	}
	if err := c.finishPrepared(ctx, e); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	return e, nil
}

// begin moves the entry to Ongoing (recording the start time) if needed.
func (e *txnEntry) begin(now time.Time) {
	if e.rec.State != txnOngoing {
		e.rec.TimedOut = false
		e.rec.State = txnOngoing
		e.rec.StartMillis = now.UnixMilli()
		e.rec.Partitions = nil
		e.rec.Offsets = nil
	}
}

// AddPartitions handles AddPartitionsToTxn; it returns one code per
// partition (0 when added).
func (c *txnCoordinator) AddPartitions(ctx context.Context, now time.Time, txnID string, pid int64, epoch int16, parts []tp) []int16 {
	codes := make([]int16, len(parts))
	fill := func(code int16) []int16 {
		for i := range codes {
			codes[i] = code
		}
		return codes
	}
	e, terr := c.lookup(ctx, txnID, pid, epoch)
	if terr != nil {
		return fill(terr.code)
	}
	defer e.mu.Unlock()
	bad := false
	for i, p := range parts {
		if !c.be.partitionExists(p) {
			codes[i] = kerr.UnknownTopicOrPartition.Code
			bad = true
		}
	}
	if bad {
		for i := range codes {
			if codes[i] == 0 {
				codes[i] = kerr.OperationNotAttempted.Code
			}
		}
		return codes
	}
	prev := e.rec
	prev.Partitions = slices.Clone(prev.Partitions)
	e.begin(now)
	changed := prev.State != txnOngoing
	for _, p := range parts {
		if !slices.Contains(e.rec.Partitions, p) {
			e.rec.Partitions = append(e.rec.Partitions, p)
			changed = true
		}
	}
	if changed {
		if err := c.save(ctx, e, prev); err != nil {
			return fill(kerr.UnknownServerError.Code)
		}
	}
	return codes
}

// AddOffsets handles AddOffsetsToTxn: the group's offsets will be part of
// the transaction.
func (c *txnCoordinator) AddOffsets(ctx context.Context, now time.Time, txnID string, pid int64, epoch int16, group string) int16 {
	e, terr := c.lookup(ctx, txnID, pid, epoch)
	if terr != nil {
		return terr.code
	}
	defer e.mu.Unlock()
	if _, ok := e.rec.Offsets[group]; ok && e.rec.State == txnOngoing {
		return 0
	}
	prev := e.rec
	e.begin(now)
	offs := make(map[string][]txnOffset, len(e.rec.Offsets)+1)
	for g, o := range e.rec.Offsets {
		offs[g] = o
	}
	offs[group] = offs[group] // present, maybe empty
	e.rec.Offsets = offs
	if err := c.save(ctx, e, prev); err != nil {
		return kerr.UnknownServerError.Code
	}
	return 0
}

// CommitOffsets handles TxnOffsetCommit: the offsets are kept with the
// transaction and reach the offset store only if it commits.
func (c *txnCoordinator) CommitOffsets(ctx context.Context, txnID string, pid int64, epoch int16, group string, offs []txnOffset) int16 {
	e, terr := c.lookup(ctx, txnID, pid, epoch)
	if terr != nil {
		// TxnOffsetCommit has no PRODUCER_FENCED: Kafka's offsets log
		// refuses the stale epoch with INVALID_PRODUCER_EPOCH.
		return fencedCompat(terr.code, false)
	}
	defer e.mu.Unlock()
	if e.rec.State != txnOngoing {
		return kerr.InvalidTxnState.Code
	}
	if _, ok := e.rec.Offsets[group]; !ok {
		return kerr.InvalidTxnState.Code // AddOffsetsToTxn first
	}
	prev := e.rec
	merged := make(map[string][]txnOffset, len(e.rec.Offsets))
	for g, o := range e.rec.Offsets {
		merged[g] = o
	}
	cur := slices.Clone(merged[group])
	for _, o := range offs {
		i := slices.IndexFunc(cur, func(x txnOffset) bool { return x.Topic == o.Topic && x.Partition == o.Partition })
		if i >= 0 {
			cur[i] = o
		} else {
			cur = append(cur, o)
		}
	}
	merged[group] = cur
	e.rec.Offsets = merged
	if err := c.save(ctx, e, prev); err != nil {
		return kerr.UnknownServerError.Code
	}
	return 0
}

// EndTxn handles EndTxn: commit or abort the open transaction. Retries of a
// completed EndTxn with the same outcome succeed.
func (c *txnCoordinator) EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit bool) *txnErr {
	e, terr := c.lookup(ctx, txnID, pid, epoch)
	if terr != nil {
		return terr
	}
	defer e.mu.Unlock()
	switch e.rec.State {
	case txnEmpty:
		return nil // nothing was added: nothing to do
	case txnCompleteCommit:
		if commit {
			return nil
		}
		return codeOnly(kerr.InvalidTxnState.Code)
	case txnCompleteAbort:
		if !commit {
			return nil
		}
		return codeOnly(kerr.InvalidTxnState.Code)
	}
	return c.complete(ctx, e, commit)
}

// complete runs both phases of ending e's Ongoing transaction.
func (c *txnCoordinator) complete(ctx context.Context, e *txnEntry, commit bool) *txnErr {
	prev := e.rec
	e.rec.State = txnPrepareAbort
	if commit {
		e.rec.State = txnPrepareCommit
	}
	if err := c.save(ctx, e, prev); err != nil {
		return &txnErr{kerr.UnknownServerError.Code, err}
	}
	return c.finishPrepared(ctx, e)
}

// finishPrepared writes the markers (and, for a commit, the offsets) of a
// transaction in a Prepare state and moves it to Complete. A failure leaves
// it prepared, to be retried by the next request or Tick.
func (c *txnCoordinator) finishPrepared(ctx context.Context, e *txnEntry) *txnErr {
	if e.rec.State != txnPrepareCommit && e.rec.State != txnPrepareAbort {
		return nil
	}
	commit := e.rec.State == txnPrepareCommit
	for _, p := range e.rec.Partitions {
		if err := c.be.writeMarker(ctx, p, e.rec.ProducerID, e.rec.Epoch, commit); err != nil {
			return &txnErr{kerr.KafkaStorageError.Code, fmt.Errorf("transaction %q: marker on %s/%d: %w", e.rec.TransactionalID, p.Topic, p.Partition, err)}
		}
	}
	if commit {
		groups := make([]string, 0, len(e.rec.Offsets))
		for g := range e.rec.Offsets {
			groups = append(groups, g)
		}
		slices.Sort(groups)
		for _, g := range groups {
			if len(e.rec.Offsets[g]) == 0 {
				continue
			}
			if err := c.be.commitOffsets(ctx, g, e.rec.Offsets[g]); err != nil {
				return &txnErr{kerr.KafkaStorageError.Code, fmt.Errorf("transaction %q: offsets of group %q: %w", e.rec.TransactionalID, g, err)}
			}
		}
	}
	prev := e.rec
	e.rec.State = txnCompleteAbort
	if commit {
		e.rec.State = txnCompleteCommit
	}
	e.rec.Partitions = nil
	e.rec.Offsets = nil
	if err := c.save(ctx, e, prev); err != nil {
		return &txnErr{kerr.UnknownServerError.Code, err}
	}
	return nil
}

// CheckProduce validates a transactional batch of a produce request
// naming transactional id txnID (see checkProduce). It holds no lock on
// return: the produce path uses lockProduce, which keeps the answer true
// until the batch is appended.
func (c *txnCoordinator) CheckProduce(txnID string, pid int64, epoch int16, p tp) int16 {
	e := c.lockProduce(txnID)
	if e == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	defer e.mu.RUnlock()
	return e.checkProduce(pid, epoch, p)
}

// lockProduce returns txnID's entry locked shared, or nil if the id is
// unknown. The caller checks each transactional batch with checkProduce
// and unlocks (e.mu.RUnlock) once the batches are assigned their offsets:
// no marker of the transaction can be written in between.
func (c *txnCoordinator) lockProduce(txnID string) *txnEntry {
	e := c.entry(txnID)
	if e != nil {
		e.mu.RLock()
	}
	return e
}

// checkProduce validates a transactional batch of producer pid at epoch
// for partition p, with e.mu held (shared at least): the producer must be
// the entry's (else INVALID_PRODUCER_ID_MAPPING, as from Kafka's
// verification, KIP-890), at its current epoch (an older one:
// INVALID_PRODUCER_EPOCH) and own an Ongoing transaction that includes the
// partition (else INVALID_TXN_STATE, as Kafka 3.6+ answers a produce whose
// partition is not in the transaction).
func (e *txnEntry) checkProduce(pid int64, epoch int16, p tp) int16 {
	switch {
	case pid != e.rec.ProducerID:
		return kerr.InvalidProducerIDMapping.Code
	case epoch < e.rec.Epoch:
		return kerr.InvalidProducerEpoch.Code
	case epoch > e.rec.Epoch || e.rec.State != txnOngoing || !slices.Contains(e.rec.Partitions, p):
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// HasPendingOffsets reports whether an open transaction holds offsets for a
// group's partition (OffsetFetch with RequireStable answers
// UNSTABLE_OFFSET_COMMIT then).
func (c *txnCoordinator) HasPendingOffsets(group string, p tp) bool {
	c.mu.Lock()
	entries := make([]*txnEntry, 0, len(c.byID))
	for _, e := range c.byID {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		found := e.rec.State == txnOngoing || e.rec.State == txnPrepareCommit
		found = found && slices.ContainsFunc(e.rec.Offsets[group], func(o txnOffset) bool { return o.Topic == p.Topic && o.Partition == p.Partition })
		e.mu.Unlock()
		if found {
			return true
		}
	}
	return false
}

// Tick aborts transactions open longer than their timeout (bumping the
// epoch, so the abandoned producer is fenced) and retries transactions left
// prepared by a failed marker write. It returns the first error met.
func (c *txnCoordinator) Tick(ctx context.Context, now time.Time) error {
	c.mu.Lock()
	entries := make([]*txnEntry, 0, len(c.byID))
	for _, e := range c.byID {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	var first error
	for _, e := range entries {
		if err := c.tickOne(ctx, now, e); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (c *txnCoordinator) tickOne(ctx context.Context, now time.Time, e *txnEntry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if terr := c.finishPrepared(ctx, e); terr != nil {
		return terr.err
	}
	if e.rec.State != txnOngoing || now.UnixMilli() < e.rec.StartMillis+int64(e.rec.TimeoutMillis) {
		return nil
	}
	e.fence()
	e.rec.TimedOut = true
	if terr := c.complete(ctx, e, false); terr != nil {
		return terr.err
	}
	return nil
}

// describe returns a copy of a transactional id's state.
func (c *txnCoordinator) describe(txnID string) (txnRecord, bool) {
	e := c.entry(txnID)
	if e == nil {
		return txnRecord{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rec, true
}
