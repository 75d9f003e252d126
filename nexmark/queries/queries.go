package queries

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// query adds one Nexmark query to a dataflow: from the event stream to a
// sink reporting to res.
type query struct {
	name    string
	summary string
	build   func(events stream.Stream[nexmark.Event], res *results) error
}

// registry lists the implemented queries in the order `--query all` runs
// them.
func registry() []query {
	return []query{
		{"q0", "pass-through of bids", buildQ0},
		{"q1", "currency conversion of bid prices", buildQ1},
		{"q2", "bids on every 123rd auction", buildQ2},
		{"q3", "local item suggestion: auction-person join", buildQ3},
		{"q4", "average winning price per category", buildQ4},
		{"q5", "hot items: sliding window 10 s / 2 s", buildQ5},
		{"q7", "highest bid per 10 s tumbling window", buildQ7},
		{"q8", "new users: person-auction window join", buildQ8},
		{"q11", "user sessions, 10 s gap", buildQ11},
		{"q12", "bids per bidder per 10 s processing-time window (timing-dependent)", buildQ12},
		{"q14", "filter and projection with a user function", buildQ14},
		{"q15", "bidding statistics per day, distinct counts", buildQ15},
		{"q16", "channel statistics per day, distinct counts", buildQ16},
		{"q17", "auction statistics per day", buildQ17},
		{"q18", "dedup: latest bid per bidder and auction", buildQ18},
		{"q19", "top 10 bids per auction", buildQ19},
		{"q20", "bids joined with their category-10 auction", buildQ20},
		{"q21", "channel id extraction", buildQ21},
		{"q22", "URL split into directories", buildQ22},
	}
}

// Queries returns the names of the implemented queries, in run order.
func Queries() []string {
	var names []string
	for _, q := range registry() {
		names = append(names, q.name)
	}
	return names
}

// Describe returns a one-line description of query name, or "" if it is
// not implemented.
func Describe(name string) string {
	for _, q := range registry() {
		if q.name == name {
			return q.summary
		}
	}
	return ""
}

func lookup(name string) (query, error) {
	for _, q := range registry() {
		if q.name == name {
			return q, nil
		}
	}
	return query{}, fmt.Errorf("%w: %q (implemented: %v)", ErrUnknownQuery, name, Queries())
}

func toAppend[R Row](s stream.Stream[R], res *results) {
	stream.To[R](s, appendSink[R]{res: res}, stream.Name("results"))
}

func toChanges[R Row](s stream.Stream[Change[R]], res *results) {
	stream.To[Change[R]](s, changeSink[R]{res: res}, stream.Name("results"))
}

// q0: SELECT auction, bidder, price, dateTime, extra FROM bid.
func buildQ0(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q0Row]) {
		if e.Type == nexmark.EventBid {
			b := &e.Bid
			out.Emit(Q0Row{b.Auction, b.Bidder, b.Price, b.DateTime, b.Extra})
		}
	}, stream.Name("q0"))
	toAppend(rows, res)
	return nil
}

// q1: SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM
// bid. The price is DECIMAL(23, 3), kept exact in thousandths.
func buildQ1(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q1Row]) {
		if e.Type == nexmark.EventBid {
			b := &e.Bid
			out.Emit(Q1Row{b.Auction, b.Bidder, b.Price * 908, b.DateTime, b.Extra})
		}
	}, stream.Name("q1"))
	toAppend(rows, res)
	return nil
}

// q2: SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0.
func buildQ2(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q2Row]) {
		if e.Type == nexmark.EventBid && e.Bid.Auction%123 == 0 {
			out.Emit(Q2Row{e.Bid.Auction, e.Bid.Price})
		}
	}, stream.Name("q2"))
	toAppend(rows, res)
	return nil
}

// q3In is an input of the q3 join, keyed by person id: a person (any
// state) or an auction of category 10 by that seller.
type q3In struct {
	person  bool
	id      int64 // person id or seller
	auction int64
	name    string
	city    string
	state   string
}

type q3State struct {
	Seen    bool // the person arrived (person ids are unique)
	Match   bool // ... and lives in OR, ID or CA
	Name    string
	City    string
	State   string
	Pending []int64 // auctions that arrived before their seller
}

