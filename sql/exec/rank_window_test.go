package exec_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// TestWindowRankProperty compares WindowRank with a sort-and-take per
// partition and window over out-of-order on-time rows.
func TestWindowRankProperty(t *testing.T) {
	for _, rowNumber := range []bool{false, true} {
		for _, par := range []int{1, 2} {
			for seed := range uint64(4) {
				t.Run(fmt.Sprintf("rownum=%v/p%d/%d", rowNumber, par, seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, 17))
					const delay, size = 6, 10
					evs := windowed(onTime(r, 200, 3, delay), size) // [k, v, ts, ws, we]
					order := []exec.SortKey{{Col: 1, Desc: r.IntN(2) == 0, NullsFirst: r.IntN(2) == 0}, {Col: 2, Desc: r.IntN(2) == 0}}
					limit := 1 + r.IntN(3)
					type arr struct {
						vals []row.Value
						seq  int
					}
					groups := map[string][]arr{}
					for i, e := range evs {
						k := rowStr([]row.Value{e.C.Vals[0], e.C.Vals[3], e.C.Vals[4]})
						groups[k] = append(groups[k], arr{e.C.Vals, i})
					}
					want := map[string]int{}
					for _, g := range groups {
						slices.SortFunc(g, func(x, y arr) int {
							if c := oracleCmp(order, x.vals, y.vals); c != 0 {
								return c
							}
							if c := oracleTie(x.vals, y.vals); c != 0 {
								return c
							}
							return x.seq - y.seq
						})
						for i, a := range g[:min(limit, len(g))] {
							v := a.vals
							if rowNumber {
								v = append(slices.Clip(v), row.Int(int64(i+1)))
							}
							want[stampStr(v, a.vals[4].AsInt()-1)]++
						}
					}
					env := stream.New(stream.WithParallelism(par), stream.WithBatchSize(5))
					outs := collect(t, env, exec.WindowRank(source(env, "in", evs, delay), []int{0}, [2]int{3, 4}, order, int64(limit), rowNumber, exec.RankConfig{}))
					for _, o := range outs {
						if o.C.Op != exec.Insert {
							t.Fatalf("emitted %s: window top-N output is append-only", o.C.Op)
						}
					}
					sameMultiset(t, stamped(outs), want)
				})
			}
		}
	}
}
