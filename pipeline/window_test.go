package pipeline

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

type click struct {
	ts     int64
	user   string
	amount any // int64, float64 or nil
	page   string
	seq    int
}

func randClicks(rng *rand.Rand, n int) []click {
	cs := make([]click, n)
	for i := range cs {
		c := click{ts: 1_000_000 + rng.Int64N(120_000), user: fmt.Sprintf("u%d", rng.IntN(4)), page: fmt.Sprintf("p%d", rng.IntN(5)), seq: i}
		switch rng.IntN(4) {
		case 0:
			c.amount = nil
		case 1:
			c.amount = float64(rng.IntN(100)) / 4
		default:
			c.amount = int64(rng.IntN(100))
		}
		cs[i] = c
	}
	return cs
}

func clicksJSON(cs []click) string {
	recs := make([]map[string]any, len(cs))
	for i, c := range cs {
		recs[i] = map[string]any{"ts": c.ts, "user": c.user, "amount": c.amount, "page": c.page, "seq": c.seq}
	}
	return jsonLines(recs)
}

// oracle computes the expected window rows for clicks grouped by
// assign (which returns the windows of a click).
func oracle(cs []click, wins func(user string, c click) [][2]int64) []string {
	type key struct {
		user       string
		start, end int64
	}
	groups := map[key][]click{}
	for _, c := range cs {
		for _, w := range wins(c.user, c) {
			k := key{c.user, w[0], w[1]}
			groups[k] = append(groups[k], c)
		}
	}
	var out []map[string]any
	for k, g := range groups {
		sort.SliceStable(g, func(i, j int) bool { return g[i].ts < g[j].ts })
		n, nn := 0, 0
		var isum int64
		var fsum float64
		isFloat := false
		var lo, hi any
		pages := map[string]bool{}
		for _, c := range g {
			n++
			pages[c.page] = true
			switch a := c.amount.(type) {
			case int64:
				nn++
				isum += a
				fsum += float64(a)
				if lo == nil || num(a) < num(lo) {
					lo = a
				}
				if hi == nil || num(a) > num(hi) {
					hi = a
				}
			case float64:
				nn++
				isFloat = true
				fsum += a
				if lo == nil || a < num(lo) {
					lo = a
				}
				if hi == nil || a > num(hi) {
					hi = a
				}
			}
		}
		var sum any
		if nn > 0 {
			if isFloat {
				sum = fsum
			} else {
				sum = isum
			}
		}
		// first/last by event time; ties: earliest/latest in input order.
		first, last := g[0], g[len(g)-1]
		out = append(out, map[string]any{
			"user": k.user, "window_start": k.start, "window_end": k.end,
			"n": n, "total": sum, "lo": lo, "hi": hi, "pages": len(pages),
			"first_seq": first.seq, "last_seq": last.seq,
		})
	}
	res := make([]string, 0, len(out))
	for _, r := range out {
		// Round-trip through JSON with UseNumber so that number formats
		// match the pipeline's output decoding.
		b, _ := json.Marshal(r)
		var m map[string]any
		dec := json.NewDecoder(bytesReader(b))
		dec.UseNumber()
		_ = dec.Decode(&m)
		res = append(res, canon([]map[string]any{m})[0])
	}
	sort.Strings(res)
	return res
}

func num(x any) float64 {
	switch v := x.(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

const windowSpec = `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 200s}
steps:
  - window:
      key: [user]
      %s
      aggregate: {n: count(), total: sum(amount), lo: min(amount), hi: max(amount), pages: count_distinct(page), first_seq: first(seq), last_seq: last(seq)}
sink: {stdout: {}}
parallelism: 1
`

// TestWindowAggregatesMatchOracle runs tumbling, sliding and session
// windows over random clicks (no record late) and compares every output
// row with a direct computation.
func TestWindowAggregatesMatchOracle(t *testing.T) {
	for _, tc := range []struct {
		name, window string
		wins         func(cs []click) func(string, click) [][2]int64
	}{
		{"tumbling", "tumbling: 10s", func([]click) func(string, click) [][2]int64 {
			return func(_ string, c click) [][2]int64 {
				s := c.ts - c.ts%10_000
				return [][2]int64{{s, s + 10_000}}
			}
		}},
		{"sliding", "sliding: {size: 10s, slide: 4s}", func([]click) func(string, click) [][2]int64 {
			return func(_ string, c click) [][2]int64 {
				var out [][2]int64
				for s := c.ts - c.ts%4_000; s > c.ts-10_000; s -= 4_000 {
					out = append(out, [2]int64{s, s + 10_000})
				}
				return out
			}
		}},
		{"session", "session: {gap: 3s}", func(cs []click) func(string, click) [][2]int64 {
			// Sessions per user: sort by time, split where the gap to
			// the previous click is at least 3s.
			byUser := map[string][]int64{}
			for _, c := range cs {
				byUser[c.user] = append(byUser[c.user], c.ts)
			}
			sess := map[string][][2]int64{}
			for u, ts := range byUser {
				sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
				start, end := ts[0], ts[0]+3000
				for _, x := range ts[1:] {
					if x >= end {
						sess[u] = append(sess[u], [2]int64{start, end})
						start = x
					}
					end = max(end, x+3000)
				}
				sess[u] = append(sess[u], [2]int64{start, end})
			}
			return func(u string, c click) [][2]int64 {
				for _, w := range sess[u] {
					if c.ts >= w[0] && c.ts < w[1] {
						return [][2]int64{w}
					}
				}
				panic("no session")
			}
		}},
	} {
		for _, backend := range []string{"memory", "pebble"} {
			t.Run(tc.name+"-"+backend, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(42, uint64(len(tc.name))))
				cs := randClicks(rng, 400)
				spec := fmt.Sprintf(windowSpec, tc.window)
				if backend == "pebble" {
					spec += "state: {backend: pebble, dir: $DIR/state}\n"
				}
				rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": clicksJSON(cs)})
				if err != nil {
					t.Fatal(err)
				}
				got := canon(rows)
				want := oracle(cs, tc.wins(cs))
				if len(got) != len(want) {
					t.Fatalf("%d rows, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("row %d:\n got  %s\n want %s", i, got[i], want[i])
					}
				}
			})
		}
	}
}