// q3: SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON
// A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA').
// An unbounded join: each side waits for the other forever. Person ids are
// a primary key, so once a person has arrived, auctions of a non-matching
// seller are dropped instead of kept.
func buildQ3(events stream.Stream[nexmark.Event], res *results) error {
	in := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[q3In]) {
		switch e.Type {
		case nexmark.EventPerson:
			p := &e.Person
			out.Emit(q3In{person: true, id: p.ID, name: p.Name, city: p.City, state: p.State})
		case nexmark.EventAuction:
			if e.Auction.Category == 10 {
				out.Emit(q3In{id: e.Auction.Seller, auction: e.Auction.ID})
			}
		}
	}, stream.Name("q3-inputs"))
	keyed := stream.KeyBy(in, func(v q3In) int64 { return v.id })
	rows := stream.KeyedProcess(keyed, func(ctx *stream.KeyedContext[int64, Q3Row]) (stream.KeyedProcessFunc[int64, q3In, Q3Row], error) {
		st, err := state.NewValue[int64, q3State](ctx.State(), "q3-person")
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[int64, q3In, Q3Row]{Element: func(ctx *stream.KeyedContext[int64, Q3Row], v q3In) {
			s, _ := st.Get()
			if v.person {
				s.Seen = true
				s.Match = v.state == "OR" || v.state == "ID" || v.state == "CA"
				if s.Match {
					s.Name, s.City, s.State = v.name, v.city, v.state
					for _, a := range s.Pending {
						ctx.Emit(Q3Row{s.Name, s.City, s.State, a})
					}
				}
				s.Pending = nil
				st.Set(s)
				return
			}
			switch {
			case s.Match:
				ctx.Emit(Q3Row{s.Name, s.City, s.State, v.auction})
			case !s.Seen:
				s.Pending = append(s.Pending, v.auction)
				st.Set(s)
			}
		}}, nil
	}, stream.Name("q3-join"))
	toAppend(rows, res)
	return nil
}

// q4In is an input of the q4 join, keyed by auction id.
type q4In struct {
	auction  bool
	id       int64
	dateTime int64
	expires  int64 // auctions
	category int64 // auctions
	price    int64 // bids
}

type q4Bid struct{ DateTime, Price int64 }

type q4State struct {
	Known             bool
	DateTime, Expires int64
	Category          int64
	Final             int64 // highest price of a bid within the auction's life
	HasFinal          bool
	Pending           []q4Bid // bids that arrived before their auction
}

// q4Update says that auction's winning price in category became final,
// replacing prev if hadPrev.
type q4Update struct {
	category, final, prev int64
	hadPrev               bool
}

type q4Avg struct {
	Sum, Count int64
	Last       Q4Row // the row emitted last, retracted on the next update
}

