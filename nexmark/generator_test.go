package nexmark

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

func generateBytes(t testing.TB, cfg Config, first, end int64) []byte {
	t.Helper()
	g, err := NewGenerator(cfg, first, end)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	var e Event
	for g.Next(&e) {
		buf = AppendJSON(buf, &e)
		buf = append(buf, '\n')
	}
	return buf
}

func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	a := generateBytes(t, cfg, 0, 5000)
	b := generateBytes(t, cfg, 0, 5000)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed and config gave different events")
	}
	var w bytes.Buffer
	if err := GenerateJSON(context.Background(), &w, cfg, 5000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, w.Bytes()) {
		t.Fatal("GenerateJSON differs from the generator")
	}
	cfg.Seed = 1
	c := generateBytes(t, cfg, 0, 5000)
	if bytes.Equal(a, c) {
		t.Fatal("seeds 0 and 1 gave the same events")
	}
}

// TestSplits checks that any split count yields exactly the unsplit run,
// both in order (concatenated) and as a multiset, with the splits running
// concurrently.
func TestSplits(t *testing.T) {
	cfg := DefaultConfig()
	const events = 10007
	whole := generateBytes(t, cfg, 0, events)
	wholeLines := multiset(whole)
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			parts := make([][]byte, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					first, end := SplitRange(events, n, i)
					parts[i] = generateBytes(t, cfg, first, end)
				}()
			}
			wg.Wait()
			joined := bytes.Join(parts, nil)
			if !bytes.Equal(joined, whole) {
				t.Fatalf("%d splits concatenated differ from the unsplit run", n)
			}
			got := multiset(joined)
			for line, c := range wholeLines {
				if got[line] != c {
					t.Fatalf("%d splits: line %.60q appears %d times, want %d", n, line, got[line], c)
				}
			}
		})
	}
}

func multiset(b []byte) map[string]int {
	m := make(map[string]int)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m[l]++
	}
	return m
}

func TestSplitRange(t *testing.T) {
	for _, events := range []int64{0, 1, 5, 7, 100, 1001} {
		for n := 1; n <= 9; n++ {
			next := int64(0)
			for i := 0; i < n; i++ {
				first, end := SplitRange(events, n, i)
				if first != next || end < first {
					t.Fatalf("SplitRange(%d, %d, %d) = [%d, %d), want start %d", events, n, i, first, end, next)
				}
				if size := end - first; size < events/int64(n) || size > events/int64(n)+1 {
					t.Fatalf("SplitRange(%d, %d, %d) has %d events", events, n, i, size)
				}
				next = end
			}
			if next != events {
				t.Fatalf("SplitRange(%d, %d, *) covers %d events", events, n, next)
			}
		}
	}
}

func TestRestartAtPosition(t *testing.T) {
	cfg := DefaultConfig()
	whole := generateBytes(t, cfg, 0, 3000)
	g, err := NewGenerator(cfg, 0, 3000)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	var e Event
	for i := 0; i < 1234 && g.Next(&e); i++ {
		buf = append(AppendJSON(buf, &e), '\n')
	}
	buf = append(buf, generateBytes(t, cfg, g.Position(), g.End())...)
	if !bytes.Equal(buf, whole) {
		t.Fatal("restarting at Position() changed the sequence")
	}
	var at Event
	g.EventAt(17, &at)
	g2, _ := NewGenerator(cfg, 17, 18)
	g2.Next(&e)
	if at != e {
		t.Fatal("EventAt(17) differs from the 17th event")
	}
}

func TestEventMix(t *testing.T) {
	for _, tc := range []struct{ p, a, b int }{{1, 3, 46}, {1, 1, 1}, {2, 5, 0}, {3, 2, 10}} {
		cfg := DefaultConfig()
		cfg.PersonProportion, cfg.AuctionProportion, cfg.BidProportion = tc.p, tc.a, tc.b
		total := int64(tc.p + tc.a + tc.b)
		events := total * 1000
		g, err := NewGenerator(cfg, 0, events)
		if err != nil {
			t.Fatal(err)
		}
		var counts [3]int64
		var e Event
		for n := int64(0); g.Next(&e); n++ {
			counts[e.Type]++
			// Within each epoch: people first, then auctions, then bids.
			off := n % total
			want := EventBid
			if off < int64(tc.p) {
				want = EventPerson
			} else if off < int64(tc.p+tc.a) {
				want = EventAuction
			}
			if e.Type != want {
				t.Fatalf("%v: event %d is a %v, want %v", tc, n, e.Type, want)
			}
		}
		want := [3]int64{int64(tc.p) * 1000, int64(tc.a) * 1000, int64(tc.b) * 1000}
		if counts != want {
			t.Fatalf("%v: counts %v, want %v", tc, counts, want)
		}
	}
}

