package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A stateful task restores its changelog before it processes a record:
// between the polls of the group client, with its input partition paused
// (restoreStep), so that the instance's other tasks go on and no
// transaction stays open for the restore's length.
//
// Where a restore ends. A task must start from every change its previous
// owner committed. The changelog's last stable offset (LSO,
// what a read_committed consumer may read up to) is not enough on its
// own: a transaction's commit returns once the coordinator has decided
// it, and the brokers write its markers into the changelog afterwards, so
// for a moment the previous owner's last writes sit above the LSO as if
// still open. A restore therefore first lists the high watermark, then
// waits until the LSO has reached it (every transaction with a write
// below the high watermark resolved, committed or aborted), and reads up
// to that LSO (records committed past it are applied too) — the
// guarantee Kafka Streams relies on. A transaction that never resolves
// (a crashed writer) is aborted by the broker after its timeout; the wait
// gives up with an error a little after that.
//
// The read itself has no time limit: it goes on until the consumer's
// position reaches the end, however slow the broker, logging its progress,
// and stops only when the instance stops or the task leaves. The position moves with every
// record returned, control records included (the restore consumer keeps
// them): an aborted transaction's records are not returned but its abort
// marker is, so an aborted tail ends the read too.

// restoreMarkerSlack is how long after the transaction timeout a restore
// still waits for an open transaction on its changelog to resolve: brokers
// look for timed-out transactions every 10 s by default.
const restoreMarkerSlack = 15 * time.Second

// restoreLogEvery is how often a long restore logs its progress.
const restoreLogEvery = 10 * time.Second

// offsetKind is which offset of a partition listOffset lists.
type offsetKind uint8

const (
	highWatermark  offsetKind = iota
	lastStable                // what a read_committed consumer may read up to
	logStartOffset            // the first offset still in the log
)

// restoreUnavailableTimeout is how long a restore goes on when the
// broker cannot list its changelog's offsets (a leader election, a new
// leader catching up, a broker restarting) before it fails the instance,
// as Kafka Streams' task.timeout.ms (5 min).
const restoreUnavailableTimeout = 5 * time.Minute

// listOffset lists partition p of topic's offset of kind which, once:
// the client retries a request that fails on the way; an answer with a
// retriable error is for the restore step to ask again (offsetFailed).
func (in *Instance) listOffset(ctx context.Context, topic string, p int32, which offsetKind) (int64, error) {
	var offs kadm.ListedOffsets
	var err error
	switch which {
	case lastStable:
		offs, err = in.adm.ListCommittedOffsets(ctx, topic)
	case logStartOffset:
		offs, err = in.adm.ListStartOffsets(ctx, topic)
	default:
		offs, err = in.adm.ListEndOffsets(ctx, topic)
	}
	if err != nil {
		return 0, err
	}
	o, ok := offs.Lookup(topic, p)
	if !ok {
		return 0, fmt.Errorf("%w: no offset listed for partition %d", kerr.UnknownTopicOrPartition, p)
	}
	if o.Err != nil {
		return 0, o.Err
	}
	return o.Offset, nil
}

// offsetFailed handles a failed offset listing of a restore: an error
// the broker says is retriable (or a request that failed on the way) is
// asked again at the next step — the instance's other tasks go on
// meanwhile — and logged every restoreLogEvery, until the listings have
// failed for restoreUnavailableTimeout; any other error, or one that
// lasts longer, is returned.
func (in *Instance) offsetFailed(ctx context.Context, id taskID, j *restoreJob, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	now := time.Now()
	if j.failingSince.IsZero() {
		j.failingSince = now
	}
	var ke *kerr.Error
	retriable := !errors.As(err, &ke) || ke.Retriable
	if !retriable || now.Sub(j.failingSince) > restoreUnavailableTimeout {
		return fmt.Errorf("cluster: task %s: %s of changelog %s partition %d (failing for %s): %w; check that the brokers are up and that the changelog topic exists",
			id, what, j.topic, id.part, now.Sub(j.failingSince).Round(time.Second), err)
	}
	if now.Sub(j.lastLog) > restoreLogEvery || j.failures == 0 {
		in.log.Warn("cluster: the broker cannot list the changelog's offsets yet; the restore asks again", "task", id.String(), "topic", j.topic, "partition", id.part, "offset", what, "failing_for", now.Sub(j.failingSince).Round(time.Second), "error", err)
		j.lastLog = now
	}
	j.failures++
	return nil
}

