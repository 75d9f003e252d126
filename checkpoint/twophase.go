package checkpoint

import "context"

// Transaction is the serialisable handle of a sink transaction that was
// pre-committed at a barrier: whatever the sink needs to find and commit
// (or abort) that output again after a crash, in another process: a list
// of staged file names, a Kafka transactional id and epoch, a database
// transaction id. It is stored in the checkpoint's manifest, so keep it
// small (well under a kilobyte). A nil handle means "nothing to commit".
type Transaction []byte

// TwoPhaseCommitter is the capability of an exactly-once sink writer (one
// per sink subtask). The runtime calls, in this order for each checkpoint:
//
//   - PreCommit(id) when barrier id reaches the sink, after every record
//     before the barrier was written: flush, make the output durable but
//     not yet visible (stage it), start a new transaction for the records
//     that follow, and return the handle of the staged one. An error
//     declines the checkpoint.
//   - Commit(handle) once checkpoint id is complete (its manifest is
//     durable): make the staged output visible. Commit must be idempotent:
//     after a crash between the manifest write and the commit, recovery
//     commits the same handle again.
//   - Abort(handle) when checkpoint id failed: discard the staged output.
//     (The records are replayed from the previous checkpoint's positions.)
//
// On recovery, before the first record, the runtime calls Recover with the
// handles that the restored checkpoint had pre-committed for this subtask:
// the sink commits them and aborts any other transaction it left pending
// (anything staged after that checkpoint), for example by listing its
// staging area. Without a restored checkpoint, Recover gets nil and aborts
// whatever a previous run left staged.
//
// Output that reaches the outside world only through Commit is
// exactly-once; a sink that cannot stage output can instead write
// idempotently (upsert by key), which gives the same result on replay.
type TwoPhaseCommitter interface {
	PreCommit(ctx context.Context, id ID) (Transaction, error)
	Commit(ctx context.Context, tx Transaction) error
	Abort(ctx context.Context, tx Transaction) error
	Recover(ctx context.Context, committed []Transaction) error
}
