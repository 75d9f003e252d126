package queries

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

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
				rows = append(rows, q7Row(b))
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

// q14: projection with a CASE on the UTC hour and count_char, filtered on
// 0.908 * price in (1,000,000, 50,000,000).
func oracleQ14(events []nexmark.Event) []Q14Row {
	var rows []Q14Row
	for _, b := range bidsIn(events) {
		euros := float64(b.Price) * 0.908
		if !(euros > 1_000_000 && euros < 50_000_000) {
			continue
		}
		h := time.UnixMilli(b.DateTime).UTC().Hour()
		kind := "otherTime"
		if h >= 8 && h <= 18 {
			kind = "dayTime"
		} else if h <= 6 || h >= 20 {
			kind = "nightTime"
		}
		rows = append(rows, Q14Row{b.Auction, b.Bidder, b.Price * 908, kind, b.DateTime, b.Extra, int64(strings.Count(b.Extra, "c"))})
	}
	return rows
}

func day(ms int64) int64 {
	t := time.UnixMilli(ms).UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).UnixMilli() / 86_400_000
}

func rankOf(price int64) int {
	if price < 10000 {
		return 1
	}
	if price < 1000000 {
		return 2
	}
	return 3
}

type statsOracle struct {
	bids              [4]int64
	bidders, auctions [4]map[int64]bool
}

func (s *statsOracle) add(b nexmark.Bid) {
	for _, i := range []int{0, rankOf(b.Price)} {
		if s.bidders[i] == nil {
			s.bidders[i], s.auctions[i] = map[int64]bool{}, map[int64]bool{}
		}
		s.bids[i]++
		s.bidders[i][b.Bidder] = true
		s.auctions[i][b.Auction] = true
	}
}

func (s *statsOracle) stats() BidStats {
	var r BidStats
	for i := range 4 {
		r.Bids[i], r.Bidders[i], r.Auctions[i] = s.bids[i], int64(len(s.bidders[i])), int64(len(s.auctions[i]))
	}
	return r
}

// q15: statistics per UTC day.
func oracleQ15(events []nexmark.Event) []Q15Row {
	byDay := map[int64]*statsOracle{}
	for _, b := range bidsIn(events) {
		d := day(b.DateTime)
		if byDay[d] == nil {
			byDay[d] = &statsOracle{}
		}
		byDay[d].add(b)
	}
	var rows []Q15Row
	for d, s := range byDay {
		rows = append(rows, Q15Row{Day: d, BidStats: s.stats()})
	}
	return rows
}

// q16: statistics per channel and UTC day, with the latest "HH:mm".
func oracleQ16(events []nexmark.Event) []Q16Row {
	type key struct {
		channel string
		day     int64
	}
	stats := map[key]*statsOracle{}
	minute := map[key]string{}
	for _, b := range bidsIn(events) {
		k := key{b.Channel, day(b.DateTime)}
		if stats[k] == nil {
			stats[k] = &statsOracle{}
		}
		stats[k].add(b)
		if m := time.UnixMilli(b.DateTime).UTC().Format("15:04"); m > minute[k] {
			minute[k] = m
		}
	}
	var rows []Q16Row
	for k, s := range stats {
		var h, m int64
		fmt.Sscanf(minute[k], "%d:%d", &h, &m)
		rows = append(rows, Q16Row{Channel: k.channel, Day: k.day, Minute: h*60 + m, BidStats: s.stats()})
	}
	return rows
}

// q17: statistics per auction and UTC day.
func oracleQ17(events []nexmark.Event) []Q17Row {
	type key struct{ auction, day int64 }
	groups := map[key][]int64{}
	for _, b := range bidsIn(events) {
		k := key{b.Auction, day(b.DateTime)}
		groups[k] = append(groups[k], b.Price)
	}
	var rows []Q17Row
	for k, prices := range groups {
		r := Q17Row{Auction: k.auction, Day: k.day, MinPrice: prices[0], MaxPrice: prices[0]}
		for _, p := range prices {
			r.TotalBids++
			switch rankOf(p) {
			case 1:
				r.Rank1Bids++
			case 2:
				r.Rank2Bids++
			default:
				r.Rank3Bids++
			}
			r.MinPrice, r.MaxPrice, r.SumPrice = min(r.MinPrice, p), max(r.MaxPrice, p), r.SumPrice+p
		}
		r.AvgPrice = r.SumPrice / r.TotalBids
		rows = append(rows, r)
	}
	return rows
}

