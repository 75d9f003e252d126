package cluster

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStandbyIgnoresSnapshotAheadOfChangelog: a standby replica that
// starts from a local snapshot checks it against its changelog, as a
// restore does: a snapshot ahead of the changelog (the topic was deleted
// and created again) is dropped and the standby follows the changelog
// from its start. The standby skipped the check: it kept the stale state
// and skipped the new changelog's records up to the snapshot's offset.
func TestStandbyIgnoresSnapshotAheadOfChangelog(t *testing.T) {
	changelog := ChangelogTopic("app", "count")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", changelog))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, k := range []string{"k1", "k2"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: changelog, Key: []byte(k), Value: []byte("new")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	topo := countTopology(func(int32) Task { return newMapTask() })
	dir := t.TempDir()
	// Both instances hold a snapshot of the task from the changelog's
	// previous life, at offset 100: the owner's restore ignores it, the
	// standby must too.
	stale := newMapTask()
	stale.tab.Put("stale", "old")
	stale.tab.Commit()
	data, _ := encodeSnapshot(&taskState{id: taskID{1, 0}, task: stale, changelogEnd: 100})
	var ins []*Instance
	var dones []chan error
	for _, id := range []string{"a", "b"} {
		cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: id, ExactlyOnce: true, StandbyReplicas: 1,
			CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, StateDir: dir,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		in, err := New(ctx, cfg, topo)
		if err != nil {
			t.Fatal(err)
		}
		path := in.snapshotPath(taskID{1, 0})
		if err := writeSnapshot(path, data); err != nil {
			t.Fatalf("writing %s: %v", filepath.Base(path), err)
		}
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()
		ins = append(ins, in)
		dones = append(dones, done)
	}
	defer func() {
		cancel()
		for _, d := range dones {
			if err := <-d; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	// Wait until one instance's standby has reached the changelog's end.
	deadline := time.After(time.Minute)
	for {
		for _, in := range ins {
			in.stbyMu.Lock()
			ts := in.standbys[taskID{1, 0}]
			var keys []string
			var at int64
			if ts != nil {
				at = ts.changelogEnd
				ts.task.(*mapTask).tab.Snapshot(func(k string, _ []byte) { keys = append(keys, k) })
			}
			in.stbyMu.Unlock()
			if at < 2 {
				continue
			}
			sort.Strings(keys)
			if len(keys) != 2 || keys[0] != "k1" || keys[1] != "k2" {
				t.Fatalf("the standby holds %v, want [k1 k2] (at changelog offset %d)", keys, at)
			}
			return
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no standby replica reached the changelog's end in a minute")
		}
	}
}
