package kafka_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/kafka"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The exactly-once (EOS v2, KIP-447) cluster mode of `sluice run`: several
// instances of one pipeline form one consumer group with the
// cooperative-sticky balancer and static membership, each running a
// kgo.GroupTransactSession whose transactions carry the consumed offsets
// (TxnOffsetCommit with the group generation and member). These tests run
// each scenario against Sluice's broker and, for comparison, against
// franz-go's kfake with three brokers; where kfake departs from Kafka the
// scenario says so.

// eosCluster is a Kafka cluster a scenario runs against.
type eosCluster struct {
	seeds []string
	// fake is set for kfake.
	fake bool

	mu      sync.Mutex
	offsets map[testing.TB]*kadm.Client // reads committed offsets (committedTotal), per test
}

func startSluiceEOS(t *testing.T) *eosCluster {
	cfg := kafka.DefaultConfig()
	cfg.TickInterval = 20 * time.Millisecond // timeouts checked promptly
	s := kafkatest.Start(t, kafkatest.Options{Config: &cfg})
	return &eosCluster{seeds: []string{s.Addr}}
}

func startKfakeEOS(t *testing.T) *eosCluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &eosCluster{seeds: c.ListenAddrs(), fake: true}
}

// onEachCluster runs a scenario against Sluice and against kfake.
func onEachCluster(t *testing.T, scenario func(t *testing.T, c *eosCluster)) {
	t.Run("sluice", func(t *testing.T) { scenario(t, startSluiceEOS(t)) })
	t.Run("kfake", func(t *testing.T) { scenario(t, startKfakeEOS(t)) })
}

func (c *eosCluster) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// rawClient is a client for raw requests built by the tests: its
// requests are capped at Kafka 3.9's versions, before TxnOffsetCommit and
// OffsetFetch name topics by id (KIP-1319) and before KIP-890's
// transactions, which Sluice does not serve either.
func (c *eosCluster) rawClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	return c.client(t, append([]kgo.Opt{kgo.MaxVersions(kversion.V3_9_0())}, opts...)...)
}

func (c *eosCluster) admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(c.client(t))
}

func (c *eosCluster) createTopic(t *testing.T, topic string, partitions int32) {
	t.Helper()
	resp, err := c.admin(t).CreateTopic(testCtx(t), partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
	}
}

// produceInputs writes the values from..to-1 (as decimal strings, keyed by
// themselves) to topic.
func (c *eosCluster) produceInputs(t *testing.T, topic string, from, to int) {
	t.Helper()
	if err := produceNumbers(testCtx(t), c.client(t), topic, from, to); err != nil {
		t.Fatal(err)
	}
}

// feedInputs writes the values from..to-1 to topic in small batches, in the
// background: the returned channel yields the outcome.
func (c *eosCluster) feedInputs(t *testing.T, topic string, from, to int) <-chan error {
	cl, ctx := c.client(t), testCtx(t)
	done := make(chan error, 1)
	go func() {
		for i := from; i < to; i += 30 {
			if err := produceNumbers(ctx, cl, topic, i, min(i+30, to)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

func produceNumbers(ctx context.Context, cl *kgo.Client, topic string, from, to int) error {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		v := []byte(strconv.Itoa(i))
		recs = append(recs, &kgo.Record{Topic: topic, Key: v, Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce inputs %d..%d: %w", from, to, err)
	}
	return nil
}

// committedTotal is the sum of a group's committed offsets on topic (the
// number of input records processed, for a topic without transactions).
func (c *eosCluster) committedTotal(t *testing.T, group, topic string) int64 {
	// One client per test for every poll: a wait polls this every 20 ms,
	// and a client per call would leave hundreds of connections open
	// until the test ends. (A client is closed when the test that made it
	// ends, so subtests sharing the cluster each have their own.)
	c.mu.Lock()
	adm := c.offsets[t]
	if adm == nil {
		if c.offsets == nil {
			c.offsets = map[testing.TB]*kadm.Client{}
		}
		adm = c.admin(t)
		c.offsets[t] = adm
		t.Cleanup(func() {
			c.mu.Lock()
			delete(c.offsets, t)
			c.mu.Unlock()
		})
	}
	c.mu.Unlock()
	offs, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		return -1
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			total += o.At
		}
	})
	return total
}

// readToSentinel writes a plain sentinel record to every partition of topic
// and reads the topic from the start with the given isolation until it has
// seen every sentinel: everything before them, in offset order, has been
// read. It returns the values read, without sentinels (of this call or
// earlier ones).
func (c *eosCluster) readToSentinel(t *testing.T, topic string, partitions int32, iso kgo.IsolationLevel) []string {
	t.Helper()
	ctx := testCtx(t)
	sentinel := fmt.Sprintf("END-%d", time.Now().UnixNano())
	w := c.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range partitions {
		if err := w.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(sentinel)}).FirstErr(); err != nil {
			t.Fatalf("sentinel: %v", err)
		}
	}
	r := c.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	var out []string
	ended := map[int32]bool{}
	for len(ended) < int(partitions) {
		fs := r.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %d partitions ended, %d values: %v", topic, len(ended), len(out), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			switch v := string(r.Value); {
			case v == sentinel:
				ended[r.Partition] = true
			case ended[r.Partition]:
				t.Fatalf("%s/%d: %q after the sentinel", topic, r.Partition, v)
			case !strings.HasPrefix(v, "END-"):
				out = append(out, v)
			}
		})
	}
	return out
}

