package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// tickTask is a stateful task that writes one changelog record at the
// next flush after its flag is set (a write with no record consumed,
// like a watermark published on a commit).
type tickTask struct {
	nopTask
	tick *atomic.Bool
}

func (k tickTask) Flush(out Output) error {
	if k.tick.CompareAndSwap(true, false) {
		out.Changelog([]byte("tick"), []byte("1"))
	}
	return nil
}

// TestDroppedMemberCommitsNoWrites: a transaction that commits no
// offsets carries no generation for the coordinator to check, so an
// instance the group had dropped — before it noticed — committed its
// writes (watermarks, flushed state) for tasks another member owned.
// Such a transaction now checks the membership first and aborts.
func TestDroppedMemberCommitsNoWrites(t *testing.T) {
	c := oneBrokerCluster(t, "orders")
	var tick atomic.Bool
	topo := countTopology(func(int32) Task { return tickTask{tick: &tick} })
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, err := New(ctx, cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Wait until the record is through both sub-topologies, committed:
	// from then on the instance has nothing to consume.
	repart := RepartitionTopic("app", "count")
	for {
		offs, err := adm.FetchOffsets(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := offs.Lookup("orders", 0)
		b, _ := offs.Lookup(repart, 0)
		if a.At == 1 && b.At == 1 {
			break
		}
		select {
		case <-done:
			t.Fatal("Run returned early")
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The coordinator drops the member; its heartbeats still succeed (it
	// has not noticed yet).
	var dropped atomic.Bool
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !dropped.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		return req.ResponseKind(), nil, true
	})
	dropped.Store(true)
	defer dropped.Store(false)
	resp, err := adm.LeaveGroup(ctx, kadm.LeaveGroup("app").InstanceIDs("a"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan bool, 1)
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.DropControl()
		ended <- req.(*kmsg.EndTxnRequest).Commit
		return nil, nil, false
	})
	tick.Store(true) // the next commit writes a changelog record, no offsets
	select {
	case commit := <-ended:
		if commit {
			t.Fatal("an instance the group had dropped committed a transaction")
		}
	case err := <-done:
		t.Fatalf("Run returned %v before ending the transaction", err)
	}
}

// clientCounter counts the Kafka clients opened and closed.
type clientCounter struct{ opened, closed atomic.Int32 }

func (c *clientCounter) OnNewClient(*kgo.Client)    { c.opened.Add(1) }
func (c *clientCounter) OnClientClosed(*kgo.Client) { c.closed.Add(1) }

// TestNewClosesClientsOnFailure: New that fails after opening clients
// closes every one of them (the standby replicas' client was left open
// when the group client could not be created).
func TestNewClosesClientsOnFailure(t *testing.T) {
	c := oneBrokerCluster(t, "orders")
	var count clientCounter
	topo := countTopology(func(int32) Task { return nopTask{} })
	// A transaction timeout Kafka cannot carry: only the group client
	// (the last one opened) refuses it.
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true, StandbyReplicas: 1,
		TransactionTimeout: 30 * 24 * time.Hour, ClientOptions: []kgo.Opt{kgo.WithHooks(&count)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := New(context.Background(), cfg, topo); err == nil {
		t.Fatal("New succeeded with a transaction timeout of 30 days")
	}
	if o, cl := count.opened.Load(), count.closed.Load(); o != 3 || cl != o {
		t.Fatalf("%d clients opened, %d closed; want 3 and 3", o, cl)
	}
}

// TestRejoinRacesNoWritePromise: the writes of a fenced transaction may
// complete while the instance rejoins the group; their promises and the
// rejoin both reset or move a task's pending changelog end (run under
// -race: rejoin wrote it without the producer lock).
func TestRejoinRacesNoWritePromise(t *testing.T) {
	c := oneBrokerCluster(t, "orders")
	topo := countTopology(func(int32) Task { return nopTask{} })
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	in, err := New(context.Background(), cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	defer in.close(false)
	// The group client joins already: onAssigned may run meanwhile.
	in.mu.Lock()
	ts := in.newTask(taskID{1, 0})
	ts.restored = true
	in.tasks[ts.id] = ts
	promise := ts.changelogPromise(in)
	in.mu.Unlock()
	done := make(chan struct{})
	go func() { // a write of the fenced transaction completing
		defer close(done)
		promise(&kgo.Record{Topic: ChangelogTopic("app", "count"), Offset: 7}, nil)
	}()
	if err := in.rejoin(errors.New("fenced")); err != nil {
		t.Fatal(err)
	}
	<-done
}
