package queries

import (
	"sort"

	"github.com/sluicehq/sluice/nexmark"
)

// The oracles below compute each query's result rows straight from the
// reference SQL over an in-memory slice of events, with no streaming
// machinery: maps and sorting only. They are the independent implementation
// the stream queries are checked against.

const (
	tenSeconds = 10_000
	twoSeconds = 2_000
)

func generateEvents(cfg nexmark.Config, n int64) []nexmark.Event {
	g, err := nexmark.NewGenerator(cfg, 0, n)
	if err != nil {
		panic(err)
	}
	events := make([]nexmark.Event, n)
	for i := range events {
		g.Next(&events[i])
	}
	return events
}

func bidsIn(events []nexmark.Event) []nexmark.Bid {
	var bids []nexmark.Bid
	for i := range events {
		if events[i].Type == nexmark.EventBid {
			bids = append(bids, events[i].Bid)
		}
	}
	return bids
}

// SELECT auction, bidder, price, dateTime, extra FROM bid
func oracleQ0(events []nexmark.Event) []Q0Row {
	var rows []Q0Row
	for _, b := range bidsIn(events) {
		rows = append(rows, Q0Row{b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra})
	}
	return rows
}

// SELECT auction, bidder, 0.908 * price, dateTime, extra FROM bid
func oracleQ1(events []nexmark.Event) []Q1Row {
	var rows []Q1Row
	for _, b := range bidsIn(events) {
		rows = append(rows, Q1Row{b.Auction, b.Bidder, b.Price * 908, b.DateTime, b.Extra})
	}
	return rows
}

// SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
func oracleQ2(events []nexmark.Event) []Q2Row {
	var rows []Q2Row
	for _, b := range bidsIn(events) {
		if b.Auction%123 == 0 {
			rows = append(rows, Q2Row{b.Auction, b.Price})
		}
	}
	return rows
}

// SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON
// A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR','ID','CA')
func oracleQ3(events []nexmark.Event) []Q3Row {
	people := map[int64]nexmark.Person{}
	for i := range events {
		if e := &events[i]; e.Type == nexmark.EventPerson {
			people[e.Person.ID] = e.Person
		}
	}
	var rows []Q3Row
	for i := range events {
		e := &events[i]
		if e.Type != nexmark.EventAuction || e.Auction.Category != 10 {
			continue
		}
		p, ok := people[e.Auction.Seller]
		if ok && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
			rows = append(rows, Q3Row{p.Name, p.City, p.State, e.Auction.ID})
		}
	}
	return rows
}

// SELECT category, AVG(final) FROM (SELECT MAX(B.price) AS final, A.category
// FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN
// A.dateTime AND A.expires GROUP BY A.id, A.category) GROUP BY category
func oracleQ4(events []nexmark.Event) []Q4Row {
	auctions := map[int64]nexmark.Auction{}
	for i := range events {
		if e := &events[i]; e.Type == nexmark.EventAuction {
			auctions[e.Auction.ID] = e.Auction
		}
	}
	final := map[int64]int64{}
	for _, b := range bidsIn(events) {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime > a.Expires {
			continue
		}
		if p, seen := final[a.ID]; !seen || b.Price > p {
			final[a.ID] = b.Price
		}
	}
	type sumCount struct{ sum, n int64 }
	byCat := map[int64]sumCount{}
	for id, price := range final {
		c := byCat[auctions[id].Category]
		byCat[auctions[id].Category] = sumCount{c.sum + price, c.n + 1}
	}
	var rows []Q4Row
	for cat, c := range byCat {
		rows = append(rows, Q4Row{cat, c.sum / c.n})
	}
	return rows
}

// Hot items: per HOP(2 s, 10 s) window, the auctions whose bid count is the
// window's maximum.
func oracleQ5(events []nexmark.Event) []Q5Row {
	counts := map[int64]map[int64]int64{} // window start -> auction -> count
	for _, b := range bidsIn(events) {
		last := b.DateTime - b.DateTime%twoSeconds
		for start := last; start > b.DateTime-tenSeconds; start -= twoSeconds {
			if counts[start] == nil {
				counts[start] = map[int64]int64{}
			}
			counts[start][b.Auction]++
		}
	}
	var rows []Q5Row
	for _, byAuction := range counts {
		var maxn int64
		for _, n := range byAuction {
			maxn = max(maxn, n)
		}
		for a, n := range byAuction {
			if n >= maxn {
				rows = append(rows, Q5Row{a, n})
			}
		}
	}
	return rows
}

// Highest bid: bids whose price is the maximum of a TUMBLE(10 s) window and
// whose time lies in [window_end - 10 s, window_end] (both ends included,
// so a bid exactly at window_end also matches the window before its own).
func oracleQ7(events []nexmark.Event) []Q7Row {
	bids := bidsIn(events)
	maxPrice := map[int64]int64{} // window end -> max price
	for _, b := range bids {
		end := b.DateTime - b.DateTime%tenSeconds + tenSeconds
		if p, ok := maxPrice[end]; !ok || b.Price > p {
			maxPrice[end] = b.Price
		}
	}
	var rows []Q7Row
	for _, b := range bids {
		for end, p := range maxPrice {
			if b.Price == p && b.DateTime >= end-tenSeconds && b.DateTime <= end {
				rows = append(rows, Q7Row{b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra})
			}
		}
	}
	return rows
}

// New users: people and distinct auction sellers grouped by TUMBLE(10 s)
// window, joined on id = seller and the window.
func oracleQ8(events []nexmark.Event) []Q8Row {
	type key struct{ id, start int64 }
	sellers := map[key]bool{}
	for i := range events {
		if e := &events[i]; e.Type == nexmark.EventAuction {
			sellers[key{e.Auction.Seller, e.Auction.DateTime - e.Auction.DateTime%tenSeconds}] = true
		}
	}
	var rows []Q8Row
	for i := range events {
		if e := &events[i]; e.Type == nexmark.EventPerson {
			start := e.Person.DateTime - e.Person.DateTime%tenSeconds
			if sellers[key{e.Person.ID, start}] {
				rows = append(rows, Q8Row{e.Person.ID, e.Person.Name, start})
			}
		}
	}
	return rows
}

// User sessions: per bidder, bids grouped into SESSION(10 s) windows. A bid
// joins a session when it is at most 10 s after the session's last bid
// (Flink's TimeWindow.intersects includes the boundary); a session ends 10 s
// after its last bid.
func oracleQ11(events []nexmark.Event) []Q11Row {
	times := map[int64][]int64{}
	for _, b := range bidsIn(events) {
		times[b.Bidder] = append(times[b.Bidder], b.DateTime)
	}
	var rows []Q11Row
	for bidder, ts := range times {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		start, last, n := ts[0], ts[0], int64(0)
		for _, t := range ts {
			if t-last > tenSeconds {
				rows = append(rows, Q11Row{bidder, n, start, last + tenSeconds})
				start, n = t, 0
			}
			last = t
			n++
		}
		rows = append(rows, Q11Row{bidder, n, start, last + tenSeconds})
	}
	return rows
}