// checkExactlyOnce fails unless values hold 0..n-1 once each.
func checkExactlyOnce(t *testing.T, values []string, n int) {
	t.Helper()
	seen := make(map[int]int, n)
	for _, v := range values {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i >= n {
			t.Fatalf("unexpected output value %q", v)
		}
		seen[i]++
	}
	var missing, dup []int
	for i := range n {
		switch seen[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 || len(dup) > 0 {
		t.Fatalf("%d outputs for %d inputs: missing %v, duplicated %v", len(values), n, head(missing), head(dup))
	}
}

func head(xs []int) []int { return xs[:min(len(xs), 10)] }

// eosWorker is one instance of the pipeline: a GroupTransactSession that
// copies every record of the input topic to the output topic, exactly once.
type eosWorker struct {
	instance string
	sess     *kgo.GroupTransactSession
	cancel   context.CancelFunc
	done     chan struct{}

	committed atomic.Int64 // records in committed transactions
	aborted   atomic.Int64 // transactions that ended with an abort
	txns      atomic.Int64 // transactions begun

	// pauseAt, when positive, calls pause after the records of that
	// transaction were produced and flushed, before End, and ends the loop
	// after that transaction (reporting its outcome to paused).
	pauseAt int64
	pause   func()
	paused  func(committed bool, err error)

	mu    sync.Mutex
	owned map[int32]bool
	err   error
}

// eosOpts are the session options of the cluster mode, for one instance.
func eosOpts(seeds []string, app, instance, in string, session time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(app),
		kgo.ConsumeTopics(in),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.InstanceID(instance),
		kgo.TransactionalID(app + "-" + instance),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.TransactionTimeout(20 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A partition assigned in a rebalance is fetched once the
		// broker's fetch in flight returns: with the default 5 s long
		// poll, a takeover could wait that long for an idle broker.
		kgo.FetchMaxWait(500 * time.Millisecond),
	}
}

func newEOSWorker(opts []kgo.Opt, instance, in, out string) (*eosWorker, error) {
	w := &eosWorker{instance: instance, done: make(chan struct{}), owned: map[int32]bool{}}
	opts = append(opts,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, p := range a[in] {
				w.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { w.drop(r[in]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, r map[string][]int32) { w.drop(r[in]) }),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, err
	}
	w.sess = sess
	return w, nil
}

func (w *eosWorker) drop(parts []int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range parts {
		delete(w.owned, p)
	}
}

func (w *eosWorker) ownedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.owned)
}

func (w *eosWorker) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *eosWorker) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// start runs the consume-transform-produce loop until stop.
func (w *eosWorker) start(out string) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		w.loop(ctx, out)
	}()
}

func (w *eosWorker) loop(ctx context.Context, out string) {
	for {
		fs := w.sess.PollRecords(ctx, 20)
		if ctx.Err() != nil {
			return
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			fetchErr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
		})
		if fetchErr != nil {
			w.fail(fetchErr)
			return
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if err := w.sess.Begin(); err != nil {
			w.fail(fmt.Errorf("begin: %w", err))
			return
		}
		txn := w.txns.Add(1)
		var n int64
		fs.EachRecord(func(r *kgo.Record) {
			w.sess.Produce(context.Background(), &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, kgo.ErrAborting) {
					w.fail(fmt.Errorf("produce: %w", err))
				}
			})
			n++
		})
		if txn == w.pauseAt {
			if err := w.sess.Client().Flush(context.Background()); err != nil {
				w.fail(fmt.Errorf("flush: %w", err))
				return
			}
			w.pause()
		}
		endCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		committed, err := w.sess.End(endCtx, kgo.TryCommit)
		cancel()
		if txn == w.pauseAt {
			w.paused(committed, err)
			return
		}
		if err != nil {
			w.fail(fmt.Errorf("end: %w", err))
			return
		}
		if committed {
			w.committed.Add(n)
		} else {
			w.aborted.Add(1)
		}
	}
}

// stop ends the loop after the transaction in progress and closes the
// session (a static member does not leave the group on close).
func (w *eosWorker) stop() {
	w.cancel()
	<-w.done
	w.sess.Close()
}

func startWorker(t *testing.T, c *eosCluster, app, instance, in, out string, session time.Duration) *eosWorker {
	t.Helper()
	w, err := newEOSWorker(eosOpts(c.seeds, app, instance, in, session), instance, in, out)
	if err != nil {
		t.Fatal(err)
	}
	w.start(out)
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.stop()
		}
	})
	return w
}