// restoreJob is a task's restore in progress.
type restoreJob struct {
	topic string
	hw    int64 // the changelog's high watermark when it began; -1 until listed
	hwAt  time.Time
	end   int64 // -1 until the last stable offset reached hw
	// failingSince is when the offset listings began to fail (zero
	// while they succeed); failures counts them.
	failingSince   time.Time
	failures       int
	from, pos      int64
	lastPos        int64 // pos after the previous read (skipRemoved)
	consuming      bool  // the restore client reads the partition
	start, lastLog time.Time
	records, bytes int64
}

// restoreStep moves the restores of the instance's stateful tasks that
// are not restored yet (only task only, if not nil) one step on, without
// blocking for long: it begins new ones, waits for their end (see above)
// by asking the last stable offset once, reads what the restore client
// has (up to wait), and finishes those that reached their end. A task
// whose restore finished is marked restored and its input partition
// resumed. Called with in.mu held, between polls of the group client.
func (in *Instance) restoreStep(ctx context.Context, only *taskState, wait time.Duration) error {
	// Restores of tasks no longer here stop.
	for id, ts := range in.restoring {
		if in.tasks[id] != ts || ts.restored {
			in.stopRestore(id, ts)
		}
	}
	consuming, waiting := false, false
	for _, id := range in.sortedTasks() {
		ts := in.tasks[id]
		if ts.restored || (only != nil && ts != only) {
			continue
		}
		if ts.rst == nil {
			now := time.Now()
			ts.rst = &restoreJob{topic: ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name), hw: -1, end: -1, start: now, lastLog: now}
			in.restoring[id] = ts
		}
		j := ts.rst
		if j.hw < 0 {
			hw, err := in.listOffset(ctx, j.topic, id.part, highWatermark)
			if err != nil {
				if err := in.offsetFailed(ctx, id, j, "end", err); err != nil {
					return err
				}
				waiting = true
				continue
			}
			j.hw, j.hwAt, j.failingSince = hw, time.Now(), time.Time{}
		}
		if j.end < 0 {
			lso, err := in.listOffset(ctx, j.topic, id.part, lastStable)
			if err != nil {
				if err := in.offsetFailed(ctx, id, j, "last stable offset", err); err != nil {
					return err
				}
				waiting = true
				continue
			}
			j.failingSince = time.Time{}
			if lso < j.hw {
				if time.Since(j.hwAt) > in.cfg.TransactionTimeout+in.markerSlack {
					return fmt.Errorf("cluster: task %s: changelog %s partition %d has a transaction open below offset %d (last stable offset %d) for %s, longer than the transaction timeout: its writer's transaction was never resolved; restoring now would miss or include its writes",
						id, j.topic, id.part, j.hw, lso, time.Since(j.hwAt).Round(time.Second))
				}
				if time.Since(j.lastLog) > restoreLogEvery {
					in.log.Info("cluster: waiting for the changelog's open transaction to resolve before restoring", "task", id.String(), "topic", j.topic, "partition", id.part, "last_stable_offset", lso, "high_watermark", j.hw)
					j.lastLog = time.Now()
				}
				waiting = true
				continue
			}
			j.end = lso
			j.from = ts.changelogEnd
			if ts.fromSnapshot && j.from > j.end {
				// The changelog is shorter than the snapshot says: the
				// topic was deleted and created again. Start from the
				// changelog alone.
				in.log.Warn("cluster: the local state snapshot is ahead of the changelog; restoring from the changelog", "task", id.String(), "snapshot_offset", j.from, "changelog_end", j.end)
				in.freshState(ts)
				j.from = 0
			}
			ts.fromSnapshot = false
			j.pos = j.from
			j.lastPos = -1 // the first read's progress is not judged
			if j.from < j.end {
				in.rest.AddConsumePartitions(map[string]map[int32]kgo.Offset{j.topic: {id.part: kgo.NewOffset().At(j.from)}})
				j.consuming = true
			}
		}
		if j.consuming {
			consuming = true
		}
	}
	if consuming {
		if err := in.readRestores(ctx, wait); err != nil {
			return err
		}
		if err := in.skipRemoved(ctx); err != nil {
			return err
		}
	} else if waiting && only == nil {
		// Nothing to read until a marker lands: pace the next look.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	for id, ts := range in.restoring {
		if j := ts.rst; j.end >= 0 && j.pos >= j.end {
			if err := in.finishRestore(id, ts); err != nil {
				return err
			}
		} else if j.consuming && time.Since(j.lastLog) > restoreLogEvery {
			in.log.Info("cluster: restoring a task", "task", id.String(), "topic", j.topic, "partition", id.part, "at", j.pos, "end", j.end, "records", j.records, "elapsed", time.Since(j.start).Round(time.Second))
			j.lastLog = time.Now()
		}
	}
	return nil
}

