package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seenTask is a stateful task that reports, at each record it processes,
// the keys its state holds (restored from the changelog).
type seenTask struct {
	*mapTask
	seen chan<- []string
}

func (s seenTask) Process(Output, *kgo.Record) error {
	var keys []string
	s.tab.Snapshot(func(k string, _ []byte) { keys = append(keys, k) })
	sort.Strings(keys)
	select {
	case s.seen <- keys:
	default:
	}
	return nil
}

// restoreFixture is a one-broker kfake cluster with a source topic and
// the changelog of a "count" sub-topology, both one partition, and an
// instance whose count task reports what it restored.
type restoreFixture struct {
	c         *kfake.Cluster
	cl        *kgo.Client // plain producer
	changelog string
	seen      chan []string
	in        *Instance
	done      chan struct{} // closed when Run returned (runErr)
	runErr    error
	stateDir  string // the instance's Config.StateDir, if set
}

func newRestoreFixture(t *testing.T) *restoreFixture {
	t.Helper()
	f := &restoreFixture{changelog: ChangelogTopic("app", "count"), seen: make(chan []string, 16)}
	f.c = oneBrokerCluster(t, "orders", f.changelog)
	var err error
	f.cl, err = kgo.NewClient(kgo.SeedBrokers(f.c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.cl.Close)
	return f
}

// start creates the instance (after the test has arranged the changelog
// and its faults), runs it until the test ends and produces an order
// (key x), which the count task processes once it has restored.
func (f *restoreFixture) start(t *testing.T) {
	t.Helper()
	topo := countTopology(func(int32) Task { return seenTask{newMapTask(), f.seen} })
	cfg := Config{Brokers: f.c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, StateDir: f.stateDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	in, err := New(context.Background(), cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	f.in = in
	ctx, cancel := context.WithCancel(context.Background())
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		f.runErr = in.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
		if f.runErr != nil {
			t.Errorf("Run: %v", f.runErr)
		}
	})
	f.produce(t, f.cl, "orders", "x")
}

func (f *restoreFixture) produce(t *testing.T, cl *kgo.Client, topic, key string) {
	t.Helper()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// openTransaction writes keys to the changelog in a transaction of a
// previous owner's producer (transactional id app-previous), left open:
// the caller ends it. The producer is closed when the test ends.
func (f *restoreFixture) openTransaction(t *testing.T, keys ...string) *kgo.Client {
	t.Helper()
	prev, err := kgo.NewClient(kgo.SeedBrokers(f.c.ListenAddrs()...), kgo.TransactionalID("app-previous"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prev.Close)
	if err := prev.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		f.produce(t, prev, f.changelog, k)
	}
	return prev
}

// firstSeen is the state the count task held at its first record.
func (f *restoreFixture) firstSeen(t *testing.T) []string {
	t.Helper()
	select {
	case keys := <-f.seen:
		return keys
	case <-f.done:
		t.Fatalf("the instance stopped before its count task processed a record: %v", f.runErr)
		return nil
	case <-time.After(time.Minute):
		t.Fatal("the count task processed no record in a minute")
		return nil
	}
}

// wantFirstSeen fails the test unless the count task started with as
// many keys in its state as want holds.
func (f *restoreFixture) wantFirstSeen(t *testing.T, want []string) {
	t.Helper()
	if got := f.firstSeen(t); len(got) != len(want) {
		t.Fatalf("the task started with state %v, want %v", got, want)
	}
}

// onFirstChangelogFetch runs fault, once, while the broker handles the
// first fetch of the changelog (named or by topic id); fault may hold
// the answer with f.c.SleepControl.
func (f *restoreFixture) onFirstChangelogFetch(t *testing.T, fault func()) {
	t.Helper()
	id := f.topicID(t, f.changelog)
	var once sync.Once
	f.c.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, rt := range req.(*kmsg.FetchRequest).Topics {
			if rt.Topic == f.changelog || rt.TopicID == id {
				once.Do(func() {
					f.c.DropControl()
					fault()
				})
			}
		}
		return nil, nil, false
	})
}