// oracleBidRowLess is the ranking's tie rule written plainly: the bid
// table's columns in order (auction, bidder, price, channel, url,
// dateTime, extra), strings by bytes.
func oracleBidRowLess(a, b nexmark.Bid) bool {
	ka := []int64{a.Auction, a.Bidder, a.Price}
	kb := []int64{b.Auction, b.Bidder, b.Price}
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	sa, sb := []string{a.Channel, a.URL}, []string{b.Channel, b.URL}
	for i := range sa {
		if sa[i] != sb[i] {
			return sa[i] < sb[i]
		}
	}
	if a.DateTime != b.DateTime {
		return a.DateTime < b.DateTime
	}
	return a.Extra < b.Extra
}

// q18: the latest bid per (bidder, auction); among bids at the same time,
// the smallest row.
func oracleQ18(events []nexmark.Event) []Q18Row {
	type key struct{ bidder, auction int64 }
	groups := map[key][]nexmark.Bid{}
	for _, b := range bidsIn(events) {
		k := key{b.Bidder, b.Auction}
		groups[k] = append(groups[k], b)
	}
	var rows []Q18Row
	for _, bids := range groups {
		sort.SliceStable(bids, func(i, j int) bool {
			a, b := bids[i], bids[j]
			if a.DateTime != b.DateTime {
				return a.DateTime > b.DateTime
			}
			return oracleBidRowLess(a, b)
		})
		rows = append(rows, Q18Row(bids[0]))
	}
	return rows
}

// q19: the ten highest bids per auction, ranked 1..10; among equal prices
// the smaller row first.
func oracleQ19(events []nexmark.Event) []Q19Row {
	groups := map[int64][]nexmark.Bid{}
	for _, b := range bidsIn(events) {
		groups[b.Auction] = append(groups[b.Auction], b)
	}
	var rows []Q19Row
	for _, bids := range groups {
		sort.SliceStable(bids, func(i, j int) bool {
			a, b := bids[i], bids[j]
			if a.Price != b.Price {
				return a.Price > b.Price
			}
			return oracleBidRowLess(a, b)
		})
		for i := 0; i < len(bids) && i < 10; i++ {
			rows = append(rows, Q19Row{Bid: bids[i], RankNumber: int64(i + 1)})
		}
	}
	return rows
}

// q20: every bid joined with its auction, for auctions of category 10.
func oracleQ20(events []nexmark.Event) []Q20Row {
	auctions := map[int64]nexmark.Auction{}
	for i := range events {
		if e := &events[i]; e.Type == nexmark.EventAuction {
			auctions[e.Auction.ID] = e.Auction
		}
	}
	var rows []Q20Row
	for _, b := range bidsIn(events) {
		if a, ok := auctions[b.Auction]; ok && a.Category == 10 {
			rows = append(rows, Q20Row{Bid: b, Auction: a})
		}
	}
	return rows
}

var channelIDPattern = regexp.MustCompile(`(&|^)channel_id=([^&]*)`)

// q21: hot channels get ids 0-3, others the channel_id URL parameter;
// bids with neither are dropped.
func oracleQ21(events []nexmark.Event) []Q21Row {
	ids := map[string]string{"apple": "0", "google": "1", "facebook": "2", "baidu": "3"}
	var rows []Q21Row
	for _, b := range bidsIn(events) {
		id, ok := ids[strings.ToLower(b.Channel)]
		if !ok {
			m := channelIDPattern.FindStringSubmatch(b.URL)
			if m == nil {
				continue
			}
			id = m[2]
		}
		rows = append(rows, Q21Row{b.Auction, b.Bidder, b.Price, b.Channel, id})
	}
	return rows
}

// q22: the 4th to 6th '/'-separated fields of the URL.
func oracleQ22(events []nexmark.Event) []Q22Row {
	var rows []Q22Row
	for _, b := range bidsIn(events) {
		parts := strings.Split(b.URL, "/")
		field := func(i int) NullString {
			if i < len(parts) {
				return NullString{S: parts[i], Valid: true}
			}
			return NullString{}
		}
		rows = append(rows, Q22Row{b.Auction, b.Bidder, b.Price, b.Channel, field(3), field(4), field(5)})
	}
	return rows
}
