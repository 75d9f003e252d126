package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTaskRevokedInOpenTransactionKeepsNoState: a task revoked while a
// transaction is open — possible once the poll that brought no records
// lets a rebalance run after a restore fired windows in a new
// transaction — holds changes the transaction will not commit (franz-go
// aborts a transaction during which partitions were revoked). Its state
// must neither stay in the cache nor be snapshotted as the state at its
// last committed changelog offset: the task coming back to this instance
// would start from changes nobody committed (a window marked fired whose
// output was aborted never fires again).
func TestTaskRevokedInOpenTransactionKeepsNoState(t *testing.T) {
	for _, why := range []string{"revoked", "lost"} {
		t.Run(why, func(t *testing.T) {
			topo := &Topology{Source: "in", SubTopologies: []SubTopology{
				{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
				{Name: "w", Stateful: true, NewTask: func(int32) Task { return newMapTask() }},
			}}
			in := &Instance{cfg: Config{StateDir: t.TempDir(), ApplicationID: "app", InstanceID: "a", SnapshotInterval: DefaultSnapshotInterval},
				topo: topo, parts: []int32{1, 1}, inputs: []string{"in", "rep"}, metrics: newMetrics("app"),
				tasks: map[taskID]*taskState{}, cache: map[taskID]*taskState{}, restoring: map[taskID]*taskState{},
				log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			id := taskID{1, 0}
			task := newMapTask()
			task.tab.Put("k", "committed")
			task.tab.Commit()
			ts := &taskState{id: id, task: task, restored: true, changelogEnd: 7, snapshotAt: -1}
			in.tasks[id] = ts
			in.maybeSnapshot(ts, true) // the last committed state, on disk
			in.snapWG.Wait()

			task.tab.Put("k", "uncommitted") // in the open transaction
			in.uncommitted = true
			in.drop(map[string][]int32{"rep": {0}}, why)
			in.snapWG.Wait()

			if c := in.cache[id]; c != nil {
				if v, _ := c.task.(*mapTask).tab.Get("k"); v != "committed" {
					t.Fatalf("the task revoked in an open transaction is cached with k=%q", v)
				}
			}
			got := map[string]string{}
			end, err := readSnapshot(in.snapshotPath(id), func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			})
			if err != nil || end != 7 || got["k"] != "committed" {
				t.Fatalf("snapshot after the revocation: offset %d, state %q, error %v; want offset 7, k=committed", end, got, err)
			}
		})
	}
}

// TestCommitWithoutTransactionKeepsTasksCacheable: a restore whose
// watermark fired nothing marks the tasks changed but opens no
// transaction; the next commit, finding none open, leaves the tasks at
// their committed state, and a task revoked after it still stays in the
// cache for a quick return (the flag stayed set until the next
// transaction, and every revocation meanwhile dropped the task's state).
func TestCommitWithoutTransactionKeepsTasksCacheable(t *testing.T) {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers("127.0.0.1:1"), kgo.ConsumerGroup("app"), kgo.TransactionalID("app-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	topo := &Topology{Source: "in", SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "w", Stateful: true, NewTask: func(int32) Task { return newMapTask() }},
	}}
	in := &Instance{cfg: Config{ApplicationID: "app", InstanceID: "a"}, sess: sess, cl: sess.Client(),
		topo: topo, parts: []int32{1, 1}, inputs: []string{"in", "rep"}, metrics: newMetrics("app"),
		tasks: map[taskID]*taskState{}, cache: map[taskID]*taskState{}, restoring: map[taskID]*taskState{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	id := taskID{1, 0}
	in.tasks[id] = &taskState{id: id, task: newMapTask(), restored: true, snapshotAt: -1}
	in.uncommitted = true // a restore's watermark fired nothing
	if err := in.commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	in.drop(map[string][]int32{"rep": {0}}, "revoked")
	if in.cache[id] == nil {
		t.Fatal("a task revoked after a commit with nothing to commit was not cached")
	}
}
