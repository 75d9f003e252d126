package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/cluster"
	"github.com/sluicehq/sluice/kafka/kafkatest"
	"github.com/sluicehq/sluice/logstore"
)

// twoWindowSpec chains two keyed windows: three sub-topologies, the
// second window reading what the first one fires.
const twoWindowSpec = `
name: rollup
cluster: {brokers: [%q], application_id: rollup, commit_interval: 100ms, session_timeout: 6s, partitions: 2}
source:
  kafka: {topic: orders}
  format: json
  event_time: {field: ts, max_out_of_orderness: 1s}
steps:
  - window: {key: [user], tumbling: 10s, aggregate: {n: count()}}
  - window: {key: [user], tumbling: 60s, aggregate: {windows: count(), total: sum(n)}}
sink:
  kafka: {topic: rollup, key: user}
delivery: exactly_once
`

// TestClusterWatermarkAcrossTwoKeyedSteps: the watermark a keyed task
// passes on to the next sub-topology is its input watermark, as a window
// operator forwards it in one process — not one derived from the times
// of the results it happens to fire (which lag behind the input by the
// window size and the out-of-orderness bound, so the second window's
// last windows never fired).
func TestClusterWatermarkAcrossTwoKeyedSteps(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	const n = 600
	produceOrders(t, cl, 0, n)
	produceEnd(t, cl)
	// One process: the first window counts each user's orders per 10 s,
	// firing each result at its window's last instant; the second counts
	// those results per user and minute (of that instant).
	first := map[string]int64{} // user|start10 -> orders
	for i := range n {
		_, user, start, _ := order(i)
		first[fmt.Sprintf("%s|%d", user, start)]++
	}
	type agg struct{ windows, total int64 }
	want := map[string]agg{}
	for k, c := range first {
		user, s, _ := strings.Cut(k, "|")
		start, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		at := start + 10_000 - 1
		mk := fmt.Sprintf("%s|%d", user, at-at%60_000)
		a := want[mk]
		a.windows++
		a.total += c
		want[mk] = a
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, topo := clusterTopology(t, ctx, "rollup.yaml", fmt.Appendf(nil, twoWindowSpec, srv.Addr), "a")
	if len(topo.SubTopologies) != 3 {
		t.Fatalf("%d sub-topologies, want 3", len(topo.SubTopologies))
	}
	inst, err := cluster.New(ctx, cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inst.Run(ctx) }()

	got := map[string][]agg{}
	readCommitted(t, srv.Addr, "rollup", len(want), 60*time.Second, func(r *kgo.Record) bool {
		var v struct {
			User        string `json:"user"`
			WindowStart int64  `json:"window_start"`
			Windows     int64  `json:"windows"`
			Total       int64  `json:"total"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Errorf("output %s: %v", r.Value, err)
			return false
		}
		k := fmt.Sprintf("%s|%d", v.User, v.WindowStart)
		got[k] = append(got[k], agg{v.Windows, v.Total})
		return true
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("instance: %v", err)
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; len(g) != 1 || g[0] != w {
			bad++
			if bad <= 10 {
				t.Errorf("%s: want [%v], got %v", k, w, g)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected %v", k, g)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d minute windows wrong or missing", bad, len(want))
	}
}

// TestClusterPurgesRepartition: repartition topics keep records
// regardless of their (event-time) timestamps, so an instance deletes the
// records of its repartition partitions before their committed offsets,
// and never past them.
func TestClusterPurgesRepartition(t *testing.T) {
	srv := kafkatest.Start(t, kafkatest.Options{Fsync: logstore.FsyncPolicy{Mode: logstore.FsyncNever}})
	cl := srv.Client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	want := clusterInput(t, cl, 600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, topo := clusterTopology(t, ctx, "revenue.yaml", fmt.Appendf(nil, clusterSpec, srv.Addr, "purge", DeliveryExactlyOnce), "a")
	cfg.PurgeInterval = time.Millisecond
	inst, err := cluster.New(ctx, cfg, topo)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inst.Run(ctx) }()
	got := readResults(t, srv.Addr, len(want), 60*time.Second)
	checkResults(t, got, want)

	rep := cluster.RepartitionTopic("purge", topo.SubTopologies[1].Name)
	deadline := time.Now().Add(30 * time.Second)
	for {
		starts, err := adm.ListStartOffsets(context.Background(), rep)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(context.Background(), "purge")
		if err != nil {
			t.Fatal(err)
		}
		purged, parts := 0, 0
		starts.Each(func(s kadm.ListedOffset) {
			c, ok := committed.Lookup(rep, s.Partition)
			if s.Offset > 0 && ok && s.Offset > c.At {
				t.Fatalf("partition %d purged up to %d, past its committed offset %d", s.Partition, s.Offset, c.At)
			}
			parts++
			if s.Offset > 0 {
				purged++
			}
		})
		if purged == parts && parts > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumed repartition records not deleted: log start offsets %v", starts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("instance: %v", err)
	}
}

// TestStandbyRestoreKeepsNoTimersOfDeletedKeys: a standby replica applies
// its changelog with Restore and never sees a watermark; every window or
// dedup key restored armed a timer, and a tombstone deleted the key but
// not its timer, so a standby's timers grew with every key the active
// task ever had. The changelog here is that of a task that opened
// windows (or dedup keys), fired them and cleaned them up.
func TestStandbyRestoreKeepsNoTimersOfDeletedKeys(t *testing.T) {
	for _, c := range []struct{ name, step string }{
		{"window", "window: {key: [user], tumbling: 1s, allowed_lateness: 500ms, aggregate: {n: count()}}"},
		{"dedup", "dedup: {key: [user], within: 2s}"},
		{"session", "window: {key: [user], session: {gap: 300ms}, allowed_lateness: 500ms, aggregate: {n: count()}}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := `name: timers
cluster: {brokers: ["127.0.0.1:1"], application_id: timers}
source:
  kafka: {topic: orders}
  format: json
  event_time: {field: ts, max_out_of_orderness: 0s}
steps:
  - ` + c.step + `
sink:
  kafka: {topic: out}
`
			_, topo := clusterTopology(t, context.Background(), "timers.yaml", []byte(spec), "x")
			src, active := topo.SubTopologies[0].NewTask(0), topo.SubTopologies[1].NewTask(0)
			out := &sessOut{}
			for i := range 200 {
				b, _ := json.Marshal(map[string]any{"user": fmt.Sprintf("u%d", i%7), "ts": int64(1_000_000 + i*100)})
				out.fwd = out.fwd[:0]
				if err := src.Process(out, &kgo.Record{Value: b}); err != nil {
					t.Fatal(err)
				}
				for _, r := range out.fwd {
					if err := active.Process(out, r); err != nil {
						t.Fatal(err)
					}
				}
				if i%20 == 19 {
					if err := active.Flush(out); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := active.Watermark(out, 1_000_000_000); err != nil {
				t.Fatal(err)
			}
			if err := active.Flush(out); err != nil {
				t.Fatal(err)
			}
			standby := topo.SubTopologies[1].NewTask(0)
			for _, kv := range out.changelog {
				if err := standby.Restore([]byte(kv.k), kv.v); err != nil {
					t.Fatal(err)
				}
			}
			var timers timerIndex
			switch s := standby.(type) {
			case *windowTask:
				timers = s.timers
			case *dedupTask:
				timers = s.timers
			case *sessionTask:
				timers = s.timers
				if len(s.armed) != 0 {
					t.Fatalf("the standby holds %d armed keys after a changelog that ends with every key deleted", len(s.armed))
				}
			}
			n := 0
			for _, ks := range timers.at {
				n += len(ks)
			}
			if n != 0 {
				t.Fatalf("the standby holds %d timers after a changelog that ends with every key deleted", n)
			}
		})
	}
}
