package exec_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// TestJoinStateTTL: a left row of a left join emits its padded row; the
// right row that matches it is released only once the wall clock is past
// the moment that padded row was seen plus the TTL. With a TTL the left
// row has expired and nothing more is emitted; without one the pair
// replaces the padded row.
func TestJoinStateTTL(t *testing.T) {
	const ttl = 30 * time.Millisecond
	for _, withTTL := range []bool{false, true} {
		t.Run(map[bool]string{false: "forever", true: "ttl"}[withTTL], func(t *testing.T) {
			env := stream.New(stream.WithParallelism(1))
			l := source(env, "l", []ev{{C: exec.Change{Vals: []row.Value{row.Int(1), row.String("a")}}, Ts: 1}}, 0)
			var seenAt atomic.Int64
			var sink *stream.CollectSink[exec.Change]
			release := func() bool {
				if seenAt.Load() == 0 {
					if sink.Len() == 0 {
						return false
					}
					seenAt.Store(time.Now().UnixMilli())
				}
				// Waiting for the clock is the point: the TTL is in
				// processing time.
				return time.Now().UnixMilli() > seenAt.Load()+ttl.Milliseconds()+1
			}
			rsrc := stream.FromSource(env, "r", &heldSource{evs: []ev{{C: exec.Change{Vals: []row.Value{row.Int(1), row.String("x")}}, Ts: 2}}, release: release},
				stream.WatermarkStrategy[ev]{Timestamp: func(e ev) int64 { return e.Ts }})
			r := stream.Map(rsrc, func(e ev) exec.Change { return e.C }, stream.Parallelism(1))
			cfg := exec.JoinConfig{}
			if withTTL {
				cfg.StateTTL = ttl
			}
			sink = stream.Collect(exec.Join(l, r, []int{0}, []int{0}, exec.JoinLeft, nil, 2, 2, cfg))
			if err := env.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range sink.Values() {
				got = append(got, c.Op.String()+rowStr(c.Vals))
			}
			want := []string{"+I(1,a,∅,∅)", "-D(1,a,∅,∅)", "+I(1,a,1,x)"}
			if withTTL {
				want = want[:1]
			}
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
}
