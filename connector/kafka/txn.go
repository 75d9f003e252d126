package kafka

// The transactional writer: exactly-once through Kafka transactions driven
// by the runtime's two-phase commit (checkpoint.TwoPhaseCommitter).
//
// Every transaction has a transactional id of its own,
// "<TransactionalID>-<subtask>-<n>", n counting the subtask's transactions
// (contiguously, across runs restored from a checkpoint), and its own
// client. So the handle of a pre-committed transaction, its transactional
// id, producer id and epoch, names exactly one transaction, and Kafka's
// answer to an EndTxn for it says what became of that transaction (see
// resume): nothing of this writer moves that id to a newer epoch once the
// transaction is pre-committed. Starting a client and initialising its id
// (FindCoordinator, InitProducerId) takes round trips to the cluster, so
// the writer does it for the next transaction in the background while the
// current one runs (see spare): at a barrier the next transaction begins
// at once, and those round trips stay off the path of the records and of
// the checkpoint. Recovery commits the handles of the
// restored checkpoint with EndTxn through kmsg, with the handles' own
// producer ids and epochs (the way Flink's Kafka sink resumes a
// transaction), and only then initialises (InitProducerId) the ids the
// crashed run may have used after that checkpoint, n from the handles'
// Next upwards until one the coordinator has never seen (it answers epoch
// 0): that aborts their open transactions (the last stable offsets move
// on) and fences their zombies.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/connector"
)

// freshStartProbes bounds how many transactional ids a writer without a
// restored checkpoint initialises, from n = 0, looking for one the
// coordinator has never seen (see txnWriter.ready).
const freshStartProbes = 64

// maxTxnIDLen bounds the transactional id in a handle (handles live in
// the checkpoint manifest and must stay small).
const maxTxnIDLen = 512

// Txn describes what a transactional sink subtask pre-committed at a
// checkpoint: what the checkpoint saves (EncodeTxn) so that recovery can
// commit it in another process.
type Txn struct {
	// Checkpoint is the checkpoint that pre-committed it (0: the final
	// one, at the end of the input).
	Checkpoint uint64
	// Subtask is the index of the subtask that wrote it.
	Subtask int
	// Next is the number of the subtask's next transaction after this
	// pre-commit: recovery aborts what the subtask began from there on.
	Next uint64
	// TransactionalID, ProducerID and Epoch name the pre-committed
	// transaction; TransactionalID is empty (ProducerID and Epoch -1)
	// when the subtask had written nothing since the previous barrier.
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	// Seq is the transaction's number n in its transactional id.
	Seq uint64
}

// ErrBadTransaction is returned for a transaction handle that does not
// decode.
var ErrBadTransaction = errors.New("kafka sink: bad transaction handle")

// ErrTransactionLost reports a pre-committed transaction that Kafka no
// longer commits: its coordinator aborted it (the transaction timeout
// expired) or no longer knows it. Its records are lost.
var ErrTransactionLost = errors.New("kafka sink: pre-committed transaction lost")

// ErrTransactionTimedOut reports a transaction that was open longer than
// the transaction timeout when its checkpoint's barrier came: the broker
// aborts it, so it cannot be pre-committed. PreCommit fails with it, which
// fails the job before the checkpoint completes: it restores from the
// previous checkpoint and writes the records again.
var ErrTransactionTimedOut = errors.New("kafka sink: transaction open beyond its transaction timeout")

// EncodeTxn encodes x as a checkpoint transaction handle: version byte 1,
// then checkpoint, subtask, next and seq (uvarints), the transactional id
// (uvarint length and bytes), producer id and epoch (varints).
func EncodeTxn(x Txn) checkpoint.Transaction {
	b := []byte{1}
	b = binary.AppendUvarint(b, x.Checkpoint)
	b = binary.AppendUvarint(b, uint64(x.Subtask))
	b = binary.AppendUvarint(b, x.Next)
	b = binary.AppendUvarint(b, x.Seq)
	b = binary.AppendUvarint(b, uint64(len(x.TransactionalID)))
	b = append(b, x.TransactionalID...)
	b = binary.AppendVarint(b, x.ProducerID)
	return binary.AppendVarint(b, int64(x.Epoch))
}

