package cluster

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
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

// tickFixture is an instance over a one-broker kfake cluster whose
// stateful task writes a changelog record at the next flush after tick
// is set; it is started, has processed one order and has nothing left to
// consume. done receives Run's error; stop ends it.
type tickFixture struct {
	c    *kfake.Cluster
	tick atomic.Bool
	adm  *kadm.Client
	ctx  context.Context
	done chan error
}

func newTickFixture(t *testing.T) *tickFixture {
	t.Helper()
	f := &tickFixture{c: oneBrokerCluster(t, "orders"), done: make(chan error, 1)}
	c := f.c
	topo := countTopology(func(int32) Task { return tickTask{tick: &f.tick} })
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	f.ctx = ctx
	in, err := New(ctx, cfg, topo)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := f.done
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	f.adm = adm
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
	return f
}

// TestDroppedMemberCommitsNoWrites: a transaction that commits no
// offsets carries no generation for the coordinator to check, so an
// instance the group had dropped — before it noticed — committed its
// writes (watermarks, flushed state) for tasks another member owned.
// Such a transaction now checks the membership first and aborts.
func TestDroppedMemberCommitsNoWrites(t *testing.T) {
	f := newTickFixture(t)
	c, ctx, adm, done := f.c, f.ctx, f.adm, f.done
	tick := &f.tick
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

// TestMembershipCheckedAfterWritesLanded: a transaction without offsets
// asks the coordinator whether the group still has this member only once
// its writes are in the log. It asked first and flushed after: an
// instance paused in between (a GC, SIGSTOP) until the group moved its
// tasks could then land its writes after the new owner had listed the
// changelog's end for its restore, and commit them — the new owner
// restored without them (a window the old owner fired fired again).
// Asked after the flush, a "still a member" answer means the writes are
// below any end a new owner lists, which its restore then waits on.
func TestMembershipCheckedAfterWritesLanded(t *testing.T) {
	f := newTickFixture(t)
	c := f.c
	changelog := ChangelogTopic("app", "count")
	id := func() [16]byte {
		td, err := f.adm.ListTopics(f.ctx, changelog)
		if err != nil || td[changelog].Err != nil {
			t.Fatalf("listing %s: %v %v", changelog, err, td[changelog].Err)
		}
		return td[changelog].ID
	}()
	var landed, early atomic.Bool
	described := make(chan struct{}, 1)
	// The changelog write is held until the membership is asked, for a
	// moment at most (so that a flush that waits for it ends).
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range req.(*kmsg.ProduceRequest).Topics {
			if rt.Topic == changelog || rt.TopicID == id {
				c.DropControl()
				c.SleepControl(func() {
					select {
					case <-described:
					case <-time.After(500 * time.Millisecond):
					}
				})
				landed.Store(true)
			}
		}
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.DescribeGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !landed.Load() {
			early.Store(true)
		}
		select {
		case described <- struct{}{}:
		default:
		}
		return nil, nil, false
	})
	ended := make(chan bool, 1)
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.DropControl()
		ended <- req.(*kmsg.EndTxnRequest).Commit
		return nil, nil, false
	})
	f.tick.Store(true)
	select {
	case <-ended:
	case err := <-f.done:
		t.Fatalf("Run returned %v before ending the transaction", err)
	}
	if early.Load() {
		t.Fatal("the membership was asked before the transaction's writes were in the log")
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

// TestDuplicateInstanceIDStops: a second process started with the
// instance id of a running one takes its place in the group (static
// membership); the first is fenced (FENCED_INSTANCE_ID) and stops with an
// error that says so. It joined the group again, fencing the second, and
// the two took the group slot from each other for ever, their
// transactions aborted, neither saying why.
func TestDuplicateInstanceIDStops(t *testing.T) {
	c := oneBrokerCluster(t, "orders")
	topo := countTopology(func(int32) Task { return nopTask{} })
	cfg := Config{Brokers: c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func() (*Instance, chan error) {
		in, err := New(ctx, cfg, topo)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()
		return in, done
	}
	first, firstDone := run()
	for {
		if _, gen := first.groupMetadata(); gen > 0 {
			break
		}
		select {
		case err := <-firstDone:
			t.Fatalf("the first instance stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	_, secondDone := run()
	var err error
	select {
	case err = <-firstDone:
	case err = <-secondDone:
	case <-time.After(time.Minute):
		t.Fatal("two instances with one instance id still run after a minute")
	}
	if err == nil || !strings.Contains(err.Error(), "instance id") || !errors.Is(err, kerr.FencedInstanceID) {
		t.Fatalf("Run: %v, want the error of an instance id taken by another instance", err)
	}
}

// TestStalePromisesIgnored: franz-go finishes promises on its own
// goroutines, also after Close has returned, so a write of the client that
// rejoin closed can fail ("client closed") or land while the next
// client's transaction is open. Neither may count for the open
// transaction: the failure made the next commit stop the instance with "a
// transaction committed although a write failed" (seen in
// TestClusterZombieFenced), and a landed changelog write would move the
// task's changelog end.
func TestStalePromisesIgnored(t *testing.T) {
	in := &Instance{}
	old := context.WithValue(context.Background(), prodCtxKey{}, "closed client")
	in.prodMu.Lock()
	in.prodCtx = context.WithValue(context.Background(), prodCtxKey{}, "current client")
	in.prodMu.Unlock()
	ts := &taskState{}
	logPromise := ts.changelogPromise(in)

	in.dataPromise(&kgo.Record{Topic: "t", Partition: 0, Context: old}, kgo.ErrClientClosed)
	logPromise(&kgo.Record{Topic: "t-changelog", Context: old}, kgo.ErrClientClosed)
	if err := in.takeProdErr(); err != nil {
		t.Fatalf("a closed client's failed write counted for the current transaction: %v", err)
	}
	logPromise(&kgo.Record{Topic: "t-changelog", Context: old, Offset: 41}, nil)
	if ts.pendingEnd != 0 {
		t.Fatalf("a closed client's changelog write moved the changelog end to %d", ts.pendingEnd)
	}

	logPromise(&kgo.Record{Topic: "t-changelog", Context: in.prodCtx, Offset: 7}, nil)
	if ts.pendingEnd != 8 {
		t.Fatalf("changelog end after the current client's write at offset 7: %d, want 8", ts.pendingEnd)
	}
	in.dataPromise(&kgo.Record{Topic: "t", Context: in.prodCtx}, kgo.ErrClientClosed)
	if err := in.takeProdErr(); err == nil {
		t.Fatal("the current client's failed write was not recorded")
	}
	// A record whose transaction could not begin never reached Produce
	// (no context): its failure is the current transaction's.
	in.dataPromise(&kgo.Record{Topic: "t"}, errors.New("begin failed"))
	if err := in.takeProdErr(); err == nil {
		t.Fatal("a failure before Produce was not recorded")
	}
}