// TestReferences checks ids, foreign keys and value ranges against the
// reference's rules over a long run.
func TestReferences(t *testing.T) {
	cfg := DefaultConfig()
	const events = 200_000
	g, err := NewGenerator(cfg, 0, events)
	if err != nil {
		t.Fatal(err)
	}
	nextPerson, nextAuction := int64(FirstPersonID), int64(FirstAuctionID)
	var hotChannelBids, bids, futureAuctions, futurePeople int64
	var e Event
	for n := int64(0); g.Next(&e); n++ {
		if got, want := e.DateTime(), cfg.Timestamp(n); got != want {
			t.Fatalf("event %d at %d, want %d", n, got, want)
		}
		lastPerson, lastAuction := nextPerson-1, nextAuction-1
		checkPerson := func(what string, id int64) {
			if id < FirstPersonID || id > lastPerson+personIDLead || id < lastPerson-int64(cfg.NumActivePeople) {
				t.Fatalf("event %d: %s %d outside [%d-%d, %d+%d]", n, what, id, lastPerson, cfg.NumActivePeople, lastPerson, personIDLead)
			}
			if id > lastPerson {
				futurePeople++
			}
		}
		switch e.Type {
		case EventPerson:
			p := &e.Person
			if p.ID != nextPerson {
				t.Fatalf("event %d: person id %d, want %d", n, p.ID, nextPerson)
			}
			nextPerson++
			if p.Name == "" || !strings.Contains(p.EmailAddress, "@") || len(p.CreditCard) != 19 || p.City == "" || len(p.State) != 2 {
				t.Fatalf("event %d: malformed person %+v", n, *p)
			}
		case EventAuction:
			a := &e.Auction
			if a.ID != nextAuction {
				t.Fatalf("event %d: auction id %d, want %d", n, a.ID, nextAuction)
			}
			nextAuction++
			checkPerson("seller", a.Seller)
			if a.Category < FirstCategoryID || a.Category >= FirstCategoryID+NumCategories {
				t.Fatalf("event %d: category %d", n, a.Category)
			}
			if a.InitialBid < 100 || a.Reserve <= a.InitialBid || a.Expires <= a.DateTime {
				t.Fatalf("event %d: malformed auction %+v", n, *a)
			}
		case EventBid:
			b := &e.Bid
			bids++
			if b.Auction < FirstAuctionID || b.Auction > lastAuction+auctionIDLead || b.Auction < lastAuction-int64(cfg.NumInFlightAuctions) {
				t.Fatalf("event %d: auction %d outside [%d-%d, %d+%d]", n, b.Auction, lastAuction, cfg.NumInFlightAuctions, lastAuction, auctionIDLead)
			}
			if b.Auction > lastAuction {
				futureAuctions++
			}
			checkPerson("bidder", b.Bidder)
			if b.Price < 100 || b.Price > 100_000_000 {
				t.Fatalf("event %d: price %d", n, b.Price)
			}
			switch {
			case isHotChannel(b.Channel):
				hotChannelBids++
			case strings.HasPrefix(b.Channel, "channel-"):
				if !strings.HasPrefix(b.URL, "https://www.nexmark.com/") {
					t.Fatalf("event %d: url %q", n, b.URL)
				}
			default:
				t.Fatalf("event %d: channel %q", n, b.Channel)
			}
		}
	}
	// Half of the bids go to hot channels; a few bids name auctions and
	// people not created yet, as in the reference.
	if f := float64(hotChannelBids) / float64(bids); math.Abs(f-0.5) > 0.01 {
		t.Errorf("hot channel fraction %.3f, want 0.5", f)
	}
	if futureAuctions == 0 || futureAuctions > bids/20 {
		t.Errorf("%d of %d bids name future auctions", futureAuctions, bids)
	}
	if futurePeople == 0 {
		t.Errorf("no event names a future person")
	}
}

func isHotChannel(c string) bool {
	for _, h := range HotChannels() {
		if c == h {
			return true
		}
	}
	return false
}

// TestDistributions checks the hot ratios and average sizes statistically
// (the tolerances are many standard deviations wide for 100k events).
func TestDistributions(t *testing.T) {
	cfg := DefaultConfig()
	g, err := NewGenerator(cfg, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	var bids, hotAuction, hotBidder, auctions, hotSeller int64
	var personSize, auctionSize, bidSize, people int64
	categories := map[int64]int64{}
	var e Event
	for n := int64(0); g.Next(&e); n++ {
		switch e.Type {
		case EventPerson:
			p := &e.Person
			people++
			personSize += int64(8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State) + len(p.Extra))
		case EventAuction:
			a := &e.Auction
			auctions++
			auctionSize += int64(8 + len(a.ItemName) + len(a.Description) + 40 + len(a.Extra))
			if a.Seller == (cfg.LastPersonID(n)-FirstPersonID)/100*100+FirstPersonID {
				hotSeller++
			}
			categories[a.Category]++
		case EventBid:
			b := &e.Bid
			bids++
			bidSize += int64(32 + len(b.Extra))
			if b.Auction == (cfg.LastAuctionID(n)-FirstAuctionID)/100*100+FirstAuctionID {
				hotAuction++
			}
			if b.Bidder == (cfg.LastPersonID(n)-FirstPersonID)/100*100+1+FirstPersonID {
				hotBidder++
			}
		}
	}
	near := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tol)
		}
	}
	// Random picks may also land on the hot id, hence the lower bounds.
	near("hot auction fraction", float64(hotAuction)/float64(bids), 0.5, 0.02)
	near("hot bidder fraction", float64(hotBidder)/float64(bids), 0.75, 0.02)
	near("hot seller fraction", float64(hotSeller)/float64(auctions), 0.75, 0.04)
	near("average person size", float64(personSize)/float64(people), 200, 5)
	near("average auction size", float64(auctionSize)/float64(auctions), 500, 5)
	near("average bid size", float64(bidSize)/float64(bids), 100, 1)
	for c := int64(FirstCategoryID); c < FirstCategoryID+NumCategories; c++ {
		near(fmt.Sprint("category ", c), float64(categories[c])/float64(auctions), 0.2, 0.03)
	}
}