// DecodeTxn decodes a handle written by EncodeTxn; anything else fails
// with ErrBadTransaction.
func DecodeTxn(b []byte) (Txn, error) {
	if len(b) == 0 || b[0] != 1 {
		return Txn{}, fmt.Errorf("%w: version", ErrBadTransaction)
	}
	b = b[1:]
	var u [5]uint64
	for i := range u {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return Txn{}, fmt.Errorf("%w: field %d", ErrBadTransaction, i)
		}
		u[i], b = v, b[k:]
	}
	if u[1] > math.MaxInt32 {
		return Txn{}, fmt.Errorf("%w: subtask %d", ErrBadTransaction, u[1])
	}
	if u[4] > maxTxnIDLen || u[4] > uint64(len(b)) {
		return Txn{}, fmt.Errorf("%w: transactional id length %d", ErrBadTransaction, u[4])
	}
	x := Txn{Checkpoint: u[0], Subtask: int(u[1]), Next: u[2], Seq: u[3], TransactionalID: string(b[:u[4]])}
	b = b[u[4]:]
	pid, k := binary.Varint(b)
	if k <= 0 {
		return Txn{}, fmt.Errorf("%w: producer id", ErrBadTransaction)
	}
	b = b[k:]
	ep, k := binary.Varint(b)
	if k <= 0 || ep < -1 || ep > math.MaxInt16 {
		return Txn{}, fmt.Errorf("%w: epoch", ErrBadTransaction)
	}
	b = b[k:]
	if len(b) != 0 {
		return Txn{}, fmt.Errorf("%w: %d trailing bytes", ErrBadTransaction, len(b))
	}
	x.ProducerID, x.Epoch = pid, int16(ep)
	if x.TransactionalID == "" {
		if pid != -1 || ep != -1 || x.Seq != 0 {
			return Txn{}, fmt.Errorf("%w: producer without transactional id", ErrBadTransaction)
		}
	} else if pid < 0 || ep < 0 || x.Seq >= x.Next {
		return Txn{}, fmt.Errorf("%w: transaction %q producer %d epoch %d seq %d next %d", ErrBadTransaction, x.TransactionalID, pid, ep, x.Seq, x.Next)
	}
	return x, nil
}

func (s *Sink) txnID(subtask int, n uint64) string {
	return fmt.Sprintf("%s-%d-%d", s.cfg.TransactionalID, subtask, n)
}

// txnWriter is the transactional writer. Write, PreCommit, Recover and
// Close run on the sink's task; Commit and Abort run on the job's
// coordinator, maybe concurrently and after Close, and the spare's
// preparation on a goroutine of its own, hence mu.
type txnWriter struct {
	sink  *Sink
	index int
	ctl   *kgo.Client // no transactional id: kmsg requests to coordinators

	// bg is the context of the spare's preparation; Close cancels it.
	bg     context.Context
	stopBg context.CancelFunc

	// The sink's task only.
	tpc   bool   // driven by two-phase commit (Recover or PreCommit called)
	cur   *txn   // the open transaction, not pre-committed
	spare *spare // the next transaction, made ready in the background
	// used is the number of the next transaction to begin: every lower
	// number has begun (and, but cur's, was pre-committed or ended).
	used uint64

	mu      sync.Mutex
	ready   bool   // the ids an earlier run may have left open are fenced
	first   uint64 // number of this writer's first transaction
	next    uint64 // number of its next transaction to initialise
	pending []*txn // pre-committed, oldest first
	orphans map[string]Txn
	closed  bool
}

// txn is one transaction of the writer and its client.
type txn struct {
	h Txn
	p *producer
	// began is when the transaction began here (BeginTransaction, before
	// its first record): the broker's timer starts later, when the
	// client adds the first partition, so a transaction older than the
	// timeout by this clock may be aborted already, and will be soon.
	began time.Time
}

