package queries

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
)

// decodeQ19List returns the bids of an encoded q19 list of auction.
func decodeQ19List(auction int64, list []byte) []nexmark.Bid {
	var out []nexmark.Bid
	s := string(list)
	for len(s) > 0 {
		r, n := readQ19Rec(s)
		s = s[n:]
		out = append(out, nexmark.Bid{Auction: auction, Bidder: r.bidder, Price: r.price,
			Channel: r.channel, URL: r.url, DateTime: r.dateTime, Extra: r.extra})
	}
	return out
}

// TestQ19StateAgainstSort: after every offer of random bids (few prices,
// bidders and strings, so ties and identical bids are common; negative
// and large values), an auction's encoded list holds the best topN of
// all bids offered, in the order of a stable sort by price descending
// and compareBidRows, its record ends match, and the emitted list is the
// list of the last flush.
func TestQ19StateAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "a", "b", "ab", "Google", string(make([]byte, 200))}
	for round := range 200 {
		s := &q19State{Timer: -1}
		var all, emitted []nexmark.Bid
		var rec []byte
		for i := range 1 + r.IntN(60) {
			b := nexmark.Bid{Auction: 7, Bidder: int64(r.IntN(3)) - 1, Price: int64(r.IntN(5)) << uint(r.IntN(40)),
				Channel: strs[r.IntN(len(strs))], URL: strs[r.IntN(len(strs))],
				DateTime: int64(r.IntN(3)), Extra: strs[r.IntN(len(strs))]}
			rec = appendQ19Rec(rec[:0], &b)
			changed := s.offer(rec)
			all = append(all, b)
			want := slices.Clone(all)
			slices.SortStableFunc(want, func(x, y nexmark.Bid) int {
				if x.Price != y.Price {
					return cmp.Compare(y.Price, x.Price)
				}
				return compareBidRows(&x, &y)
			})
			want = want[:min(len(want), topN)]
			got := decodeQ19List(7, s.Top)
			if !slices.Equal(got, want) || s.N != len(got) {
				t.Fatalf("round %d, bid %d: got %d bids %v, want %v", round, i, s.N, got, want)
			}
			for j := range s.N {
				_, n := readQ19Rec(s.Top[s.start(j):])
				if s.start(j)+n != int(s.Ends[j]) {
					t.Fatalf("round %d, bid %d: record %d ends at %d, Ends says %d", round, i, j, s.start(j)+n, s.Ends[j])
				}
			}
			if changed {
				s.Dirty = true
			}
			if s.Dirty && !slices.Equal(decodeQ19List(7, s.Emitted), emitted) {
				t.Fatalf("round %d, bid %d: emitted %v, want %v", round, i, decodeQ19List(7, s.Emitted), emitted)
			}
			if r.IntN(8) == 0 { // a flush
				emitted = got
				s.Emitted, s.Dirty = nil, false
			}
		}
	}
}
