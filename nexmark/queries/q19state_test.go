package queries

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
)

// TestQ19StateAgainstSort: after every offer of random bids (few prices,
// bidders and strings, so ties and identical bids are common; negative
// and large values), an auction's list holds the best topN of all bids
// offered, in the order of a stable sort by price descending and
// compareBidRows, and, while the key is dirty, the emitted list is the
// list of the last flush.
func TestQ19StateAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "b", "ab", "Google", string(make([]byte, 200))}
	for round := range 200 {
		s := &q19State{Timer: -1}
		var all, emitted []nexmark.Bid
		for i := range 1 + r.IntN(60) {
			b := nexmark.Bid{Auction: 7, Bidder: int64(r.IntN(3)) - 1, Price: int64(r.IntN(5)) << uint(r.IntN(40)),
				Channel: strs[r.IntN(len(strs))], URL: strs[r.IntN(len(strs))],
				DateTime: int64(r.IntN(3)), Extra: strs[r.IntN(len(strs))]}
			changed := s.offer(b)
			all = append(all, b)
			want := slices.Clone(all)
			slices.SortStableFunc(want, func(x, y nexmark.Bid) int {
				if x.Price != y.Price {
					return cmp.Compare(y.Price, x.Price)
				}
				return compareBidRows(&x, &y)
			})
			want = want[:min(len(want), topN)]
			got := slices.Clone(s.Top)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, bid %d: got %v, want %v", round, i, got, want)
			}
			if changed {
				s.Dirty = true
			}
			if s.Dirty && !slices.Equal(s.Emitted, emitted) {
				t.Fatalf("round %d, bid %d: emitted %v, want %v", round, i, s.Emitted, emitted)
			}
			if r.IntN(8) == 0 { // a flush
				emitted = got
				s.Emitted, s.Dirty = nil, false
			}
		}
	}
}