// spare is the writer's next transaction, made ready on a goroutine of
// its own: its client started and its transactional id initialised
// (InitProducerId), not yet begun. The transaction timeout starts only
// with the first record, so a spare may wait for any time. Numbers stay
// contiguous (one spare at a time; next counts it once initialised), so
// recovery, which initialises the ids from a checkpoint's Next upwards
// until one the coordinator has never seen, also fences a spare.
type spare struct {
	done chan struct{} // closed when t or err is set
	t    *txn
	err  error
}

// prepareSpare starts making the transaction numbered next ready in the
// background (the task goroutine; no spare under way).
func (w *txnWriter) prepareSpare() {
	w.mu.Lock()
	n := w.next
	w.mu.Unlock()
	sp := &spare{done: make(chan struct{})}
	w.spare = sp
	go func() {
		defer close(sp.done)
		sp.t, sp.err = w.initTxn(w.bg, n)
	}()
}

// takeSpare waits for the spare (starting one if none is under way) and
// returns its transaction, which the writer then owns.
func (w *txnWriter) takeSpare(ctx context.Context) (*txn, error) {
	if w.spare == nil {
		w.prepareSpare()
	}
	sp := w.spare
	select {
	case <-sp.done:
	case <-ctx.Done():
		return nil, ctx.Err() // the spare stays; Close drops it
	}
	w.spare = nil
	return sp.t, sp.err
}

// dropSpare waits for the spare's preparation, cancelled, and closes its
// client: its id holds no transaction (the next run's recovery fences it).
func (w *txnWriter) dropSpare() {
	w.stopBg()
	if sp := w.spare; sp != nil {
		<-sp.done
		if sp.t != nil {
			sp.t.p.cl.Close()
		}
		w.spare = nil
	}
}

// initTxn starts the client of the subtask's transaction number n and
// initialises its transactional id (InitProducerId: a new epoch for the
// id, fencing anyone before); next moves past n only then, so the
// numbers stay contiguous.
func (w *txnWriter) initTxn(ctx context.Context, n uint64) (*txn, error) {
	if w.sink.beforeInit != nil {
		w.sink.beforeInit(ctx, w.index, n)
	}
	id := w.sink.txnID(w.index, n)
	cl, err := w.sink.newClient(kgo.TransactionalID(id), kgo.TransactionTimeout(w.sink.cfg.TransactionTimeout))
	if err != nil {
		return nil, err
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka sink %s: initialise transactional id %s: %w", w.topic(), id, err)
	}
	w.mu.Lock()
	w.next = n + 1
	w.mu.Unlock()
	return &txn{h: Txn{Subtask: w.index, Seq: n, TransactionalID: id, ProducerID: pid, Epoch: epoch}, p: &producer{cl: cl}}, nil
}

func (w *txnWriter) topic() string { return w.sink.cfg.Topic }

// Write implements stream.SinkWriter; the first write after a pre-commit
// begins a transaction.
func (w *txnWriter) Write(ctx context.Context, msgs []connector.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := w.prepare(ctx); err != nil {
		return err
	}
	if w.cur == nil {
		if err := w.begin(ctx); err != nil {
			return err
		}
	}
	if err := w.cur.p.produce(ctx, w.topic(), msgs); err != nil {
		return fmt.Errorf("kafka sink %s: %w", w.topic(), err)
	}
	return nil
}

// prepare fences what an earlier run may have left open, once, for a
// writer that Recover did not prepare (a job without checkpoints).
func (w *txnWriter) prepare(ctx context.Context) error {
	w.mu.Lock()
	ready := w.ready
	w.mu.Unlock()
	if ready {
		return nil
	}
	return w.fenceFrom(ctx, map[int]uint64{})
}

// begin opens a transaction under the subtask's next transactional id,
// the spare's, and, under two-phase commit, starts preparing the one
// after. With more than MaxPendingCheckpoints transactions pre-committed
// (checkpoints failed: an aborted checkpoint's transaction waits for the
// next one that completes) it first lets the oldest go idle (see idle).
func (w *txnWriter) begin(ctx context.Context) error {
	w.idle()
	t, err := w.takeSpare(ctx)
	if err != nil {
		return err
	}
	if err := t.p.cl.BeginTransaction(); err != nil {
		t.p.cl.Close()
		return fmt.Errorf("kafka sink %s: begin transaction %s: %w", w.topic(), t.h.TransactionalID, err)
	}
	t.began = time.Now()
	w.cur = t
	w.used = t.h.Seq + 1
	if w.tpc {
		// Without two-phase commit this transaction is the only one.
		w.prepareSpare()
	}
	return nil
}

