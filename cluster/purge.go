package cluster

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Repartition topics are created without time retention: a repartition
// record's timestamp is its event time, and Kafka's time retention (7 days
// by default) goes by record timestamps, so a backfill of older data — or
// a downstream task further behind than the retention — would lose
// records before they were processed. Instead, at most every
// PurgeInterval after a commit, an instance deletes the records of the
// repartition partitions it owns before their committed offsets
// (DeleteRecords), as Kafka Streams purges its repartition topics. No
// instance reads below a committed offset again: a new owner starts there.

// DefaultPurgeInterval is how often consumed repartition records are
// deleted.
const DefaultPurgeInterval = 30 * time.Second

// maybePurge deletes, in the background, the repartition records before
// the committed offsets of the partitions this instance owns (in.mu held,
// right after a commit). One purge runs at a time.
func (in *Instance) maybePurge() {
	if len(in.inputs) < 2 || time.Since(in.purgedAt) < in.cfg.PurgeInterval || in.purging {
		return
	}
	committed := in.cl.CommittedOffsets()
	offs := kadm.Offsets{}
	for sub, t := range in.inputs[1:] {
		for p, eo := range committed[t] {
			if in.tasks[taskID{sub + 1, p}] == nil || eo.Offset <= in.purged[taskID{sub + 1, p}] {
				continue
			}
			offs.Add(kadm.Offset{Topic: t, Partition: p, At: eo.Offset})
		}
	}
	if len(offs) == 0 {
		return
	}
	in.purgedAt, in.purging = time.Now(), true
	in.purgeWG.Add(1)
	go func() {
		defer in.purgeWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), in.cfg.SessionTimeout)
		resp, err := in.adm.DeleteRecords(ctx, offs)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		in.purging = false
		if err != nil {
			// Nothing is lost: the records stay until the next purge.
			in.log.Warn("cluster: deleting consumed repartition records", "error", err)
			return
		}
		offs.Each(func(o kadm.Offset) {
			id := taskID{in.subOf(o.Topic), o.Partition}
			in.purged[id] = max(in.purged[id], o.At)
		})
	}()
}