func (f *restoreFixture) topicID(t *testing.T, topic string) [16]byte {
	t.Helper()
	td, err := kadm.NewClient(f.cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("listing %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].ID
}

// TestRestoreWaitsOutASilentBroker: a restore reads its changelog up to
// the end it listed however long the broker takes to answer. It gave up
// after 3 s without a record (a slow broker, a leader election during a
// rolling restart) and the task went on with part of its state.
func TestRestoreWaitsOutASilentBroker(t *testing.T) {
	f := newRestoreFixture(t)
	want := []string{"k1", "k2", "k3"}
	for _, k := range want {
		f.produce(t, f.cl, f.changelog, k)
	}
	// The fault: the broker does not answer the first fetch of the
	// changelog for 4 s.
	f.onFirstChangelogFetch(t, func() {
		f.c.SleepControl(func() { <-time.After(4 * time.Second) })
	})
	f.start(t)
	f.wantFirstSeen(t, want)
}

// TestRestoreIncludesWritesWhoseMarkerIsLate: a transaction's commit
// returns before its markers are in the changelog; the next owner's
// restore must still include its writes. It read up to the last stable
// offset it listed first, which stops below a transaction whose marker
// is not written yet, and the task went on without the previous owner's
// last committed changes.
func TestRestoreIncludesWritesWhoseMarkerIsLate(t *testing.T) {
	f := newRestoreFixture(t)
	f.produce(t, f.cl, f.changelog, "k0")
	// The previous owner's last transaction: written, committed by the
	// coordinator, markers not yet written — here, not ended until the
	// restore has listed the last stable offset below it and asks again.
	prev := f.openTransaction(t, "k1", "k2")
	listed := make(chan struct{})
	lists := 0 // control functions run one at a time
	f.c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ListOffsetsRequest)
		for _, rt := range r.Topics {
			if rt.Topic == f.changelog && r.IsolationLevel == 1 {
				if lists++; lists == 2 {
					f.c.DropControl()
					close(listed)
				}
				break
			}
		}
		return nil, nil, false
	})
	f.start(t)
	select {
	case <-listed:
	case keys := <-f.seen:
		t.Fatalf("the task started with state %v before the changelog's open transaction resolved", keys)
	}
	if err := prev.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	want := []string{"k0", "k1", "k2"}
	f.wantFirstSeen(t, want)
}

// TestRestoreEndsAtAnAbortedTail: a changelog that ends with an aborted
// transaction ends the restore: its records are not returned, but its
// abort marker moves the position to the end.
func TestRestoreEndsAtAnAbortedTail(t *testing.T) {
	f := newRestoreFixture(t)
	f.produce(t, f.cl, f.changelog, "k0")
	prev := f.openTransaction(t, "k1", "k2")
	if err := prev.EndTransaction(context.Background(), kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if got := f.firstSeen(t); len(got) != 1 || got[0] != "k0" {
		t.Fatalf("the task started with state %v, want [k0]", got)
	}
	f.in.mu.Lock()
	end := f.in.tasks[taskID{1, 0}].changelogEnd
	f.in.mu.Unlock()
	if end != 4 { // k0, k1, k2, the abort marker
		t.Fatalf("changelog offset after the restore: %d, want 4", end)
	}
}

// TestRestoreRunsBetweenPolls: a task restores between the polls of the
// group client with its input paused, while the other tasks go on
// processing and committing. It restored inside the open transaction
// when its first record arrived, and nothing committed until the
// restore ended: a restore longer than the transaction timeout aborted
// the transaction.
func TestRestoreRunsBetweenPolls(t *testing.T) {
	f := newRestoreFixture(t)
	want := []string{"k1", "k2"}
	for _, k := range want {
		f.produce(t, f.cl, f.changelog, k)
	}
	// The changelog's first fetch is not answered until the test says.
	fetched, release := make(chan struct{}), make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	f.onFirstChangelogFetch(t, func() {
		close(fetched)
		f.c.SleepControl(func() { <-release })
	})
	f.start(t)
	select {
	case <-fetched:
	case <-time.After(time.Minute):
		t.Fatal("the restore did not fetch its changelog in a minute")
	}
	// While the count task restores, the source task processes and
	// commits a record that arrives now.
	f.produce(t, f.cl, "orders", "y")
	adm := kadm.NewClient(f.cl)
	deadline := time.After(30 * time.Second)
	for {
		// The offset fetch waits for a transaction with offsets to end.
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		offs, err := adm.FetchOffsets(fctx, "app")
		cancel()
		if o, _ := offs.Lookup("orders", 0); err == nil && o.At >= 2 {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no record committed in 30 s while a task restored")
		}
	}
	close(release)
	f.wantFirstSeen(t, want)
}

// TestRestoreEndsWhenTheChangelogWasTruncated: a restore whose changelog
// records were removed (DeleteRecords, retention) up to its end finishes
// at that end, with the records that are left. It waited for ever: the
// fetch below the log start reset to it and returned no record, so the
// position never reached the end.
func TestRestoreEndsWhenTheChangelogWasTruncated(t *testing.T) {
	for _, c := range []struct {
		name   string
		delete int64 // DeleteRecords before this offset
		want   []string
	}{
		{"all", 3, nil},
		{"head", 2, []string{"k2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newRestoreFixture(t)
			for _, k := range []string{"k0", "k1", "k2"} {
				f.produce(t, f.cl, f.changelog, k)
			}
			var offs kadm.Offsets
			offs.Add(kadm.Offset{Topic: f.changelog, Partition: 0, At: c.delete})
			res, err := kadm.NewClient(f.cl).DeleteRecords(context.Background(), offs)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				t.Fatalf("DeleteRecords: %v", err)
			}
			f.start(t)
			f.wantFirstSeen(t, c.want)
			f.in.mu.Lock()
			end := f.in.tasks[taskID{1, 0}].changelogEnd
			f.in.mu.Unlock()
			if end != 3 {
				t.Fatalf("changelog offset after the restore: %d, want 3", end)
			}
		})
	}
}