// idle closes the clients of the pre-committed transactions beyond the
// newest MaxPendingCheckpoints and files them as orphans, which Commit
// and Abort end with EndTxn (resume) like those Close leaves: they stay
// open on the broker, holding nothing of this writer but their handles,
// until a checkpoint holding them completes or the broker's transaction
// timeout aborts them. None is committed before its checkpoint completes:
// committed earlier, its records would be written again once the job
// restored an earlier checkpoint and replayed them.
func (w *txnWriter) idle() {
	w.mu.Lock()
	var idle []*txn
	for len(w.pending) > w.sink.cfg.MaxPendingCheckpoints {
		t := w.pending[0]
		w.pending = w.pending[1:]
		if w.orphans == nil {
			w.orphans = map[string]Txn{}
		}
		w.orphans[t.h.TransactionalID] = t.h
		idle = append(idle, t)
	}
	w.mu.Unlock()
	for _, t := range idle {
		t.p.cl.Close()
	}
	w.sink.idled.Add(int64(len(idle)))
}

// end flushes (commit) or drops (abort) the buffered records and ends the
// transaction through its own client.
func (t *txn) end(ctx context.Context, how kgo.TransactionEndTry) error {
	if how == kgo.TryCommit {
		if err := t.p.flush(ctx); err != nil {
			return err
		}
	} else if err := t.p.cl.AbortBufferedRecords(ctx); err != nil {
		return err
	}
	return t.p.cl.EndTransaction(ctx, how)
}

// PreCommit implements checkpoint.TwoPhaseCommitter: it flushes the open
// transaction (every record acknowledged, invisible to read_committed
// readers) and files it as pending; the next write begins another. The
// handle (EncodeTxn) names the transaction and the subtask's next
// transaction number; it names no transaction when nothing was written
// since the last barrier, but is never nil: recovery needs the number.
func (w *txnWriter) PreCommit(ctx context.Context, id checkpoint.ID) (checkpoint.Transaction, error) {
	w.tpc = true
	if err := w.prepare(ctx); err != nil {
		return nil, err
	}
	// Next: the spare's number (not past it: it may hold the records
	// after this barrier), so recovery fences the spare too.
	h := Txn{Checkpoint: uint64(id), Subtask: w.index, Next: w.used, ProducerID: -1, Epoch: -1}
	if t := w.cur; t != nil {
		err := t.p.flush(ctx)
		if open, timeout := time.Since(t.began), w.sink.cfg.TransactionTimeout; open >= timeout {
			// The records may all be acknowledged (err nil), but the
			// transaction is aborted: pre-committed, it would make a
			// checkpoint whose Commit can only fail and whose
			// recovery loses them. Failing here fails the job before
			// the checkpoint, which restores the previous one.
			if err == nil {
				err = ErrTransactionTimedOut
			} else {
				err = fmt.Errorf("%w: %w", ErrTransactionTimedOut, err)
			}
			return nil, fmt.Errorf("kafka sink %s: pre-commit checkpoint %d: transaction %s open for %v, the transaction timeout is %v (transaction_timeout: set it above the checkpoint interval plus the time a checkpoint takes, within the broker's transaction.max.timeout.ms): %w",
				w.topic(), id, t.h.TransactionalID, open.Round(time.Millisecond), timeout, err)
		}
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: pre-commit checkpoint %d: %w", w.topic(), id, err)
		}
		w.cur = nil
		t.h.Checkpoint, t.h.Next = uint64(id), h.Next
		h = t.h
		w.mu.Lock()
		w.pending = append(w.pending, t)
		w.mu.Unlock()
	}
	return EncodeTxn(h), nil
}