// q4: SELECT category, AVG(final) FROM (SELECT MAX(B.price) AS final,
// A.category FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime
// BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) GROUP BY
// category. Both aggregates update as bids arrive: the result is a
// changelog whose final rows are fingerprinted. AVG over BIGINT is an integer division, as in
// Flink.
func buildQ4(events stream.Stream[nexmark.Event], res *results) error {
	in := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[q4In]) {
		switch e.Type {
		case nexmark.EventAuction:
			a := &e.Auction
			out.Emit(q4In{auction: true, id: a.ID, dateTime: a.DateTime, expires: a.Expires, category: a.Category})
		case nexmark.EventBid:
			out.Emit(q4In{id: e.Bid.Auction, dateTime: e.Bid.DateTime, price: e.Bid.Price})
		}
	}, stream.Name("q4-inputs"))
	winners := stream.KeyedProcess(stream.KeyBy(in, func(v q4In) int64 { return v.id }),
		func(ctx *stream.KeyedContext[int64, q4Update]) (stream.KeyedProcessFunc[int64, q4In, q4Update], error) {
			st, err := state.NewValue[int64, q4State](ctx.State(), "q4-auction")
			if err != nil {
				return nil, err
			}
			offer := func(ctx *stream.KeyedContext[int64, q4Update], s *q4State, b q4Bid) {
				if b.DateTime < s.DateTime || b.DateTime > s.Expires || (s.HasFinal && b.Price <= s.Final) {
					return
				}
				ctx.Emit(q4Update{category: s.Category, final: b.Price, prev: s.Final, hadPrev: s.HasFinal})
				s.Final, s.HasFinal = b.Price, true
			}
			return stream.KeyedProcessFuncs[int64, q4In, q4Update]{Element: func(ctx *stream.KeyedContext[int64, q4Update], v q4In) {
				s, _ := st.Get()
				if v.auction {
					s.Known, s.DateTime, s.Expires, s.Category = true, v.dateTime, v.expires, v.category
					for _, b := range s.Pending {
						offer(ctx, &s, b)
					}
					s.Pending = nil
					st.Set(s)
					return
				}
				b := q4Bid{v.dateTime, v.price}
				if !s.Known {
					s.Pending = append(s.Pending, b)
					st.Set(s)
					return
				}
				before := s.Final
				offer(ctx, &s, b)
				if s.Final != before {
					st.Set(s)
				}
			}}, nil
		}, stream.Name("q4-winning-bids"))
	averages := stream.KeyedProcess(stream.KeyBy(winners, func(u q4Update) int64 { return u.category }),
		func(ctx *stream.KeyedContext[int64, Change[Q4Row]]) (stream.KeyedProcessFunc[int64, q4Update, Change[Q4Row]], error) {
			st, err := state.NewValue[int64, q4Avg](ctx.State(), "q4-category")
			if err != nil {
				return nil, err
			}
			return stream.KeyedProcessFuncs[int64, q4Update, Change[Q4Row]]{Element: func(ctx *stream.KeyedContext[int64, Change[Q4Row]], u q4Update) {
				a, _ := st.Get()
				if a.Count > 0 {
					ctx.Emit(Change[Q4Row]{Row: a.Last, Retract: true})
				}
				if u.hadPrev {
					a.Sum += u.final - u.prev
				} else {
					a.Sum += u.final
					a.Count++
				}
				a.Last = Q4Row{ID: u.category, Final: a.Sum / a.Count}
				st.Set(a)
				ctx.Emit(Change[Q4Row]{Row: a.Last})
			}}, nil
		}, stream.Name("q4-average"))
	toChanges(averages, res)
	return nil
}

func bidsOf(events stream.Stream[nexmark.Event], name string) stream.Stream[nexmark.Bid] {
	return stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[nexmark.Bid]) {
		if e.Type == nexmark.EventBid {
			out.Emit(e.Bid)
		}
	}, stream.Name(name))
}

// q5Top is the running maximum of one window: its highest count and the
// auctions that have it.
type q5Top struct {
	Max      int64
	Auctions []int64
}

// q5: per HOP(TABLE bid, DESCRIPTOR(dateTime), 2 s, 10 s) window, the
// auctions whose bid count is the window's highest (ties all reported):
// a count per auction and window, then a maximum per window, joined.
func buildQ5(events stream.Stream[nexmark.Event], res *results) error {
	bids := bidsOf(events, "q5-bids")
	counts := stream.Aggregate(
		stream.Window(stream.KeyBy(bids, func(b nexmark.Bid) int64 { return b.Auction }), window.Sliding(10*time.Second, 2*time.Second)),
		stream.Count[nexmark.Bid](), stream.Name("q5-count"))
	perWindow := stream.KeyBy(counts, func(c stream.Windowed[int64, int64]) int64 { return c.Window.Start })
	rows := stream.KeyedProcess(perWindow, func(ctx *stream.KeyedContext[int64, Q5Row]) (stream.KeyedProcessFunc[int64, stream.Windowed[int64, int64], Q5Row], error) {
		st, err := state.NewValue[int64, q5Top](ctx.State(), "q5-top")
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[int64, stream.Windowed[int64, int64], Q5Row]{
			Element: func(ctx *stream.KeyedContext[int64, Q5Row], c stream.Windowed[int64, int64]) {
				top, ok := st.Get()
				switch {
				case !ok || c.Value > top.Max:
					top = q5Top{Max: c.Value, Auctions: append(top.Auctions[:0], c.Key)}
				case c.Value == top.Max:
					top.Auctions = append(top.Auctions, c.Key)
				default:
					return
				}
				st.Set(top)
				// Every count of the window carries the window's last
				// timestamp; once the watermark passes it, all are in.
				ctx.RegisterEventTimer(c.Window.MaxTimestamp())
			},
			Timer: func(ctx *stream.KeyedContext[int64, Q5Row], _ stream.Timer) {
				top, _ := st.Get()
				for _, a := range top.Auctions {
					ctx.Emit(Q5Row{Auction: a, Num: top.Max})
				}
				st.Clear()
			},
		}, nil
	}, stream.Name("q5-hottest"))
	toAppend(rows, res)
	return nil
}

