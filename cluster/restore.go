package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Where a restore ends. A task must start from every change its previous
// owner committed, and no more. The changelog's last stable offset (LSO,
// what a read_committed consumer may read up to) is not enough on its
// own: a transaction's commit returns once the coordinator has decided
// it, and the brokers write its markers into the changelog afterwards, so
// for a moment the previous owner's last writes sit above the LSO as if
// still open. A restore therefore first lists the high watermark, then
// waits until the LSO has reached it (every transaction with a write
// below the high watermark resolved, committed or aborted), and reads up
// to that LSO — as Kafka Streams does. A transaction that never resolves
// (a crashed writer) is aborted by the broker after its timeout; the wait
// gives up with an error a little after that.
//
// The read itself has no time limit: it goes on until the consumer's
// position reaches the end, however slow the broker, logging its progress,
// and stops only when the instance stops. The position moves with every
// record returned, control records included (the restore consumer keeps
// them): an aborted transaction's records are not returned but its abort
// marker is, so an aborted tail ends the read too.

// restoreMarkerSlack is how long after the transaction timeout a restore
// still waits for an open transaction on its changelog to resolve: brokers
// look for timed-out transactions every 10 s by default.
const restoreMarkerSlack = 15 * time.Second

// restoreLogEvery is how often a long restore logs its progress.
const restoreLogEvery = 10 * time.Second

// restoreEnd is the changelog offset a restore of partition p of topic
// reads up to: the LSO once it includes every write below the high
// watermark seen first.
func (in *Instance) restoreEnd(ctx context.Context, ts *taskState, topic string, p int32) (int64, error) {
	hw, err := in.listOffset(ctx, topic, p, false)
	if err != nil {
		return 0, fmt.Errorf("cluster: task %s: end of changelog %s partition %d: %w", ts.id, topic, p, err)
	}
	start := time.Now()
	limit := in.cfg.TransactionTimeout + restoreMarkerSlack
	lastLog := start
	for attempt := 0; ; attempt++ {
		lso, err := in.listOffset(ctx, topic, p, true)
		if err != nil {
			return 0, fmt.Errorf("cluster: task %s: last stable offset of changelog %s partition %d: %w", ts.id, topic, p, err)
		}
		if lso >= hw {
			return lso, nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("cluster: task %s: changelog %s partition %d has a transaction open below offset %d (last stable offset %d) for %s, longer than the transaction timeout: its writer's transaction was never resolved; restoring now would miss or include its writes",
				ts.id, topic, p, hw, lso, time.Since(start).Round(time.Second))
		}
		if time.Since(lastLog) > restoreLogEvery {
			in.log.Info("cluster: waiting for the changelog's open transaction to resolve before restoring", "task", ts.id.String(), "topic", topic, "partition", p, "last_stable_offset", lso, "high_watermark", hw)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*20*time.Millisecond, 500*time.Millisecond)):
		}
	}
}

// listOffset lists partition p of topic's last stable offset (committed)
// or high watermark, asked a few times: a leader moving or a metadata
// refresh fails one request.
func (in *Instance) listOffset(ctx context.Context, topic string, p int32, committed bool) (int64, error) {
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var offs kadm.ListedOffsets
		if committed {
			offs, err = in.adm.ListCommittedOffsets(ctx, topic)
		} else {
			offs, err = in.adm.ListEndOffsets(ctx, topic)
		}
		if err != nil {
			continue
		}
		o, ok := offs.Lookup(topic, p)
		if !ok {
			err = fmt.Errorf("no offset listed for partition %d", p)
			continue
		}
		if o.Err != nil {
			err = o.Err
			continue
		}
		return o.Offset, nil
	}
	return 0, err
}

// restore rebuilds a stateful task from its changelog partition: from
// the start, or from where this instance left it when the task was here
// before, up to the end restoreEnd decides.
func (in *Instance) restore(ctx context.Context, ts *taskState) error {
	start := time.Now()
	topic := ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[ts.id.sub].Name)
	p := ts.id.part
	end, err := in.restoreEnd(ctx, ts, topic, p)
	if err != nil {
		return err
	}
	from := ts.changelogEnd
	if ts.fromSnapshot && from > end {
		// The changelog is shorter than the snapshot says: the topic was
		// deleted and created again. Start from the changelog alone.
		in.log.Warn("cluster: the local state snapshot is ahead of the changelog; restoring from the changelog", "task", ts.id.String(), "snapshot_offset", from, "changelog_end", end)
		in.freshState(ts)
		from = 0
	}
	ts.fromSnapshot = false
	var records, bytes int64
	pos := from
	if from < end {
		in.rest.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}})
		defer in.rest.RemoveConsumePartitions(map[string][]int32{topic: {p}})
		lastLog := time.Now()
		for pos < end {
			// The poll is bounded only to log progress and see ctx end.
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := in.rest.PollFetches(pctx)
			cancel()
			if err := ctx.Err(); err != nil {
				return err
			}
			for _, fe := range fs.Errors() {
				if fe.Err == context.DeadlineExceeded || fe.Err == context.Canceled {
					continue
				}
				return fmt.Errorf("cluster: task %s: reading changelog %s partition %d: %w", ts.id, topic, p, fe.Err)
			}
			var rerr error
			fs.EachRecord(func(r *kgo.Record) {
				if rerr != nil || r.Topic != topic || r.Partition != p || r.Offset < pos {
					return
				}
				// Records past end are committed too (read_committed):
				// applied, they move the task's changelog offset on.
				pos = r.Offset + 1
				if r.Attrs.IsControl() {
					return
				}
				records++
				bytes += int64(len(r.Key) + len(r.Value))
				if isWatermarkKey(r.Key) {
					if ts.comb != nil {
						rerr = ts.comb.restore(r.Key, r.Value)
					}
					return
				}
				rerr = ts.task.Restore(r.Key, r.Value)
			})
			if rerr != nil {
				return fmt.Errorf("cluster: task %s: restoring from %s partition %d: %w", ts.id, topic, p, rerr)
			}
			if pos < end && time.Since(lastLog) > restoreLogEvery {
				in.log.Info("cluster: restoring a task", "task", ts.id.String(), "topic", topic, "partition", p, "at", pos, "end", end, "records", records, "elapsed", time.Since(start).Round(time.Second))
				lastLog = time.Now()
			}
		}
	}
	ts.task.Commit()
	if ts.comb != nil {
		ts.comb.commit()
	}
	ts.changelogEnd = max(end, pos)
	ts.restored = true
	if ts.comb != nil {
		// The task continues from the committed watermark: records late
		// for it stay late, windows it completed stay fired.
		ts.comb.emitted = NoWatermark
		if wm, ok := ts.comb.advance(); ok {
			if err := ts.task.Watermark(&output{in: in, ts: ts}, wm); err != nil {
				return fmt.Errorf("cluster: task %s: %w", ts.id, err)
			}
		}
	}
	in.metrics.restored(ts.id, records, bytes, time.Since(start))
	in.log.Info("cluster: task restored", "task", ts.id.String(), "records", records, "bytes", bytes, "from", from, "to", ts.changelogEnd, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