// TestEOSv2CooperativeMembersJoinAndLeave runs the cluster mode's loop with
// two instances: A alone, then B joins (a cooperative rebalance moves
// partitions to B while A keeps working), then A leaves (its instance
// removed by LeaveGroup, as `sluice run` does on shutdown) and B takes
// everything. Input keeps arriving throughout; the read_committed output
// holds every input exactly once.
func TestEOSv2CooperativeMembersJoinAndLeave(t *testing.T) {
	onEachCluster(t, func(t *testing.T, c *eosCluster) {
		const app, in, out, parts, n = "app", "app-in", "app-out", 4, 900
		c.createTopic(t, in, parts)
		c.createTopic(t, out, parts)
		adm := c.admin(t)
		var a, b *eosWorker
		processed := func(want int64) func() bool {
			return func() bool {
				for _, w := range []*eosWorker{a, b} {
					if w != nil && w.failure() != nil {
						t.Fatalf("instance %s failed: %v", w.instance, w.failure())
					}
				}
				return c.committedTotal(t, app, in) == want
			}
		}

		c.produceInputs(t, in, 0, n/3)
		a = startWorker(t, c, app, "a", in, out, 10*time.Second)
		waitFor(t, "A to process the first third", processed(n/3))

		// B joins while input arrives.
		feed := c.feedInputs(t, in, n/3, 2*n/3)
		b = startWorker(t, c, app, "b", in, out, 10*time.Second)
		waitFor(t, "the partitions to be shared", func() bool { return a.ownedCount() == parts/2 && b.ownedCount() == parts/2 })
		if err := <-feed; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the second third processed", processed(2*n/3))
		described, err := adm.DescribeGroups(testCtx(t), app)
		if err != nil {
			t.Fatal(err)
		}
		g := described[app]
		if g.Protocol != "cooperative-sticky" || len(g.Members) != 2 {
			t.Fatalf("group: protocol %q, %d members", g.Protocol, len(g.Members))
		}
		for _, m := range g.Members {
			if m.InstanceID == nil || !slices.Contains([]string{"a", "b"}, *m.InstanceID) {
				t.Fatalf("member %s: instance id %v", m.MemberID, m.InstanceID)
			}
		}

		// A leaves while input arrives.
		feed = c.feedInputs(t, in, 2*n/3, n)
		a.stop()
		left, err := adm.LeaveGroup(testCtx(t), kadm.LeaveGroup(app).InstanceIDs("a"))
		if err != nil || left.Error() != nil {
			t.Fatalf("leave by instance id: %v %v", err, left.Error())
		}
		waitFor(t, "B to own every partition", func() bool { return b.ownedCount() == parts })
		if err := <-feed; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "every input processed", processed(n))
		b.stop()
		for _, w := range []*eosWorker{a, b} {
			if err := w.failure(); err != nil {
				t.Fatalf("instance %s: %v", w.instance, err)
			}
			if w.committed.Load() == 0 {
				t.Fatalf("instance %s committed nothing", w.instance)
			}
		}
		t.Logf("A committed %d records (%d aborts), B %d (%d aborts)", a.committed.Load(), a.aborted.Load(), b.committed.Load(), b.aborted.Load())
		checkExactlyOnce(t, c.readToSentinel(t, out, parts, kgo.ReadCommitted()), n)
	})
}

// eosChildEnv makes the test binary run as one instance of the pipeline in
// a child process (see TestMain), so that a test can stop it with SIGSTOP:
// the variable holds the instance's eosChildConfig as JSON. The child
// prints "PAUSED" when the records of its PauseAt-th transaction are
// written, then reads a line from stdin before ending that transaction;
// it prints "END committed=<bool> err=<error>" and exits.
const eosChildEnv = "SLUICE_KAFKA_TEST_EOS_CHILD"

type eosChildConfig struct {
	Seeds          []string `json:"seeds"`
	App            string   `json:"app"`
	Instance       string   `json:"instance"`
	In             string   `json:"in"`
	Out            string   `json:"out"`
	SessionTimeout string   `json:"session_timeout"`
	PauseAt        int64    `json:"pause_at"`
}

func runEOSChild(raw string) int {
	var cfg eosChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "eos child: config:", err)
		return 1
	}
	session, err := time.ParseDuration(cfg.SessionTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eos child: session timeout:", err)
		return 1
	}
	w, err := newEOSWorker(eosOpts(cfg.Seeds, cfg.App, cfg.Instance, cfg.In, session), cfg.Instance, cfg.In, cfg.Out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eos child:", err)
		return 1
	}
	stdin := bufio.NewReader(os.Stdin)
	w.pauseAt = cfg.PauseAt
	w.pause = func() {
		fmt.Println("PAUSED")
		stdin.ReadString('\n')
	}
	w.paused = func(committed bool, err error) {
		fmt.Printf("END committed=%v err=%v\n", committed, err)
	}
	w.start(cfg.Out)
	<-w.done
	if err := w.failure(); err != nil {
		fmt.Println("FAIL", err)
	}
	w.sess.Close()
	return 0
}