// TestRestoreWaitsOutUnavailableOffsets: a broker that cannot list a
// changelog's offsets for a while (OFFSET_NOT_AVAILABLE while a new
// leader catches up, LEADER_NOT_AVAILABLE during an election) delays the
// restore; it stopped the instance with an error after five attempts
// within 2 s.
func TestRestoreWaitsOutUnavailableOffsets(t *testing.T) {
	f := newRestoreFixture(t)
	want := []string{"k1", "k2", "k3"}
	for _, k := range want {
		f.produce(t, f.cl, f.changelog, k)
	}
	var failures atomic.Int32
	f.c.ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		f.c.KeepControl()
		req := kreq.(*kmsg.ListOffsetsRequest)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		changelog := false
		for _, rt := range req.Topics {
			changelog = changelog || rt.Topic == f.changelog
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.OffsetNotAvailable.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if !changelog {
			return nil, nil, false
		}
		if failures.Add(1) == 20 {
			f.c.DropControl()
		}
		return resp, nil, true
	})
	f.start(t)
	f.wantFirstSeen(t, want)
	if n := failures.Load(); n < 20 {
		t.Fatalf("the broker failed %d offset listings, want 20", n)
	}
}

// TestRestoreFailsOnATransactionNeverResolved: a changelog with a
// transaction that stays open past the transaction timeout (and the slack
// for the broker to abort it) fails the instance with an error that says
// so, rather than restoring without the open transaction's writes or
// waiting for ever; the task never starts on part of its state.
func TestRestoreFailsOnATransactionNeverResolved(t *testing.T) {
	f := newRestoreFixture(t)
	f.produce(t, f.cl, f.changelog, "k0")
	f.openTransaction(t, "k1") // never ended; its producer's timeout is the client default (40 s)
	topo := countTopology(func(int32) Task { return seenTask{newMapTask(), f.seen} })
	cfg := Config{Brokers: f.c.ListenAddrs(), ApplicationID: "app", InstanceID: "a", ExactlyOnce: true,
		CommitInterval: 20 * time.Millisecond, SessionTimeout: 6 * time.Second, TransactionTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	in, err := New(context.Background(), cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	in.markerSlack = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	f.produce(t, f.cl, "orders", "x")
	select {
	case err = <-done:
	case keys := <-f.seen:
		t.Fatalf("the task started with state %v below an open transaction", keys)
	case <-time.After(time.Minute):
		t.Fatal("the restore still waits on the open transaction after a minute")
	}
	if err == nil || !strings.Contains(err.Error(), "never resolved") || !strings.Contains(err.Error(), f.changelog) {
		t.Fatalf("Run: %v, want the error of a transaction never resolved on %s", err, f.changelog)
	}
}

// TestSnapshotOlderThanTombstonesIsIgnored: a local snapshot older than
// the changelog keeps its tombstones (delete.retention.ms, after which
// compaction removes them with the values they deleted) is not loaded:
// a key deleted since the snapshot would come back, its deletion gone
// from the changelog — a window that fired and was cleaned up would fire
// again. The task restores from the changelog alone. Here compaction has
// removed key "gone" (its value and its tombstone) from the changelog;
// the two-hour-old snapshot still has it.
func TestSnapshotOlderThanTombstonesIsIgnored(t *testing.T) {
	f := newRestoreFixture(t)
	f.stateDir = t.TempDir()
	for _, k := range []string{"k0", "k1"} {
		f.produce(t, f.cl, f.changelog, k)
	}
	adm := kadm.NewClient(f.cl)
	res, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "delete.retention.ms", Value: kadm.StringPtr("3600000")}}, f.changelog)
	if err == nil {
		_, err = res.On(f.changelog, nil)
	}
	if err != nil {
		t.Fatalf("setting delete.retention.ms: %v", err)
	}
	old := newMapTask()
	for _, k := range []string{"gone", "k0", "k1"} {
		old.tab.Put(k, "v")
	}
	old.tab.Commit()
	data, _ := encodeSnapshot(&taskState{id: taskID{1, 0}, task: old, changelogEnd: 2})
	path := filepath.Join(f.stateDir, "app", "a", "1_0.state")
	if err := writeSnapshot(path, data); err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(path, then, then); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if got := f.firstSeen(t); strings.Join(got, " ") != "k0 k1" {
		t.Fatalf("the task started with state %v, want [k0 k1] (the changelog's)", got)
	}
}