// skipRemoved moves a restore that read nothing past the records removed
// from its changelog (DeleteRecords, retention) to the log's start: a
// fetch below the start resets to it and returns no record there, and
// when the start is at or past the restore's end no record ever comes to
// move the position, so the restore would wait for ever. Records removed
// are lost to the restore; it warns and goes on with what is left.
func (in *Instance) skipRemoved(ctx context.Context) error {
	for id, ts := range in.restoring {
		j := ts.rst
		if !j.consuming || j.pos >= j.end || j.pos != j.lastPos {
			j.lastPos = j.pos
			continue
		}
		start, err := in.listOffset(ctx, j.topic, id.part, logStartOffset)
		if err != nil {
			// Asked again after the next read (lastPos stays).
			if err := in.offsetFailed(ctx, id, j, "log start", err); err != nil {
				return err
			}
			continue
		}
		j.failingSince = time.Time{}
		if start > j.pos {
			in.log.Warn("cluster: records of the changelog were removed before the restore read them (retention or DeleteRecords); the task's state lacks them", "task", id.String(), "topic", j.topic, "partition", id.part, "from", j.pos, "log_start", start, "end", j.end)
			j.pos = start
		}
		j.lastPos = j.pos
	}
	return nil
}

// readRestores applies what the restore client fetched (waiting up to
// wait for it) to the tasks being restored.
func (in *Instance) readRestores(ctx context.Context, wait time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, wait)
	fs := in.rest.PollFetches(pctx)
	cancel()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
			continue
		}
		return fmt.Errorf("cluster: reading changelog %s partition %d: %w", fe.Topic, fe.Partition, fe.Err)
	}
	var rerr error
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if rerr != nil {
			return
		}
		sub := in.changelogSub(p.Topic)
		if sub < 0 {
			return
		}
		ts := in.restoring[taskID{sub, p.Partition}]
		if ts == nil || !ts.rst.consuming {
			return // stopped
		}
		j := ts.rst
		for _, r := range p.Records {
			if r.Offset < j.pos {
				continue
			}
			// Records past the end are committed too (read_committed):
			// applied, they move the task's changelog offset on.
			j.pos = r.Offset + 1
			if r.Attrs.IsControl() {
				continue
			}
			j.records++
			j.bytes += int64(len(r.Key) + len(r.Value))
			if isWatermarkKey(r.Key) {
				if ts.comb != nil {
					rerr = ts.comb.restore(r.Key, r.Value)
				}
			} else {
				rerr = ts.task.Restore(r.Key, r.Value)
			}
			if rerr != nil {
				rerr = fmt.Errorf("cluster: task %s: restoring from %s partition %d offset %d: %w", ts.id, p.Topic, p.Partition, r.Offset, rerr)
				return
			}
		}
	})
	return rerr
}

// stopRestore ends a restore before its end (the task left).
func (in *Instance) stopRestore(id taskID, ts *taskState) {
	if ts.rst != nil && ts.rst.consuming {
		in.rest.RemoveConsumePartitions(map[string][]int32{ts.rst.topic: {id.part}})
	}
	ts.rst = nil
	delete(in.restoring, id)
}

// finishRestore makes a task whose restore reached its end run: its
// state committed, its input partition resumed.
func (in *Instance) finishRestore(id taskID, ts *taskState) error {
	j := ts.rst
	in.stopRestore(id, ts)
	ts.task.Commit()
	if ts.comb != nil {
		ts.comb.commit()
	}
	ts.changelogEnd = max(j.end, j.pos)
	ts.restored = true
	in.cl.ResumeFetchPartitions(map[string][]int32{in.inputs[id.sub]: {id.part}})
	if ts.comb != nil {
		// The task continues from the committed watermark: records late
		// for it stay late, windows it completed stay fired.
		if wm, ok := ts.comb.resumed(); ok {
			in.uncommitted = true // windows fire, in the open transaction
			if err := ts.task.Watermark(&output{in: in, ts: ts}, wm); err != nil {
				return fmt.Errorf("cluster: task %s: %w", id, err)
			}
		}
	}
	in.metrics.restored(id, j.records, j.bytes, time.Since(j.start))
	in.log.Info("cluster: task restored", "task", id.String(), "records", j.records, "bytes", j.bytes, "from", j.from, "to", ts.changelogEnd, "elapsed", time.Since(j.start).Round(time.Millisecond))
	return nil
}

// restore restores one task to the end before it goes on (records of a
// task whose input was not paused).
func (in *Instance) restore(ctx context.Context, ts *taskState) error {
	for attempt := 0; !ts.restored; attempt++ {
		if err := in.restoreStep(ctx, ts, 500*time.Millisecond); err != nil {
			return err
		}
		if ts.rst != nil && ts.rst.end < 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(time.Duration(attempt+1)*20*time.Millisecond, 500*time.Millisecond)):
			}
		}
	}
	return nil
}
