package clusterbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
)

// dedupStep names the dedup step's internal topics.
const dedupStep = "step0-dedup"

// restoreLog collects what instances log after the kill: the first task
// assignment of the instance taking over and every task restore.
type restoreLog struct {
	mu       sync.Mutex
	since    time.Time
	assigned time.Time
	tasks    int
	records  int64
	bytes    int64
	longest  time.Duration
}

func (l *restoreLog) watcher(takeover bool) func(string, time.Time) {
	return func(line string, at time.Time) {
		ll, ok := parseLogLine(line)
		if !ok {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.since.IsZero() || at.Before(l.since) {
			return
		}
		switch ll.Msg {
		case "cluster: tasks assigned":
			if takeover && l.assigned.IsZero() {
				l.assigned = at
			}
		case "cluster: task restored":
			l.tasks++
			l.records += ll.Records
			l.bytes += ll.Bytes
			if d, err := ll.elapsed(); err == nil {
				l.longest = max(l.longest, d)
			}
		}
	}
}

// failover measures one failover: a dedup over FailoverKeys keys on two
// instances; i1 is killed and restarted (restart) or not.
func (b *bench) failover(ctx context.Context, restart bool, session time.Duration, run int) (FailoverRun, error) {
	keys, parts := b.cfg.FailoverKeys, b.cfg.Partitions
	fr := FailoverRun{Restart: restart, SessionTimeoutSec: session.Seconds(), Keys: keys, Probes: int(parts)}
	variant := "no-restart"
	if restart {
		variant = "restart"
	}
	app := fmt.Sprintf("%s-fo-%s-%s-r%d", b.stamp, variant, dur(session), run+1)
	in, out := app+"-in", app+"-out"
	what := fmt.Sprintf("failover (%s, session timeout %v), run %d/%d", variant, session, run+1, b.cfg.Runs)
	if err := createTopics(ctx, b.broker.addr, parts, in, out); err != nil {
		return fr, err
	}
	// Key i is user u<i>, once, at a time growing with i. Probe round r
	// (0: before the kill, 1: after it) is users u<keys+r*parts+p>, one
	// per partition p, after every key.
	span := b.cfg.EventSpan.Milliseconds()
	b.progress("%s: producing %d keys", what, keys)
	err := b.prod.produce(ctx, in, keys, func(i int) ([]byte, []byte, int32) {
		return orderKey(i), appendOrder(make([]byte, 0, 48), userName(i), 1, baseTS+int64(i)*span/int64(keys)), int32(i % int(parts))
	})
	if err != nil {
		return fr, err
	}
	dir := filepath.Join(b.dir, app)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fr, err
	}
	spec, err := writeSpec(dir, "pipeline.yaml", dedupSpec(app, in, out, b.cfg.Delivery, b.cfg.CommitInterval, session))
	if err != nil {
		return fr, err
	}
	rd, err := newReader(b.broker.addr, out)
	if err != nil {
		return fr, err
	}
	defer rd.close()
	const rounds = 2
	all := keys + rounds*int(parts)
	seen := newBitset(all)
	var outputs, bad int64
	var probes [rounds]int64
	var firstProbe, lastProbe [rounds]time.Time
	each := func(r *kgo.Record, at time.Time) {
		u, ok := userField(r.Value)
		if !ok || u >= all {
			bad++
			return
		}
		if !seen.add(u) {
			fr.Duplicates++
			return
		}
		outputs++
		if u >= keys {
			round := (u - keys) / int(parts)
			probes[round]++
			if firstProbe[round].IsZero() {
				firstProbe[round] = at
			}
			lastProbe[round] = at
		}
	}
	sendProbes := func(round int) error {
		recs := make([]*kgo.Record, parts)
		for p := range parts {
			recs[p] = &kgo.Record{Topic: in, Partition: p, Key: fmt.Appendf(nil, "probe%d-%d", round, p),
				Value: appendOrder(nil, userName(keys+round*int(parts)+int(p)), 1, baseTS+span+int64(round))}
		}
		if err := b.prod.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("producing the probes: %w", err)
		}
		return nil
	}

	// i1 starts first and owns every task before i2 joins and takes half
	// of them: the tasks i1 keeps were never on i2, whose restore after
	// the kill then reads their changelogs from the start (a survivor
	// that owned a task before restores only what changed since).
	b.progress("%s: starting i1, then i2 once i1 owns every task", what)
	start := time.Now()
	rl := &restoreLog{}
	i1, err := b.instance(app, "i1", spec, nil)
	if err != nil {
		return fr, err
	}
	if _, err := b.waitSettled(ctx, app, 1, i1); err != nil {
		return fr, err
	}
	i2, err := b.instance(app, "i2", spec, rl.watcher(!restart))
	if err != nil {
		return fr, err
	}
	var built time.Time
	err = b.waitFor(ctx, rd, what+": building the state", func(r *kgo.Record, at time.Time) {
		each(r, at)
		if outputs == int64(keys) && built.IsZero() {
			built = at
		}
	}, func() bool { return outputs >= int64(keys) }, func() string {
		return fmt.Sprintf("%d of %d keys after %.0fs", outputs, keys, time.Since(start).Seconds())
	}, nil, i1, i2)
	if err != nil {
		return fr, err
	}
	fr.BuildSec = built.Sub(start).Seconds()
	fr.BuildKeysPerSec = float64(keys) / fr.BuildSec
	// The kill must find the group settled (a cooperative rebalance
	// hands a joining member its partitions in a second round, after the
	// build may already be over), and the instances in their steady
	// commit loop.
	b.progress("%s: %d keys of state in %.1f s; waiting for the group to settle", what, keys, fr.BuildSec)
	g, err := b.waitSettled(ctx, app, 2, i1, i2)
	if err != nil {
		return fr, err
	}
	fr.KilledTasks = g.owned["i1"][in]
	fr.KilledStatefulTasks = g.owned["i1"][cluster.RepartitionTopic(app, dedupStep)]
	// The probes' way through the pipeline without a failure: source
	// task, repartition topic, dedup task, each hop committed.
	sent := time.Now()
	if err := sendProbes(0); err != nil {
		return fr, err
	}
	err = b.waitFor(ctx, rd, what+": probes before the kill", each, func() bool { return probes[0] >= int64(parts) }, func() string {
		return fmt.Sprintf("%d of %d probes after %.1fs", probes[0], parts, time.Since(sent).Seconds())
	}, nil, i1, i2)
	if err != nil {
		return fr, err
	}
	fr.BaselineProbeSec = lastProbe[0].Sub(sent).Seconds()
	select {
	case <-time.After(b.cfg.CommitInterval):
	case <-ctx.Done():
		return fr, ctx.Err()
	}
	b.progress("%s: SIGKILL i1 (it owns %d source and %d dedup tasks)", what, fr.KilledTasks, fr.KilledStatefulTasks)

	rl.mu.Lock()
	rl.since = time.Now()
	kill := rl.since
	rl.mu.Unlock()
	i1.kill()
	survivors := []*proc{i2}
	if restart {
		i1, err = b.instance(app, "i1", spec, rl.watcher(true))
		if err != nil {
			return fr, err
		}
		survivors = append(survivors, i1)
	}
	if err := sendProbes(1); err != nil {
		return fr, err
	}
	err = b.waitFor(ctx, rd, what+": after the SIGKILL", each, func() bool { return probes[1] >= int64(parts) }, func() string {
		return fmt.Sprintf("%d of %d probes after %.1fs", probes[1], parts, time.Since(kill).Seconds())
	}, nil, survivors...)
	if err != nil {
		return fr, err
	}
	fr.FailoverSec = lastProbe[1].Sub(kill).Seconds()
	fr.FirstProbeSec = firstProbe[1].Sub(kill).Seconds()
	if err := stopAll(30*time.Second, survivors...); err != nil {
		return fr, err
	}
	_ = rd.poll(ctx, 200*time.Millisecond, func(r *kgo.Record) { each(r, time.Now()) })
	rl.mu.Lock()
	if !rl.assigned.IsZero() {
		fr.TakeoverSec = rl.assigned.Sub(kill).Seconds()
	}
	fr.RestoredTasks, fr.RestoredRecords, fr.RestoredBytes, fr.RestoreMaxSec = rl.tasks, rl.records, rl.bytes, rl.longest.Seconds()
	rl.mu.Unlock()
	fr.Exact = outputs == int64(all) && fr.Duplicates == 0 && bad == 0
	b.progress("%s: failover %.2f s (first probe %.2f s), restored %d records in %d tasks", what, fr.FailoverSec, fr.FirstProbeSec, fr.RestoredRecords, fr.RestoredTasks)
	return fr, nil
}

// waitSettled polls the group of app until it is settled with n members.
func (b *bench) waitSettled(ctx context.Context, app string, n int, ps ...*proc) (group, error) {
	end := time.Now().Add(b.cfg.Timeout)
	for {
		g, err := b.describe(ctx, app)
		if err == nil && g.settled(n) {
			return g, nil
		}
		if err := unexpectedExit(ps...); err != nil {
			return g, err
		}
		if time.Now().After(end) {
			return g, fmt.Errorf("group %s not settled with %d members owning tasks within %v (state %s, members %v, last error %v)", app, n, b.cfg.Timeout, g.state, g.owned, err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return g, ctx.Err()
		}
	}
}