// q7Cand is a bid that may be the highest of a window. A bid at exactly a
// window boundary also competes, as a boundary candidate, for the window
// that ends there: the reference's join condition B.dateTime BETWEEN
// window_end - 10 s AND window_end includes both ends. A boundary candidate
// matches the maximum but does not raise it.
type q7Cand struct {
	bid      nexmark.Bid
	boundary bool
}

// q7Best holds, for part of a window, its highest price and the candidates
// that may match the window's final maximum.
type q7Best struct {
	Max      int64
	Set      bool
	Best     []nexmark.Bid // bids of the window at price Max
	Boundary []nexmark.Bid // boundary bids priced at least Max
}

func (a q7Best) add(c q7Cand) q7Best {
	if c.boundary {
		if !a.Set || c.bid.Price >= a.Max {
			a.Boundary = append(a.Boundary, c.bid)
		}
		return a
	}
	switch {
	case !a.Set || c.bid.Price > a.Max:
		a.Max, a.Set = c.bid.Price, true
		a.Best = append(a.Best[:0:0], c.bid)
		a.Boundary = pruneBelow(a.Boundary, a.Max)
	case c.bid.Price == a.Max:
		a.Best = append(a.Best, c.bid)
	}
	return a
}

func (a q7Best) merge(b q7Best) q7Best {
	for _, bid := range b.Best {
		a = a.add(q7Cand{bid: bid})
	}
	for _, bid := range b.Boundary {
		a = a.add(q7Cand{bid: bid, boundary: true})
	}
	return a
}

func pruneBelow(bids []nexmark.Bid, price int64) []nexmark.Bid {
	kept := bids[:0:0]
	for _, b := range bids {
		if b.Price >= price {
			kept = append(kept, b)
		}
	}
	return kept
}

const q7Window = 10 * time.Second

// q7: SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra (by
// position into auction, bidder, price, ...: see q7Row) FROM bid B JOIN (SELECT MAX(price) AS maxprice, window_end
// AS dateTime FROM TUMBLE(bid, 10 s) GROUP BY window_start, window_end) B1
// ON B.price = B1.maxprice WHERE B.dateTime BETWEEN B1.dateTime - 10 s AND
// B1.dateTime. Partial maxima are computed in parallel (bids spread by
// price) and merged per window.
func buildQ7(events stream.Stream[nexmark.Event], res *results) error {
	size := q7Window.Milliseconds()
	cands := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[q7Cand]) {
		if e.Type != nexmark.EventBid {
			return
		}
		out.Emit(q7Cand{bid: e.Bid})
		if e.Bid.DateTime%size == 0 {
			out.EmitAt(q7Cand{bid: e.Bid, boundary: true}, e.Bid.DateTime-1)
		}
	}, stream.Name("q7-bids"))
	partial := stream.Aggregate(
		stream.Window(stream.KeyBy(cands, func(c q7Cand) int64 { return c.bid.Price & 63 }), window.Tumbling(q7Window)),
		stream.Aggregator[q7Cand, q7Best, q7Best]{
			Init:   func() q7Best { return q7Best{} },
			Add:    q7Best.add,
			Merge:  q7Best.merge,
			Result: func(a q7Best) q7Best { return a },
		}, stream.Name("q7-partial-max"))
	rows := stream.KeyedProcess(stream.KeyBy(partial, func(p stream.Windowed[int64, q7Best]) int64 { return p.Window.Start }),
		func(ctx *stream.KeyedContext[int64, Q7Row]) (stream.KeyedProcessFunc[int64, stream.Windowed[int64, q7Best], Q7Row], error) {
			st, err := state.NewValue[int64, q7Best](ctx.State(), "q7-best")
			if err != nil {
				return nil, err
			}
			return stream.KeyedProcessFuncs[int64, stream.Windowed[int64, q7Best], Q7Row]{
				Element: func(ctx *stream.KeyedContext[int64, Q7Row], p stream.Windowed[int64, q7Best]) {
					a, _ := st.Get()
					st.Set(a.merge(p.Value))
					ctx.RegisterEventTimer(p.Window.MaxTimestamp())
				},
				Timer: func(ctx *stream.KeyedContext[int64, Q7Row], _ stream.Timer) {
					a, _ := st.Get()
					st.Clear()
					if !a.Set { // only boundary bids: the window has no maximum
						return
					}
					for _, list := range [2][]nexmark.Bid{a.Best, a.Boundary} {
						for _, b := range list {
							if b.Price == a.Max {
								ctx.Emit(q7Row(b))
							}
						}
					}
				},
			}, nil
		}, stream.Name("q7-max"))
	toAppend(rows, res)
	return nil
}

