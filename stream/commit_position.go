package stream

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
)

// PositionCommitter is an optional capability of a Split: a split that
// also records its progress outside the job (Kafka consumer-group
// offsets, the answers of the HTTP ingest source) implements it.
//
// With checkpointing on, the runtime calls CommitPosition with the
// split's position recorded in a checkpoint once that checkpoint has
// completed: its manifest is durable and every two-phase-commit sink has
// committed the checkpoint's transactions. Calls come from a goroutine of
// the checkpoint coordinator, in the background (the next checkpoint does
// not wait for them; when several checkpoints complete during one call,
// only the newest position is committed next), concurrently with Read,
// one at a time per split, with increasing checkpoints, never before Seek
// and never after the split was closed. Under checkpointing the runtime
// closes a split only once the job's checkpoint coordinator has finished:
// a split whose input ended sees the commit of the job's final checkpoint,
// and one stopped by a savepoint the commit of that savepoint. An error is
// logged and does not fail the job: the checkpoint, not the outside
// record, is the source of truth on restore, and the next completed
// checkpoint commits a later position.
type PositionCommitter interface {
	CommitPosition(ctx context.Context, pos []byte) error
}

// commitPositionTimeout bounds one CommitPosition call.
const commitPositionTimeout = 30 * time.Second

// splitCommitter serialises CommitPosition with the split's Close.
type splitCommitter struct {
	mu     sync.Mutex
	c      PositionCommitter
	closed bool
	name   string
	sub    int
}

// registerSplit makes split (of operator op) receive the positions of
// completed checkpoints if it implements PositionCommitter. It returns the
// function the split's subtask calls when it returns: without
// checkpointing it closes the split (if it is an io.Closer) at once; with
// checkpointing it leaves the split open for the commits still to come
// (the final checkpoint's, a stopping savepoint's) and drive closes it
// when it returns (closeEnded). No position is committed after the close.
func (r *chkRun) registerSplit(op, name string, sub int, split interface{ ID() string }) (closeSplit func()) {
	closer, _ := split.(io.Closer)
	closeNow := func() {
		if closer != nil {
			_ = closer.Close()
		}
	}
	if r == nil {
		return closeNow
	}
	pc, ok := split.(PositionCommitter)
	if !ok {
		return func() { r.closeAtEnd(closeNow) }
	}
	sc := &splitCommitter{c: pc, name: name, sub: sub}
	key := posKey(op, split.ID())
	r.mu.Lock()
	r.committers[key] = sc
	r.mu.Unlock()
	return func() { r.closeAtEnd(func() { r.closeCommitter(key, sc, closeNow) }) }
}

// closeAtEnd queues a split's close for closeEnded.
func (r *chkRun) closeAtEnd(f func()) {
	r.mu.Lock()
	r.ended = append(r.ended, f)
	r.mu.Unlock()
}

// closeEnded closes the splits whose subtasks returned; drive calls it as
// it returns, after every position commit.
func (r *chkRun) closeEnded() {
	r.mu.Lock()
	ended := r.ended
	r.ended = nil
	r.mu.Unlock()
	for _, f := range ended {
		f()
	}
}

// closeCommitter unregisters sc and closes its split: no position is
// committed to it after.
func (r *chkRun) closeCommitter(key string, sc *splitCommitter, closeSplit func()) {
	r.mu.Lock()
	if r.committers[key] == sc {
		delete(r.committers, key)
	}
	r.mu.Unlock()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.closed = true
	closeSplit()
}

// positionQueue commits the source positions of completed checkpoints on
// a goroutine of its own, so that a slow CommitPosition (a Kafka
// OffsetCommit per split) holds up neither the next checkpoint's trigger
// nor the commits of its sinks. It keeps one manifest waiting: a newer
// one replaces it (its positions are later).
type positionQueue struct {
	c    chan *checkpoint.Manifest
	done chan struct{}
}

// startPositions starts the queue of r's position commits.
func (r *chkRun) startPositions() *positionQueue {
	q := &positionQueue{c: make(chan *checkpoint.Manifest, 1), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for m := range q.c {
			r.commitSources(m)
		}
	}()
	return q
}

// submit queues the positions of completed checkpoint m, dropping those
// of an older checkpoint still waiting. Only the coordinator's goroutine
// submits.
func (q *positionQueue) submit(m *checkpoint.Manifest) {
	for {
		select {
		case q.c <- m:
			return
		default:
		}
		select {
		case <-q.c: // superseded
		default:
		}
	}
}

// close waits for the commits under way; nothing may be submitted after.
func (q *positionQueue) close() {
	close(q.c)
	<-q.done
}

// commitSources passes the source positions of completed checkpoint m to
// the open splits that implement PositionCommitter.
func (r *chkRun) commitSources(m *checkpoint.Manifest) {
	for _, sp := range m.Sources() {
		r.mu.Lock()
		sc := r.committers[posKey(sp.Operator, sp.Split)]
		r.mu.Unlock()
		if sc == nil {
			continue
		}
		sc.mu.Lock()
		if !sc.closed {
			ctx, cancel := context.WithTimeout(context.Background(), commitPositionTimeout)
			err := sc.c.CommitPosition(ctx, sp.Position)
			cancel()
			if err != nil {
				r.log.Warn("source position not committed", "checkpoint", m.ID, "operator", sc.name, "subtask", sc.sub, "split", sp.Split, "err", err)
			}
		}
		sc.mu.Unlock()
	}
}
