package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/stream"
)

// sessionSteps is a session window with every aggregate, then a step
// that runs in the window's task.
const sessionSteps = `
steps:
  - window:
      key: [user]
      session: {gap: %dms}
      allowed_lateness: %dms
      aggregate: {n: count(), total: sum(amount), avg: avg(amount), lo: min(amount), hi: max(amount), first_seq: first(seq), last_seq: last(seq), pages: count_distinct(page)}
  - filter: n > 0
`

// sessionParams are one property run's durations (milliseconds).
type sessionParams struct {
	gap, lateness, ooo int64
}

func (sp sessionParams) singleSpec() string {
	return fmt.Sprintf(`
name: sessions
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: %dms}
`, sp.ooo) + fmt.Sprintf(sessionSteps, sp.gap, sp.lateness) + `
sink: {stdout: {}}
parallelism: 1
`
}

func (sp sessionParams) clusterSpec() string {
	return fmt.Sprintf(`
name: sessions
cluster: {brokers: ["127.0.0.1:1"], application_id: sessions}
source:
  kafka: {topic: clicks}
  format: json
  event_time: {field: ts, max_out_of_orderness: %dms}
`, sp.ooo) + fmt.Sprintf(sessionSteps, sp.gap, sp.lateness) + `
sink:
  kafka: {topic: out}
`
}

// sessionClicks are n clicks of four users in bursts separated by pauses
// longer than the gap. Three in four are at most ooo behind the latest
// click (never late); the others are up to two gaps plus the allowed
// lateness behind the watermark, so that they land in fired sessions,
// bridge sessions, open sessions that fire at once, or are dropped.
func sessionClicks(rng *rand.Rand, n int, sp sessionParams) (cs []click, late int) {
	now := int64(1_000_000)
	maxTS := now
	cs = randClicks(rng, n)
	for i := range cs {
		if rng.IntN(12) == 0 {
			now += sp.gap + rng.Int64N(2*sp.gap)
		} else {
			now += rng.Int64N(sp.gap/2 + 1)
		}
		ts := now - rng.Int64N(sp.ooo+1)
		if rng.IntN(4) == 0 {
			ts = maxTS - sp.ooo - 1 - rng.Int64N(2*sp.gap+sp.lateness+1)
			late++
		}
		cs[i].ts = ts
		maxTS = max(maxTS, ts)
	}
	return cs, late
}

