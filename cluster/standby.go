package cluster

import (
	"context"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Standby replicas (Config.StandbyReplicas): an instance keeps warm
// copies of stateful tasks other instances own, by following their
// changelog partitions, so that when such a task moves to it the restore
// reads only the last records. Placement needs no assignor of our own:
// every instance reads the group's assignment from the coordinator
// (DescribeGroups) and takes, for each stateful task, the standby_replicas
// members that follow the task's owner in the members sorted by instance
// id. Instances agree on the placement as soon as they see the same
// assignment; a standby in the wrong place for a moment costs only
// memory.

// standbyRefresh is how often an instance re-reads the assignment.
const standbyRefresh = 2 * time.Second

// runStandbys keeps the standby tasks placed and fed until ctx ends.
func (in *Instance) runStandbys(ctx context.Context) {
	next := time.Now()
	for ctx.Err() == nil {
		if time.Now().After(next) {
			in.placeStandbys(ctx)
			next = time.Now().Add(standbyRefresh)
		}
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fs := in.stby.PollFetches(pctx)
		cancel()
		in.stbyMu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			sub := in.changelogSub(r.Topic)
			if sub < 0 {
				return
			}
			ts := in.standbys[taskID{sub, r.Partition}]
			if ts == nil || r.Offset < ts.changelogEnd {
				return // no longer a standby here (promoted), or already applied
			}
			ts.changelogEnd = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			var err error
			if isWatermarkKey(r.Key) {
				if ts.comb != nil {
					err = ts.comb.restore(r.Key, r.Value)
				}
			} else {
				err = ts.task.Restore(r.Key, r.Value)
			}
			if err != nil {
				in.log.Warn("cluster: standby replica dropped: bad changelog record", "task", ts.id.String(), "offset", r.Offset, "error", err)
				in.dropStandby(ts.id)
			}
		})
		in.stbyMu.Unlock()
	}
}

func (in *Instance) changelogSub(topic string) int {
	for i, st := range in.topo.SubTopologies {
		if st.Stateful && ChangelogTopic(in.cfg.ApplicationID, st.Name) == topic {
			return i
		}
	}
	return -1
}

// placeStandbys computes this instance's standby tasks from the group's
// assignment and starts or stops following their changelogs.
func (in *Instance) placeStandbys(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	gs, err := in.adm.DescribeGroups(dctx, in.cfg.ApplicationID)
	cancel()
	if err != nil {
		return
	}
	g, ok := gs[in.cfg.ApplicationID]
	if !ok || g.Err != nil || g.State != "Stable" {
		return
	}
	type member struct {
		id    string
		owned map[string][]int32
	}
	var members []member
	for _, m := range g.Members {
		id := m.MemberID
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		mm := member{id: id, owned: map[string][]int32{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				mm.owned[t.Topic] = t.Partitions
			}
		}
		members = append(members, mm)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].id < members[j].id })
	me := -1
	for i, m := range members {
		if m.id == in.cfg.InstanceID {
			me = i
		}
	}
	if me < 0 {
		return
	}
	want := map[taskID]bool{}
	for i, m := range members {
		if i == me {
			continue
		}
		for sub, st := range in.topo.SubTopologies {
			if !st.Stateful {
				continue
			}
			for _, p := range m.owned[in.inputs[sub]] {
				for r := 1; r <= in.cfg.StandbyReplicas && r < len(members); r++ {
					if (i+r)%len(members) == me {
						want[taskID{sub, p}] = true
					}
				}
			}
		}
	}
	ends, ok := in.standbyEnds(ctx, want)
	if !ok {
		return // tried again at the next refresh
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stbyMu.Lock()
	defer in.stbyMu.Unlock()
	for id, ts := range in.standbys {
		if !want[id] {
			// Kept as a departed task: when the group is between the two
			// rounds of a cooperative rebalance, the task may be about to
			// come here, and it restores from where the standby got.
			in.dropStandby(id)
			ts.cachedAt = time.Now()
			ts.restored = true
			in.cache[id] = ts
		}
	}
	add := map[string]map[int32]kgo.Offset{}
	for id := range want {
		if in.standbys[id] != nil || in.tasks[id] != nil {
			continue
		}
		ts := in.cache[id]
		delete(in.cache, id)
		if ts != nil && !in.cacheFresh(ts) {
			ts = nil
		}
		if ts == nil {
			ts = in.newTask(id) // loads a local snapshot if there is one
			if !ts.fromSnapshot {
				ts.changelogEnd = 0
			} else if end, ok := ends[id]; !ok || ts.changelogEnd > end {
				// The changelog is shorter than the snapshot says (it
				// was deleted and created again; or its end could not
				// be listed): start from the changelog alone, as a
				// restore does.
				in.log.Warn("cluster: the local state snapshot is ahead of the changelog; the standby replica follows the changelog from its start", "task", id.String(), "snapshot_offset", ts.changelogEnd, "changelog_end", end)
				in.freshState(ts)
				ts.changelogEnd = 0
			}
		}
		ts.fromSnapshot = false
		in.standbys[id] = ts
		t := ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name)
		if add[t] == nil {
			add[t] = map[int32]kgo.Offset{}
		}
		add[t][id.part] = kgo.NewOffset().At(ts.changelogEnd)
	}
	if len(add) > 0 {
		in.stby.AddConsumePartitions(add)
		in.log.Info("cluster: standby replicas", "tasks", len(in.standbys))
	}
}

