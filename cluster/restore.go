package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreStallTimeout is how long a restore waits without any record
// before it accepts the changelog's end as reached: the offsets before
// the end may all have been removed by compaction.
const restoreStallTimeout = 3 * time.Second

// restore rebuilds a stateful task from its changelog partition: from
// the start, or from where this instance left it when the task was here
// before, up to the last stable offset (the previous owner's transaction
// is resolved by then: see onAssigned).
func (in *Instance) restore(ctx context.Context, ts *taskState) error {
	start := time.Now()
	topic := ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[ts.id.sub].Name)
	p := ts.id.part
	// The end of the changelog (its last stable offset), asked a few
	// times: a leader moving or a metadata refresh fails one request.
	var o kadm.ListedOffset
	var err error
	for attempt := range 5 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var offs kadm.ListedOffsets
		offs, err = in.adm.ListCommittedOffsets(ctx, topic)
		if err == nil {
			var ok bool
			if o, ok = offs.Lookup(topic, p); !ok {
				err = fmt.Errorf("no offset listed for partition %d", p)
			} else {
				err = o.Err
			}
		}
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: task %s: end of changelog %s partition %d: %w", ts.id, topic, p, err)
	}
	end := o.Offset
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
	if from < end {
		in.rest.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}})
		defer in.rest.RemoveConsumePartitions(map[string][]int32{topic: {p}})
		pos := from
		lastProgress := time.Now()
		for pos < end {
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
			progressed := false
			var rerr error
			fs.EachRecord(func(r *kgo.Record) {
				if rerr != nil || r.Topic != topic || r.Partition != p || r.Offset < pos {
					return
				}
				pos = r.Offset + 1
				progressed = true
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
			if progressed {
				lastProgress = time.Now()
			} else if time.Since(lastProgress) > restoreStallTimeout {
				in.log.Warn("cluster: changelog restore reached no record before the end; taking the end as reached (the last offsets were compacted away)",
					"task", ts.id.String(), "topic", topic, "partition", p, "at", pos, "end", end)
				break
			}
		}
	}
	ts.task.Commit()
	if ts.comb != nil {
		ts.comb.commit()
	}
	ts.changelogEnd = end
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
	in.log.Info("cluster: task restored", "task", ts.id.String(), "records", records, "bytes", bytes, "from", from, "to", end, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}