// runSingle runs the spec in one process over input, one record per
// batch (so that the source's watermark follows every record, as the
// property test's feed does), and returns its output lines.
func runSingle(t *testing.T, spec string, input string) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Parse("sessions.yaml", []byte(strings.ReplaceAll(spec, "$DIR", dir)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	j, err := p.Start(context.Background(), &Host{Stdout: &out, DataDir: dir}, WithStreamOptions(stream.WithBatchSize(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// sessOut is a fake cluster.Output: it keeps what a task wrote.
type sessOut struct {
	fwd       []*kgo.Record
	emits     []string
	changelog []sessKV
}

type sessKV struct {
	k string
	v []byte // nil: deleted
}

func (o *sessOut) Forward(key, value []byte, ts int64) {
	o.fwd = append(o.fwd, &kgo.Record{Key: bytes.Clone(key), Value: bytes.Clone(value), Timestamp: time.UnixMilli(ts)})
}
func (o *sessOut) Emit(_ int, _, value []byte, _ int64) { o.emits = append(o.emits, string(value)) }
func (o *sessOut) Changelog(k, v []byte) {
	o.changelog = append(o.changelog, sessKV{string(k), bytes.Clone(v)})
}

// sessItem is one input of the session tasks: a record for partition p,
// or a watermark for all.
type sessItem struct {
	p   int
	rec *kgo.Record
	wm  int64
}

// instanceModel drives a sub-topology's tasks as an instance does: one
// transaction over all of them, committed or aborted (state rolled back,
// input rewound to the committed position, the committed watermark given
// again), tasks restored into fresh ones from their committed changelog
// (whole, compacted, or a snapshot plus the changelog written after it).
type instanceModel struct {
	t       *testing.T
	rng     *rand.Rand
	newTask func(p int32) cluster.Task
	items   []sessItem

	tasks []cluster.Task
	outs  []*sessOut
	pos   int
	wm    int64

	committedPos int
	committedWM  int64
	output       []string   // committed emits
	log          [][]sessKV // committed changelog per partition
	snaps        []*sessSnap

	commits, aborts, restores int
}

type sessSnap struct {
	recs   []sessKV
	logLen int
}

func newInstanceModel(t *testing.T, rng *rand.Rand, parts int, newTask func(p int32) cluster.Task, items []sessItem) *instanceModel {
	m := &instanceModel{t: t, rng: rng, newTask: newTask, items: items, wm: cluster.NoWatermark, committedWM: cluster.NoWatermark,
		log: make([][]sessKV, parts), snaps: make([]*sessSnap, parts)}
	for p := range parts {
		m.tasks = append(m.tasks, newTask(int32(p)))
		m.outs = append(m.outs, &sessOut{})
	}
	return m
}

func (m *instanceModel) apply(it sessItem) {
	m.t.Helper()
	if it.rec != nil {
		if err := m.tasks[it.p].Process(m.outs[it.p], it.rec); err != nil {
			m.t.Fatal(err)
		}
		return
	}
	m.wm = it.wm
	for p, tk := range m.tasks {
		if err := tk.Watermark(m.outs[p], it.wm); err != nil {
			m.t.Fatal(err)
		}
	}
}

func (m *instanceModel) commit() {
	m.t.Helper()
	m.commits++
	for p, tk := range m.tasks {
		o := m.outs[p]
		if err := tk.Flush(o); err != nil {
			m.t.Fatal(err)
		}
		tk.Commit()
		m.output = append(m.output, o.emits...)
		m.log[p] = append(m.log[p], o.changelog...)
		o.emits, o.changelog = nil, nil
		if m.rng.IntN(3) == 0 {
			sn := &sessSnap{logLen: len(m.log[p])}
			tk.(cluster.Snapshotter).Snapshot(func(k, v []byte) { sn.recs = append(sn.recs, sessKV{string(k), bytes.Clone(v)}) })
			m.snaps[p] = sn
		}
	}
	m.committedPos, m.committedWM = m.pos, m.wm
}

// rewind discards the transaction's output and goes back to the committed
// input position and watermark.
func (m *instanceModel) rewind() {
	for _, o := range m.outs {
		o.emits, o.changelog = nil, nil
	}
	m.pos, m.wm = m.committedPos, m.committedWM
}

// giveWM gives task p the committed watermark, as the instance does after
// an abort or a restore.
func (m *instanceModel) giveWM(p int) {
	m.t.Helper()
	if m.committedWM == cluster.NoWatermark {
		return
	}
	if err := m.tasks[p].Watermark(m.outs[p], m.committedWM); err != nil {
		m.t.Fatal(err)
	}
}

func (m *instanceModel) abort() {
	m.aborts++
	flush := m.rng.IntN(2) == 0 // a failed commit flushed first; a rejoin did not
	for p, tk := range m.tasks {
		if flush {
			_ = tk.Flush(m.outs[p])
		}
		tk.Abort()
	}
	m.rewind()
	for p := range m.tasks {
		m.giveWM(p)
	}
}

// restore replaces task p with a fresh one restored from what was
// committed.
func (m *instanceModel) restore(p int) {
	m.t.Helper()
	m.restores++
	tk := m.newTask(int32(p))
	apply := func(kv sessKV) {
		if err := tk.Restore([]byte(kv.k), kv.v); err != nil {
			m.t.Fatal(err)
		}
	}
	log := m.log[p]
	switch m.rng.IntN(3) {
	case 0: // the whole changelog
		for _, kv := range log {
			apply(kv)
		}
	case 1: // compacted: the latest record of each key, in offset order
		last := map[string]int{}
		for i, kv := range log {
			last[kv.k] = i
		}
		keepTombstones := m.rng.IntN(2) == 0
		for i, kv := range log {
			if last[kv.k] == i && (kv.v != nil || keepTombstones) {
				apply(kv)
			}
		}
	default: // the local snapshot, then the changelog written since
		from := 0
		if sn := m.snaps[p]; sn != nil {
			for _, kv := range sn.recs {
				apply(kv)
			}
			from = sn.logLen
		}
		for _, kv := range log[from:] {
			apply(kv)
		}
	}
	tk.Commit()
	m.tasks[p] = tk
	m.outs[p].emits, m.outs[p].changelog = nil, nil
	m.giveWM(p)
}

// run feeds every item with random commits, aborts, crashes (every task
// restored, the input rewound) and moves (one task restored after a
// commit), then a final watermark that fires everything, and commits.
func (m *instanceModel) run() []string {
	m.t.Helper()
	for m.pos < len(m.items) {
		m.apply(m.items[m.pos])
		m.pos++
		switch r := m.rng.IntN(100); {
		case r < 10:
			m.commit()
		case r < 14:
			m.abort()
		case r < 16:
			m.rewind()
			for p := range m.tasks {
				m.restore(p)
			}
		case r < 18:
			m.commit()
			m.restore(m.rng.IntN(len(m.tasks)))
		}
	}
	m.apply(sessItem{wm: math.MaxInt64})
	m.commit()
	return m.output
}

// TestClusterSessionMatchesSingleProcess feeds random keyed clicks, out of
// order and some late, through cluster mode's tasks directly (the source
// task, then the session tasks of three partitions with a watermark after
// every record, as the single-process source emits with one record per
// batch), with random commits, aborts and restores, and checks that the
// committed output is exactly the single-process pipeline's.
func TestClusterSessionMatchesSingleProcess(t *testing.T) {
	params := []sessionParams{
		{gap: 500, lateness: 0, ooo: 200},
		{gap: 500, lateness: 300, ooo: 200},
		{gap: 300, lateness: 2000, ooo: 100},
		{gap: 1000, lateness: 700, ooo: 0},
	}
	const parts = 3
	var refired, outputs, lateIn, aborts, restores int
	for i := range 24 {
		sp := params[i%len(params)]
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		cs, late := sessionClicks(rng, 300, sp)
		lateIn += late
		input := clicksJSON(cs)
		want := runSingle(t, sp.singleSpec(), input)

		spec, err := Parse("sessions.yaml", []byte(sp.clusterSpec()))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		_, topo, err := plan.ClusterTopology(context.Background(), nil, ClusterOverrides{InstanceID: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(topo.SubTopologies) != 2 || !topo.SubTopologies[1].Stateful {
			t.Fatalf("topology %+v", topo.SubTopologies)
		}
		// The source task's forwards, each followed by the watermark its
		// event time brings (largest - ooo - 1), as the single-process
		// source does after every batch.
		src := topo.SubTopologies[0].NewTask(0)
		so := &sessOut{}
		var items []sessItem
		maxTS, lastWM := int64(math.MinInt64), int64(math.MinInt64)
		for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
			so.fwd = so.fwd[:0]
			if err := src.Process(so, &kgo.Record{Value: []byte(line)}); err != nil {
				t.Fatal(err)
			}
			for _, r := range so.fwd {
				items = append(items, sessItem{p: int(crc32.ChecksumIEEE(r.Key) % parts), rec: r})
				maxTS = max(maxTS, r.Timestamp.UnixMilli())
			}
			if wm := maxTS - sp.ooo - 1; maxTS != math.MinInt64 && wm > lastWM {
				lastWM = wm
				items = append(items, sessItem{wm: wm})
			}
		}
		m := newInstanceModel(t, rng, parts, topo.SubTopologies[1].NewTask, items)
		got := m.run()
		aborts += m.aborts
		restores += m.restores

		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("run %d %+v: cluster output differs from one process (%d rows, want %d):\n%s", i, sp, len(got), len(want), diffLines(got, want))
		}
		outputs += len(got)
		seen := map[string]int{}
		for _, l := range got {
			var v struct {
				User  string `json:"user"`
				Start int64  `json:"window_start"`
			}
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf("%s|%d", v.User, v.Start)
			if seen[k]++; seen[k] == 2 {
				refired++
			}
		}
	}
	// The runs went through the paths that matter.
	if refired == 0 || outputs == 0 || lateIn == 0 || aborts == 0 || restores == 0 {
		t.Fatalf("weak run: %d outputs, %d sessions fired again, %d late clicks, %d aborts, %d restores", outputs, refired, lateIn, aborts, restores)
	}
	t.Logf("%d outputs, %d sessions fired again, %d late clicks, %d aborts, %d restores", outputs, refired, lateIn, aborts, restores)
}

// diffLines lists the lines only in got or only in want (both sorted).
func diffLines(got, want []string) string {
	var b strings.Builder
	i, j, n := 0, 0, 0
	for (i < len(got) || j < len(want)) && n < 20 {
		switch {
		case j >= len(want) || (i < len(got) && got[i] < want[j]):
			fmt.Fprintf(&b, "+ %s\n", got[i])
			i++
			n++
		case i >= len(got) || want[j] < got[i]:
			fmt.Fprintf(&b, "- %s\n", want[j])
			j++
			n++
		default:
			i++
			j++
		}
	}
	return b.String()
}

// TestSessionStateCodec: a key's sessions survive their changelog
// encoding, and a damaged encoding is refused.
func TestSessionStateCodec(t *testing.T) {
	acc := &winAcc{aggs: make([]aggState, 2)}
	acc.aggs[0].add("count", true, row.Null(), 0)
	acc.aggs[1].add("sum", false, row.Float(2.5), 7)
	l := &sessionList{ss: []session{
		{start: -5, end: 10, fired: true, acc: acc},
		{start: 20, end: 31, acc: &winAcc{aggs: make([]aggState, 2)}},
	}}
	b := encodeSessions(l)
	back, err := decodeSessions(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeSessions(back), b) || len(back.ss) != 2 || back.ss[0].start != -5 || back.ss[0].end != 10 || !back.ss[0].fired || back.ss[1].fired {
		t.Fatalf("round trip: %+v", back.ss)
	}
	for n := range len(b) {
		if _, err := decodeSessions(b[:n]); err == nil {
			t.Fatalf("a truncated encoding (%d of %d bytes) decoded", n, len(b))
		}
	}
	bad := &sessionList{ss: []session{l.ss[1], l.ss[0]}}
	if _, err := decodeSessions(encodeSessions(bad)); err == nil {
		t.Fatal("unsorted sessions decoded")
	}
}

// sessionOrder is click i of the end-to-end test: 13 users, bursts of
// 200 clicks a minute apart, each with a 5 s pause in the middle (so two
// sessions per user and burst with a 3 s gap), slightly out of order.
func sessionOrder(i int) (r *kgo.Record, user string, ts, amount int64) {
	base := int64(1_700_000_000_000)
	user = fmt.Sprintf("u%d", i%13)
	ts = base + int64(i/200)*60_000 + int64(i%200)*37 - int64(i%5)*100
	if i%200 >= 100 {
		ts += 5_000
	}
	amount = int64(i % 100)
	b, _ := json.Marshal(map[string]any{"user": user, "amount": amount, "ts": ts, "region": fmt.Sprintf("r%d", i%7)})
	return &kgo.Record{Topic: "orders", Partition: int32(i % 4), Key: fmt.Appendf(nil, "r%d", i%7), Value: b}, user, ts, amount
}

// wantSessions is the result of clicks 0..to-1 with a 3 s gap
// (user|start -> "n total").
func wantSessions(to int) map[string]string {
	type ev struct{ ts, amount int64 }
	byUser := map[string][]ev{}
	for i := range to {
		_, u, ts, a := sessionOrder(i)
		byUser[u] = append(byUser[u], ev{ts, a})
	}
	want := map[string]string{}
	for u, evs := range byUser {
		sort.Slice(evs, func(i, j int) bool { return evs[i].ts < evs[j].ts })
		start, end, n, total := evs[0].ts, evs[0].ts+3000, int64(0), int64(0)
		for _, e := range evs {
			if e.ts >= end {
				want[fmt.Sprintf("%s|%d", u, start)] = fmt.Sprintf("%d %d", n, total)
				start, n, total = e.ts, 0, 0
			}
			end = max(end, e.ts+3000)
			n++
			total += e.amount
		}
		want[fmt.Sprintf("%s|%d", u, start)] = fmt.Sprintf("%d %d", n, total)
	}
	return want
}

// TestClusterSessionAcrossInstances runs a session window on three
// instances; one of them stops halfway, so that its open sessions move
// to the others through the changelog. The exactly-once output is the
// single-process result: every session once, complete.
func TestClusterSessionAcrossInstances(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	const specText = `
name: sessions
cluster: {brokers: [%q], application_id: sess, commit_interval: 100ms, session_timeout: 6s}
source:
  kafka: {topic: orders}
  format: json
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - filter: amount >= 0
  - window: {key: [user], session: {gap: 3s}, allowed_lateness: 2s, aggregate: {n: count(), total: sum(amount)}}
sink:
  kafka: {topic: revenue, key: user}
delivery: exactly_once
`
	spec, err := Parse("sessions.yaml", fmt.Appendf(nil, specText, srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	produce := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			r, _, _, _ := sessionOrder(i)
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	type running struct {
		id     string
		inst   *cluster.Instance
		cancel context.CancelFunc
		done   chan error
	}
	var mu sync.Mutex
	var insts []*running
	for _, id := range []string{"a", "b", "c"} {
		ctx, cancel := context.WithCancel(context.Background())
		cfg, topo, err := plan.ClusterTopology(ctx, nil, ClusterOverrides{InstanceID: id})
		if err != nil {
			t.Fatal(err)
		}
		inst, err := cluster.New(ctx, cfg, topo)
		if err != nil {
			t.Fatal(err)
		}
		r := &running{id: id, inst: inst, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- inst.Run(ctx) }()
		insts = append(insts, r)
	}
	stop := func(r *running) {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Errorf("instance %s: %v", r.id, err)
		}
	}
	stopAll := sync.OnceFunc(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range insts {
			stop(r)
		}
	})
	defer stopAll()
	// Wait until the group spread the 8 tasks over the three instances.
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, busy := 0, 0
		for _, r := range insts {
			n := len(r.inst.Status(context.Background()).Tasks)
			total += n
			if n > 0 {
				busy++
			}
		}
		if total == 8 && busy == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tasks were not spread over the instances within 30 s (%d tasks on %d instances)", total, busy)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The first half: every session but the last burst's second ones
	// (one per user) fires; those stay open in the tasks' state.
	produce(0, n/2)
	fireable := len(wantSessions(n/2)) - 13
	if got := readResults(t, srv.Addr, fireable, 60*time.Second); len(got) < fireable {
		t.Fatalf("%d of %d sessions of the first half fired within 60 s", len(got), fireable)
	}
	// Stop an instance that owns session state: its open sessions move
	// to the others through the changelog.
	mu.Lock()
	victim := -1
	for i, r := range insts {
		for _, ts := range r.inst.Status(context.Background()).Tasks {
			if strings.HasSuffix(ts.Topic, "-repartition") && ts.Records > 0 {
				victim = i
			}
		}
	}
	if victim < 0 {
		mu.Unlock()
		t.Fatal("no instance owns a session task that processed records")
	}
	stop(insts[victim])
	insts = slices.Delete(insts, victim, victim+1)
	mu.Unlock()

	produce(n/2, n)
	produceEnd(t, cl)
	want := wantSessions(n)
	got := readResults(t, srv.Addr, len(want), 60*time.Second)
	stopAll()
	checkResults(t, got, want)
}