// TestAbortedTaskRestoresPaused: a stateful task without undo
// (UndoFree) restores from its snapshot and changelog after an aborted
// transaction, as after an assignment, and its input stays paused until
// that restore ends: unpaused, the next fetch of its input made the poll
// loop restore it inline while every other task waited. A task with undo
// rolls back in place and is not paused.
func TestAbortedTaskRestoresPaused(t *testing.T) {
	c := oneBrokerCluster(t, "in", "rep")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("in", "rep"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topo := &Topology{Source: "in", SubTopologies: []SubTopology{
		{Name: "source", NewTask: func(int32) Task { return nopTask{} }},
		{Name: "w", Stateful: true, NewTask: func(int32) Task { return undoFreeTask{newMapTask()} }},
		{Name: "u", Stateful: true, NewTask: func(int32) Task { return newMapTask() }},
	}}
	in := &Instance{cfg: Config{StateDir: t.TempDir(), ApplicationID: "app", InstanceID: "a"}, topo: topo,
		parts: []int32{1, 1, 1}, inputs: []string{"in", "rep", "rep2"}, cl: cl, metrics: newMetrics("app"),
		restoring: map[taskID]*taskState{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	free := &taskState{id: taskID{1, 0}, task: in.newTaskValue(taskID{1, 0}), restored: true, changelogEnd: 5}
	undo := &taskState{id: taskID{2, 0}, task: in.newTaskValue(taskID{2, 0}), restored: true}
	in.abortTask(free)
	in.abortTask(undo)
	if free.restored {
		t.Fatal("the task without undo was not sent to restore")
	}
	paused := cl.PauseFetchPartitions(nil)
	if !slices.Equal(paused["rep"], []int32{0}) {
		t.Fatalf("input of the task restoring after an abort not paused: paused %v", paused)
	}
	if len(paused["rep2"]) != 0 {
		t.Fatalf("input of a task rolled back by its undo paused: %v", paused)
	}
	free.rst = &restoreJob{topic: "changelog", end: 0, start: time.Now()}
	in.restoring[free.id] = free
	if err := in.finishRestore(free.id, free); err != nil {
		t.Fatal(err)
	}
	if paused := cl.PauseFetchPartitions(nil); len(paused) != 0 {
		t.Fatalf("input still paused once restored: %v", paused)
	}
}
