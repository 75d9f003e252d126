package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// oneBrokerCluster starts a one-broker kfake cluster with the topics
// (one partition each); it is closed when the test ends.
func oneBrokerCluster(t *testing.T, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// countTopology reads orders: a source sub-topology forwards every
// record to a stateful sub-topology "count" of the tasks newTask makes.
func countTopology(newTask func(int32) Task) *Topology {
	return &Topology{Source: "orders", MaxOutOfOrderness: -1, SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return forwardTask{} }},
		{Name: "count", Stateful: true, NewTask: newTask},
	}}
}

// forwardTask forwards every record to the next sub-topology as is.
type forwardTask struct{ nopTask }

func (forwardTask) Process(out Output, r *kgo.Record) error {
	out.Forward(r.Key, r.Value, r.Timestamp.UnixMilli())
	return nil
}

// countTask counts records per key in a table; a record whose value is
// "fail" is counted and then fails the task.
type countTask struct{ *mapTask }

func (c countTask) Process(out Output, r *kgo.Record) error {
	k := string(r.Key)
	n, _ := c.tab.Get(k)
	c.tab.Put(k, n+"+")
	if string(r.Value) == "fail" {
		return errors.New("the task failed")
	}
	return nil
}

func (c countTask) Flush(out Output) error {
	c.tab.Flush(func(k string, v []byte) { out.Changelog([]byte(k), v) })
	return nil
}

// TestFailedRunSnapshotsNoUncommittedState: an instance that stops on an
// error in the middle of a transaction leaves the last committed snapshot
// of its tasks, not their state with the aborted transaction's changes
// (the revocation on close wrote that state as if committed: a restart
// under the same instance id loaded it and processed the same records
// again on top of it).
func TestFailedRunSnapshotsNoUncommittedState(t *testing.T) {
	for _, eo := range []bool{true, false} {
		t.Run(map[bool]string{true: "exactly_once", false: "at_least_once"}[eo], func(t *testing.T) {
			c := oneBrokerCluster(t, "orders")
			topo := countTopology(func(int32) Task { return countTask{newMapTask()} })
			dir := t.TempDir()
			cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: eo,
				CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, StateDir: dir, SnapshotInterval: time.Nanosecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			ctx := context.Background()
			in, err := New(ctx, cfg, topo)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			produce := func(k, v string) {
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			produce("k", "ok")
			produce("k", "fail")
			err = in.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "the task failed") {
				t.Fatalf("Run: %v, want the task's error", err)
			}
			got := map[string]string{}
			if _, err := readSnapshot(in.snapshotPath(taskID{1, 0}), func(k, v []byte) error {
				got[string(k)] = string(v)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// "k" counted "+" once at most (if "ok" committed before
			// "fail" was processed); "++" counts the failed record.
			if got["k"] == "++" {
				t.Fatalf("the snapshot holds the failed transaction's state: %q", got)
			}
		})
	}
}