// claim finds the transaction a handle names: pending in this writer (it
// is removed and returned), or to be resumed through EndTxn (dropped by
// Close, or written by another writer), or neither (this writer has ended
// it already).
func (w *txnWriter) claim(h Txn) (t *txn, resume bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.IndexFunc(w.pending, func(t *txn) bool { return t.h.TransactionalID == h.TransactionalID }); i >= 0 {
		t = w.pending[i]
		if t.h.ProducerID == h.ProducerID && t.h.Epoch == h.Epoch {
			w.pending = slices.Delete(w.pending, i, i+1)
			return t, false
		}
	}
	if o, ok := w.orphans[h.TransactionalID]; ok && o.ProducerID == h.ProducerID && o.Epoch == h.Epoch {
		delete(w.orphans, h.TransactionalID)
		return nil, true
	}
	mine := w.ready && h.Subtask == w.index && h.Seq >= w.first && h.Seq < w.next && h.TransactionalID == w.sink.txnID(w.index, h.Seq)
	return nil, !mine
}

// Commit implements checkpoint.TwoPhaseCommitter: it commits the
// pre-committed transaction the handle names, through its client while
// this writer holds it, otherwise with EndTxn (resume). Committing again
// is a no-op, also after Close. A transaction Kafka aborted meanwhile
// fails with ErrTransactionLost.
func (w *txnWriter) Commit(ctx context.Context, tx checkpoint.Transaction) error {
	return w.finish(ctx, tx, true)
}

// Abort implements checkpoint.TwoPhaseCommitter: it aborts the
// pre-committed transaction the handle names.
func (w *txnWriter) Abort(ctx context.Context, tx checkpoint.Transaction) error {
	return w.finish(ctx, tx, false)
}

func (w *txnWriter) finish(ctx context.Context, tx checkpoint.Transaction, commit bool) error {
	h, err := DecodeTxn(tx)
	if err != nil {
		return err
	}
	if h.TransactionalID == "" {
		return nil
	}
	if commit && w.sink.beforeCommit != nil {
		if err := w.sink.beforeCommit(h); err != nil {
			return fmt.Errorf("kafka sink %s: commit of checkpoint %d: %w", w.topic(), h.Checkpoint, err)
		}
	}
	how, verb := kgo.TryAbort, "abort"
	if commit {
		how, verb = kgo.TryCommit, "commit"
	}
	t, resume := w.claim(h)
	switch {
	case t != nil:
		err = t.end(ctx, how)
		t.p.cl.Close()
	case resume:
		err = w.resumeAndJudge(ctx, h, commit)
	}
	if err != nil {
		return fmt.Errorf("kafka sink %s: %s of checkpoint %d (%s): %w", w.topic(), verb, h.Checkpoint, h.TransactionalID, err)
	}
	return nil
}

// resumeAndJudge ends h's transaction with EndTxn and turns an answer that
// means it is lost into ErrTransactionLost.
func (w *txnWriter) resumeAndJudge(ctx context.Context, h Txn, commit bool) error {
	out, err := w.resume(ctx, h, commit)
	if err != nil {
		return err
	}
	if out != nil {
		return fmt.Errorf("%w: %w", ErrTransactionLost, out)
	}
	return nil
}