func TestTimestamps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EventRate = 10_000 // 100 µs apart: ten events per millisecond
	for _, tc := range []struct{ n, want int64 }{{0, 0}, {9, 0}, {10, 1}, {10_000, 1000}, {123_456, 12_345}} {
		if got := cfg.Timestamp(tc.n) - cfg.BaseTime; got != tc.want {
			t.Errorf("Timestamp(%d) = base+%d, want base+%d", tc.n, got, tc.want)
		}
	}
	cfg = DefaultConfig() // 10M/s: 10,000 events per millisecond
	if got := cfg.Timestamp(25_000) - cfg.BaseTime; got != 2 {
		t.Errorf("at 10M/s Timestamp(25000) = base+%d, want base+2", got)
	}
}

func TestOutOfOrderGroups(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OutOfOrderGroupSize = 100
	g, err := NewGenerator(cfg, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var e Event
	people := 0
	for g.Next(&e) {
		if e.Type == EventPerson {
			people++
			seen[e.Person.ID] = true
		}
	}
	if people != 20 || len(seen) != 20 {
		t.Fatalf("%d people, %d distinct; want 20", people, len(seen))
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"rate", func(c *Config) { c.EventRate = 0 }},
		{"person proportion", func(c *Config) { c.PersonProportion = 0 }},
		{"auction proportion", func(c *Config) { c.AuctionProportion = -1 }},
		{"bid proportion", func(c *Config) { c.BidProportion = -1 }},
		{"active people", func(c *Config) { c.NumActivePeople = 0 }},
		{"in-flight", func(c *Config) { c.NumInFlightAuctions = 0 }},
		{"hot ratio", func(c *Config) { c.HotAuctionRatio = 0 }},
		{"size", func(c *Config) { c.AvgBidByteSize = -1 }},
		{"group", func(c *Config) { c.OutOfOrderGroupSize = 0 }},
	} {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", tc.name, err)
		}
		if _, err := NewGenerator(cfg, 0, 1); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: NewGenerator error %v, want ErrInvalidConfig", tc.name, err)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if _, err := NewGenerator(cfg, 5, 4); err == nil {
		t.Fatal("NewGenerator accepted an inverted range")
	}
}

func TestChannelURLs(t *testing.T) {
	g, err := NewGenerator(DefaultConfig(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	withID := 0
	for n := 0; n < NumChannels; n++ {
		c := g.channel(n)
		if c.name != fmt.Sprint("channel-", n) {
			t.Fatalf("channel %d named %q", n, c.name)
		}
		if strings.Contains(c.url, "&channel_id=") {
			withID++
		}
	}
	// Java's Math.abs leaves Integer.reverse(1) = MinInt32 negative.
	if c := g.channel(1); strings.Contains(c.url, "&channel_id=") && !strings.HasSuffix(c.url, "&channel_id=-2147483648") {
		t.Errorf("channel 1 url %q", c.url)
	}
	if withID < 8800 || withID > 9200 {
		t.Errorf("%d of %d channel urls carry a channel_id, want about 90%%", withID, NumChannels)
	}
}

func TestStridedSplits(t *testing.T) {
	cfg := DefaultConfig()
	const events = 5003
	whole := generateBytes(t, cfg, 0, events)
	want := strings.Split(strings.TrimSuffix(string(whole), "\n"), "\n")
	for _, n := range []int{1, 2, 3, 7} {
		got := make([]string, events)
		for i := 0; i < n; i++ {
			g, err := NewStridedGenerator(cfg, events, n, i)
			if err != nil {
				t.Fatal(err)
			}
			var e Event
			for {
				pos := g.Position()
				if !g.Next(&e) {
					break
				}
				if pos%int64(n) != int64(i) || got[pos] != "" {
					t.Fatalf("split %d/%d produced event %d", i, n, pos)
				}
				got[pos] = string(AppendJSON(nil, &e))
			}
		}
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("%d strided splits: event %d differs or is missing", n, k)
			}
		}
	}
	g, _ := NewStridedGenerator(cfg, events, 3, 1)
	if err := g.SetPosition(5); err == nil {
		t.Fatal("SetPosition accepted an event of another split")
	}
	if err := g.SetPosition(7); err != nil {
		t.Fatal(err)
	}
	var e, want7 Event
	g.Next(&e)
	g.EventAt(7, &want7)
	if e != want7 {
		t.Fatal("SetPosition(7) then Next did not give event 7")
	}
}