// q8In is a person or the seller of an auction, keyed by person id.
type q8In struct {
	id     int64
	name   string
	person bool
}

type q8Acc struct {
	Name   string
	Person bool
	Seller bool
}

// q8: people who registered and opened an auction in the same
// TUMBLE(10 s) window: persons grouped by (id, name, window) joined with
// auctions grouped by (seller, window) on id = seller and the window.
func buildQ8(events stream.Stream[nexmark.Event], res *results) error {
	in := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[q8In]) {
		switch e.Type {
		case nexmark.EventPerson:
			out.Emit(q8In{id: e.Person.ID, name: e.Person.Name, person: true})
		case nexmark.EventAuction:
			out.Emit(q8In{id: e.Auction.Seller})
		}
	}, stream.Name("q8-inputs"))
	joined := stream.Aggregate(
		stream.Window(stream.KeyBy(in, func(v q8In) int64 { return v.id }), window.Tumbling(10*time.Second)),
		stream.Aggregator[q8In, q8Acc, q8Acc]{
			Init: func() q8Acc { return q8Acc{} },
			Add: func(a q8Acc, v q8In) q8Acc {
				if v.person {
					a.Person, a.Name = true, v.name
				} else {
					a.Seller = true
				}
				return a
			},
			Merge: func(a, b q8Acc) q8Acc {
				if b.Person {
					a.Person, a.Name = true, b.Name
				}
				a.Seller = a.Seller || b.Seller
				return a
			},
			Result: func(a q8Acc) q8Acc { return a },
		}, stream.Name("q8-window-join"))
	rows := stream.FlatMap(joined, func(w stream.Windowed[int64, q8Acc], out *stream.Emitter[Q8Row]) {
		if w.Value.Person && w.Value.Seller {
			out.Emit(Q8Row{ID: w.Key, Name: w.Value.Name, STime: w.Window.Start})
		}
	}, stream.Name("q8-rows"))
	toAppend(rows, res)
	return nil
}

type q11Acc struct {
	Count       int64
	First, Last int64
}

const q11Gap = 10 * time.Second

// q11: SELECT bidder, count(*), SESSION_START, SESSION_END FROM bid GROUP BY
// bidder, SESSION(dateTime, 10 s). Flink merges two sessions when their
// bids are at most the gap apart (TimeWindow.intersects includes the
// boundary); Sluice's session windows merge when they are strictly closer,
// so the assigner gets a gap 1 ms longer and the end is computed from the
// last bid.
func buildQ11(events stream.Stream[nexmark.Event], res *results) error {
	bids := bidsOf(events, "q11-bids")
	sessions := stream.Aggregate(
		stream.Window(stream.KeyBy(bids, func(b nexmark.Bid) int64 { return b.Bidder }), window.Session(q11Gap+time.Millisecond)),
		stream.Aggregator[nexmark.Bid, q11Acc, q11Acc]{
			Init: func() q11Acc { return q11Acc{} },
			Add: func(a q11Acc, b nexmark.Bid) q11Acc {
				if a.Count == 0 || b.DateTime < a.First {
					a.First = b.DateTime
				}
				if a.Count == 0 || b.DateTime > a.Last {
					a.Last = b.DateTime
				}
				a.Count++
				return a
			},
			Merge: func(a, b q11Acc) q11Acc {
				switch {
				case a.Count == 0:
					return b
				case b.Count == 0:
					return a
				}
				return q11Acc{Count: a.Count + b.Count, First: min(a.First, b.First), Last: max(a.Last, b.Last)}
			},
			Result: func(a q11Acc) q11Acc { return a },
		}, stream.Name("q11-sessions"))
	gap := q11Gap.Milliseconds()
	rows := stream.Map(sessions, func(w stream.Windowed[int64, q11Acc]) Q11Row {
		return Q11Row{Bidder: w.Key, BidCount: w.Value.Count, StartTime: w.Value.First, EndTime: w.Value.Last + gap}
	}, stream.Name("q11-rows"))
	toAppend(rows, res)
	return nil
}