// resume ends the transaction h names, which another client (maybe in
// another process) began, by sending EndTxn with h's transactional id,
// producer id and epoch to the transaction coordinator (kgo finds it with
// FindCoordinator and follows it when it moves). It returns a nil outcome
// when the transaction has the asked outcome, or the Kafka error that says
// it does not; an error when the question could not be asked.
//
// What the answers mean, given that every transactional id holds one
// transaction and nothing of this package moves it to a newer epoch once
// pre-committed:
//
//   - NONE: done now, or done before (Kafka answers a repeated EndTxn with
//     the transaction's own outcome with success; KIP-890 coordinators,
//     which bump the epoch at each EndTxn, recognise the retry).
//   - CONCURRENT_TRANSACTIONS: the coordinator is still writing the
//     markers of an earlier end: asked again after a pause.
//   - PRODUCER_FENCED, INVALID_PRODUCER_EPOCH (older coordinators): the id
//     has a newer epoch: the coordinator aborted the transaction when its
//     timeout expired (bumping the epoch to fence the producer), or another
//     producer initialised the id (another job with the same
//     TransactionalID). For a commit: lost.
//   - INVALID_TXN_STATE: the transaction ended the other way (a commit
//     asked of one the coordinator aborted, as KIP-890 coordinators and
//     those that do not bump on timeout report it). For a commit: lost.
//   - INVALID_PRODUCER_ID_MAPPING: the coordinator no longer knows the id
//     with that producer id (it expired, transactional.id.expiration.ms
//     after the transaction ended, or was re-initialised after epoch
//     exhaustion): the outcome cannot be told; counted as lost.
//
// Anything else (authorisation, an unknown server error) is an error.
func (w *txnWriter) resume(ctx context.Context, h Txn, commit bool) (outcome, err error) {
	cl, done, err := w.control()
	if err != nil {
		return nil, err
	}
	defer done()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID = h.TransactionalID
	req.ProducerID = h.ProducerID
	req.ProducerEpoch = h.Epoch
	req.Commit = commit
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("EndTxn: %w", err)
		}
		kerrv := kerr.ErrorForCode(resp.ErrorCode)
		switch {
		case kerrv == nil:
			return nil, nil
		case errors.Is(kerrv, kerr.ConcurrentTransactions):
			if err := pause(ctx); err != nil {
				return nil, err
			}
		case errors.Is(kerrv, kerr.ProducerFenced), errors.Is(kerrv, kerr.InvalidProducerEpoch),
			errors.Is(kerrv, kerr.InvalidTxnState), errors.Is(kerrv, kerr.InvalidProducerIDMapping):
			return kerrv, nil
		default:
			return nil, fmt.Errorf("EndTxn: %w", kerrv)
		}
	}
}