// standbyEnds lists the end (high watermark) of the changelog partitions
// of the standby tasks in want that are not placed yet, for the check of
// a local snapshot against its changelog; ok is false if they could not
// be listed.
func (in *Instance) standbyEnds(ctx context.Context, want map[taskID]bool) (ends map[taskID]int64, ok bool) {
	in.mu.Lock()
	in.stbyMu.Lock()
	topics := map[string]bool{}
	var ids []taskID
	for id := range want {
		if in.standbys[id] == nil && in.tasks[id] == nil && in.cache[id] == nil {
			ids = append(ids, id)
			topics[ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name)] = true
		}
	}
	in.stbyMu.Unlock()
	in.mu.Unlock()
	if len(ids) == 0 {
		return nil, true
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	offs, err := in.adm.ListEndOffsets(lctx, names...)
	cancel()
	if err != nil {
		return nil, false
	}
	ends = map[taskID]int64{}
	for _, id := range ids {
		o, ok := offs.Lookup(ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name), id.part)
		if ok && o.Err == nil {
			ends[id] = o.Offset
		}
	}
	return ends, true
}

// dropStandby stops following a standby's changelog (stbyMu held).
func (in *Instance) dropStandby(id taskID) {
	if _, ok := in.standbys[id]; !ok {
		return
	}
	delete(in.standbys, id)
	in.stby.RemoveConsumePartitions(map[string][]int32{ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name): {id.part}})
}

// promoteStandby hands a standby over to become the active task (in.mu
// held): the restore then reads only what the standby had not applied.
func (in *Instance) promoteStandby(id taskID) *taskState {
	if in.stby == nil {
		return nil
	}
	in.stbyMu.Lock()
	defer in.stbyMu.Unlock()
	ts := in.standbys[id]
	if ts == nil {
		return nil
	}
	in.dropStandby(id)
	ts.task.Commit()
	if ts.comb != nil {
		ts.comb.commit()
	}
	ts.restored = false
	ts.promoted = true
	in.log.Info("cluster: standby replica promoted", "task", id.String(), "changelog_offset", ts.changelogEnd)
	return ts
}

// StandbyStatus is one standby replica of this instance.
type StandbyStatus struct {
	ID    string `json:"id"`
	Topic string `json:"changelog"`
	// Offset is the next changelog offset the standby will apply.
	Offset int64 `json:"offset"`
}

// standbyStatus lists the standby tasks (for Status).
func (in *Instance) standbyStatus() []StandbyStatus {
	if in.stby == nil {
		return nil
	}
	in.stbyMu.Lock()
	defer in.stbyMu.Unlock()
	out := make([]StandbyStatus, 0, len(in.standbys))
	for id, ts := range in.standbys {
		out = append(out, StandbyStatus{ID: id.String(), Topic: ChangelogTopic(in.cfg.ApplicationID, in.topo.SubTopologies[id.sub].Name), Offset: ts.changelogEnd})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