// pause waits a little before a request is asked again (the coordinator
// is finishing an earlier transaction end).
func pause(ctx context.Context) error {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// control returns a client without a transactional id for kmsg requests:
// the writer's, or a new one once the writer is closed.
func (w *txnWriter) control() (*kgo.Client, func(), error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if !closed {
		return w.ctl, func() {}, nil
	}
	cl, err := w.sink.newClient()
	if err != nil {
		return nil, nil, err
	}
	return cl, cl.Close, nil
}

// Recover implements checkpoint.TwoPhaseCommitter. Called once by the
// runtime right after Open, before the first record, with the handles
// the restored checkpoint holds for this subtask (of every earlier subtask
// that maps to it after rescaling). It commits each pre-committed
// transaction with EndTxn and its own producer id and epoch (see resume);
// one Kafka aborted meanwhile is logged as an error with its checkpoint id
// and counted in LostTransactions, and recovery goes on. Only then does it
// fence (see fenceFrom).
func (w *txnWriter) Recover(ctx context.Context, committed []checkpoint.Transaction) error {
	w.tpc = true
	hs := make([]Txn, 0, len(committed))
	for _, tx := range committed {
		h, err := DecodeTxn(tx)
		if err != nil {
			return fmt.Errorf("kafka sink %s: recover: %w", w.topic(), err)
		}
		hs = append(hs, h)
	}
	nexts := map[int]uint64{}
	for _, h := range hs {
		nexts[h.Subtask] = max(nexts[h.Subtask], h.Next)
		if h.TransactionalID == "" {
			continue
		}
		out, err := w.resume(ctx, h, true)
		if err != nil {
			return fmt.Errorf("kafka sink %s: recover: commit of checkpoint %d (%s): %w", w.topic(), h.Checkpoint, h.TransactionalID, err)
		}
		if out != nil {
			w.sink.lost.Add(1)
			w.sink.cfg.Logger.Error("kafka sink: a pre-committed transaction was aborted by Kafka before recovery could commit it: its records are lost (raise the transaction timeout above the checkpoint interval plus the restart time)",
				"topic", w.topic(), "checkpoint", h.Checkpoint, "subtask", h.Subtask,
				"transactional_id", h.TransactionalID, "producer_id", h.ProducerID, "epoch", h.Epoch, "answer", out.Error())
		}
	}
	return w.fenceFrom(ctx, nexts)
}

// fenceFrom initialises (InitProducerId) the transactional ids an earlier
// run may have left open, which aborts their transactions and fences their
// producers: for each earlier subtask in nexts, n from its next number up
// to the first id the coordinator has never seen (it answers epoch 0;
// numbers are contiguous), and the same for this subtask's own ids,
// from 0 when nexts does not have it (a fresh start: then at most
// freshStartProbes ids, since an earlier job with the same prefix may
// have used many). This writer's transactions go on from where its own
// ids stopped.
func (w *txnWriter) fenceFrom(ctx context.Context, nexts map[int]uint64) error {
	_, known := nexts[w.index]
	if !known {
		nexts[w.index] = 0
	}
	for _, sub := range slices.Sorted(maps.Keys(nexts)) {
		n := nexts[sub]
		limit := uint64(math.MaxUint64)
		if sub == w.index && !known {
			limit = freshStartProbes
		}
		for i := uint64(0); i < limit; i, n = i+1, n+1 {
			fresh, err := w.initID(ctx, w.sink.txnID(sub, n))
			if err != nil {
				return fmt.Errorf("kafka sink %s: fence %s: %w", w.topic(), w.sink.txnID(sub, n), err)
			}
			if fresh {
				break
			}
		}
		if sub == w.index {
			w.mu.Lock()
			w.first, w.next = n, n
			w.mu.Unlock()
			w.used = n
		}
	}
	w.mu.Lock()
	w.ready = true
	w.mu.Unlock()
	w.prepareSpare() // the first transaction, ready before the first record
	return nil
}

// initID sends InitProducerId for a transactional id: the coordinator
// aborts its open transaction, if any, and bumps its epoch. It reports
// whether the id was new (epoch 0).
func (w *txnWriter) initID(ctx context.Context, id string) (bool, error) {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(min(w.sink.cfg.TransactionTimeout.Milliseconds(), math.MaxInt32))
	for {
		resp, err := req.RequestWith(ctx, w.ctl)
		if err != nil {
			return false, fmt.Errorf("InitProducerId: %w", err)
		}
		kerrv := kerr.ErrorForCode(resp.ErrorCode)
		switch {
		case kerrv == nil:
			return resp.ProducerEpoch == 0, nil
		case errors.Is(kerrv, kerr.ConcurrentTransactions):
			// Apache Kafka answers this while it aborts the open
			// transaction; asked again, it hands out the new epoch.
			if err := pause(ctx); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("InitProducerId: %w", kerrv)
		}
	}
}

// Close implements stream.SinkWriter. The open transaction (not
// pre-committed) is aborted: its records are replayed from the last
// checkpoint; without checkpoints (no two-phase commit) it holds
// everything and is committed at the end of the input instead.
// Pre-committed transactions are left as they are, since a checkpoint
// holding them may be complete: their clients close, and Commit (which
// the runtime may call after Close) or the next run's Recover commits them
// with EndTxn.
func (w *txnWriter) Close(ctx context.Context) error {
	how := kgo.TryAbort
	if !w.tpc && ctx.Err() == nil {
		how = kgo.TryCommit
	}
	if ctx.Err() != nil {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = c
	}
	w.dropSpare()
	var err error
	if t := w.cur; t != nil {
		w.cur = nil
		err = t.end(ctx, how)
		t.p.cl.Close()
	}
	w.mu.Lock()
	pending := w.pending
	w.pending = nil
	w.closed = true
	if len(pending) > 0 && w.orphans == nil {
		w.orphans = map[string]Txn{}
	}
	for _, t := range pending {
		w.orphans[t.h.TransactionalID] = t.h
	}
	w.mu.Unlock()
	for _, t := range pending {
		t.p.cl.Close()
	}
	w.ctl.Close()
	if err != nil {
		return fmt.Errorf("kafka sink %s: close: %w", w.topic(), err)
	}
	return nil
}

// The capability the runtime looks for.
var _ checkpoint.TwoPhaseCommitter = (*txnWriter)(nil)
