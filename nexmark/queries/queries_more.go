package queries

import (
	"cmp"
	"strings"
	"time"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/stream"
	"github.com/sluicehq/sluice/window"
)

// q14: SELECT auction, bidder, 0.908 * price, CASE hour of dateTime
// (8-18 'dayTime', <= 6 or >= 20 'nightTime', else 'otherTime'), dateTime,
// extra, count_char(extra, 'c') FROM bid WHERE 0.908 * price > 1,000,000 AND
// 0.908 * price < 50,000,000. Hours are UTC.
func buildQ14(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q14Row]) {
		if e.Type != nexmark.EventBid {
			return
		}
		b := &e.Bid
		milli := b.Price * 908
		if milli <= 1_000_000_000 || milli >= 50_000_000_000 {
			return
		}
		out.Emit(Q14Row{b.Auction, b.Bidder, milli, bidTimeType(b.DateTime), b.DateTime, b.Extra, countByte(b.Extra, 'c')})
	}, stream.Name("q14"))
	toAppend(rows, res)
	return nil
}

func bidTimeType(ms int64) string {
	h := minuteOf(ms) / 60
	switch {
	case h >= 8 && h <= 18:
		return "dayTime"
	case h <= 6 || h >= 20:
		return "nightTime"
	}
	return "otherTime"
}

// countByte is the reference's count_char UDF: the number of bytes of s
// equal to c.
func countByte(s string, c byte) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			n++
		}
	}
	return n
}

// q21: SELECT auction, bidder, price, channel, CASE lower(channel) WHEN
// 'apple' THEN '0' WHEN 'google' THEN '1' WHEN 'facebook' THEN '2' WHEN
// 'baidu' THEN '3' ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)
// END FROM bid WHERE that extraction is not null or the channel is one of
// the four.
func buildQ21(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q21Row]) {
		if e.Type != nexmark.EventBid {
			return
		}
		b := &e.Bid
		id, ok := hotChannelID(b.Channel)
		if !ok {
			if id, ok = extractChannelID(b.URL); !ok {
				return
			}
		}
		out.Emit(Q21Row{b.Auction, b.Bidder, b.Price, b.Channel, id})
	}, stream.Name("q21"))
	toAppend(rows, res)
	return nil
}

// hotChannelID maps the four hot channels, compared case-insensitively in
// ASCII like SQL lower(), to their ids.
func hotChannelID(channel string) (string, bool) {
	for i, name := range [4]string{"apple", "google", "facebook", "baidu"} {
		if asciiEqualFold(channel, name) {
			return [4]string{"0", "1", "2", "3"}[i], true
		}
	}
	return "", false
}

func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// extractChannelID is REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2):
// the value of the first channel_id parameter that starts the URL or
// follows '&'.
func extractChannelID(url string) (string, bool) {
	const param = "channel_id="
	for i := 0; i+len(param) <= len(url); i++ {
		if (i == 0 || url[i-1] == '&') && url[i:i+len(param)] == param {
			v := url[i+len(param):]
			for j := 0; j < len(v); j++ {
				if v[j] == '&' {
					return v[:j], true
				}
			}
			return v, true
		}
	}
	return "", false
}

// q22: SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3),
// SPLIT_INDEX(url, '/', 4), SPLIT_INDEX(url, '/', 5) FROM bid.
func buildQ22(events stream.Stream[nexmark.Event], res *results) error {
	rows := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[Q22Row]) {
		if e.Type != nexmark.EventBid {
			return
		}
		b := &e.Bid
		out.Emit(Q22Row{b.Auction, b.Bidder, b.Price, b.Channel, splitIndex(b.URL, '/', 3), splitIndex(b.URL, '/', 4), splitIndex(b.URL, '/', 5)})
	}, stream.Name("q22"))
	toAppend(rows, res)
	return nil
}

// splitIndex is SPLIT_INDEX(s, sep, index): the index-th (from 0) field of
// s split at every sep, empty fields included, or NULL past the last.
func splitIndex(s string, sep byte, index int) NullString {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == sep {
			if index == 0 {
				return NullString{S: s[start:i], Valid: true}
			}
			index--
			start = i + 1
		}
	}
	return NullString{}
}

// flushEvery is the mini-batch interval of updating queries, in event-time
// milliseconds: a key's changed result is emitted when the watermark passes
// the end of the second of event time in which it changed (and at the end
// of the input), like Flink's mini-batch aggregation.
const flushEvery = 1000

func flushTime(ts int64) int64 {
	m := ts % flushEvery
	if m < 0 {
		m += flushEvery
	}
	return ts - m + flushEvery - 1
}

// aggState is the per-key state of changelogAggregate.
type aggState[S any, R Row] struct {
	Acc   S
	Last  R // the row emitted last, retracted on the next flush
	Has   bool
	Dirty bool
	Timer int64
}

// changelogAggregate folds every record of a key into an accumulator (add
// reports whether the result may have changed) and emits the key's result
// row as a changelog, mini-batched by flushTime: on each flush the previous
// row is retracted and the current one inserted.
func changelogAggregate[K comparable, T any, S any, R Row](ks stream.KeyedStream[K, T], name string,
	add func(acc *S, v T) bool, result func(key K, acc *S) R) stream.Stream[Change[R]] {
	return changelogAggregateWith(ks, name,
		func(*stream.KeyedContext[K, Change[R]]) (func(acc *S, v T) bool, error) { return add, nil }, result)
}

// changelogAggregateWith is changelogAggregate whose add function is made
// per subtask by newAdd, which may open more state of the key (such as
// the distinct sets of q15 and q16).
func changelogAggregateWith[K comparable, T any, S any, R Row](ks stream.KeyedStream[K, T], name string,
	newAdd func(ctx *stream.KeyedContext[K, Change[R]]) (func(acc *S, v T) bool, error),
	result func(key K, acc *S) R) stream.Stream[Change[R]] {
	return stream.KeyedProcess(ks, func(ctx *stream.KeyedContext[K, Change[R]]) (stream.KeyedProcessFunc[K, T, Change[R]], error) {
		st, err := state.NewValue[K, *aggState[S, R]](ctx.State(), name)
		if err != nil {
			return nil, err
		}
		add, err := newAdd(ctx)
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[K, T, Change[R]]{
			Element: func(ctx *stream.KeyedContext[K, Change[R]], v T) {
				p, ok := st.Get()
				if !ok {
					p = &aggState[S, R]{Timer: -1}
				}
				if !add(&p.Acc, v) && ok {
					return
				}
				p.Dirty = true
				if t := flushTime(ctx.Timestamp()); t != p.Timer {
					ctx.RegisterEventTimer(t)
					p.Timer = t
				}
				st.Set(p)
			},
			Timer: func(ctx *stream.KeyedContext[K, Change[R]], _ stream.Timer) {
				p, ok := st.Get()
				if !ok || !p.Dirty {
					return
				}
				if p.Has {
					ctx.Emit(Change[R]{Row: p.Last, Retract: true})
				}
				p.Last, p.Has = result(ctx.Key(), &p.Acc), true
				ctx.Emit(Change[R]{Row: p.Last})
				p.Dirty = false
				st.Set(p)
			},
		}, nil
	}, stream.Name(name))
}

// statsAcc accumulates BidStats: counts per price rank, and the counts
// of the distinct sets, which live in ID set state of their own (see
// distinctSets), so that a bid does not make a checkpoint re-encode every
// set of its key.
type statsAcc struct {
	Bids      [4]int64
	NBidders  [4]int64
	NAuctions [4]int64
	// Sets is where the key's distinct sets added last, a cache that
	// lets a bid skip looking up the key and its chunks in the ID set
	// state (encoded as nothing).
	Sets state.IDCursor
}

// priceRank is 1 below 10,000, 2 below 1,000,000, else 3.
func priceRank(price int64) int {
	switch {
	case price < 10_000:
		return 1
	case price < 1_000_000:
		return 2
	}
	return 3
}

// distinctSets holds the distinct bidders and auctions of the statsAcc of
// the current key, in ID set state (state/idset.go): per id the price
// ranks it was seen at (tag r-1 for rank r); an id is in the total set
// when it has any. Nexmark's ids are dense and the recent ones are the
// busy ones, so the sets are chunks of bitmaps: a bid costs two lookups
// in small maps and bit tests, and a checkpoint writes the chunks that
// gained an id.
type distinctSets[K comparable] struct {
	s *state.IDSet[K] // set 0 bidders, set 1 auctions
}

// openDistinctSets opens the ID set state name.
func openDistinctSets[K comparable](c *state.Keyed[K], name string) (distinctSets[K], error) {
	s, err := state.NewIDSet(c, name)
	return distinctSets[K]{s: s}, err
}

func (d distinctSets[K]) add(a *statsAcc, b *nexmark.Bid) {
	r := priceRank(b.Price)
	a.Bids[0]++
	a.Bids[r]++
	bit := uint8(1) << (r - 1)
	if before := d.s.AddAt(&a.Sets, 0, b.Bidder, bit); before&bit == 0 {
		a.NBidders[r]++
		a.NBidders[0] += b2i(before == 0)
	}
	if before := d.s.AddAt(&a.Sets, 1, b.Auction, bit); before&bit == 0 {
		a.NAuctions[r]++
		a.NAuctions[0] += b2i(before == 0)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (a *statsAcc) stats() BidStats {
	var s BidStats
	for i := range 4 {
		s.Bids[i] = a.Bids[i]
		s.Bidders[i] = a.NBidders[i]
		s.Auctions[i] = a.NAuctions[i]
	}
	return s
}

// q15: per DATE_FORMAT(dateTime, 'yyyy-MM-dd') (UTC), count(*) and
// count(DISTINCT bidder), count(DISTINCT auction), each in total and
// FILTERed to the three price ranks.
func buildQ15(events stream.Stream[nexmark.Event], res *results) error {
	toChanges(q15Changes(events), res)
	return nil
}

// q15Changes is the changelog of q15's rows.
func q15Changes(events stream.Stream[nexmark.Event]) stream.Stream[Change[Q15Row]] {
	bids := bidsOf(events, "q15-bids")
	rows := changelogAggregateWith(stream.KeyBy(bids, func(b nexmark.Bid) int64 { return dayOf(b.DateTime) }), "q15-report",
		func(ctx *stream.KeyedContext[int64, Change[Q15Row]]) (func(*statsAcc, nexmark.Bid) bool, error) {
			sets, err := openDistinctSets(ctx.State(), "q15-distinct")
			return func(a *statsAcc, b nexmark.Bid) bool { sets.add(a, &b); return true }, err
		},
		func(day int64, a *statsAcc) Q15Row {
			return Q15Row{Day: day, BidStats: a.stats()}
		})
	return rows
}

// channelDay is the q16 grouping key.
type channelDay struct {
	Channel string
	Day     int64
}

// KeyHash implements state.KeyHasher.
func (k channelDay) KeyHash() uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k.Channel); i++ {
		h = (h ^ uint64(k.Channel[i])) * 1099511628211
	}
	return mixKey(h ^ uint64(k.Day)*0x9e3779b97f4a7c15)
}

type q16Acc struct {
	Stats  statsAcc
	Minute int64 // latest minute of the day with a bid, once Set
	Set    bool
}

// q16: per channel and day, the q15 statistics plus
// max(DATE_FORMAT(dateTime, 'HH:mm')).
func buildQ16(events stream.Stream[nexmark.Event], res *results) error {
	toChanges(q16Changes(events), res)
	return nil
}

// q16Changes is the changelog of q16's rows.
func q16Changes(events stream.Stream[nexmark.Event]) stream.Stream[Change[Q16Row]] {
	bids := bidsOf(events, "q16-bids")
	rows := changelogAggregateWith(stream.KeyBy(bids, func(b nexmark.Bid) channelDay { return channelDay{b.Channel, dayOf(b.DateTime)} }), "q16-report",
		func(ctx *stream.KeyedContext[channelDay, Change[Q16Row]]) (func(*q16Acc, nexmark.Bid) bool, error) {
			sets, err := openDistinctSets(ctx.State(), "q16-distinct")
			return func(a *q16Acc, b nexmark.Bid) bool {
				sets.add(&a.Stats, &b)
				if m := minuteOf(b.DateTime); !a.Set || m > a.Minute {
					a.Minute, a.Set = m, true
				}
				return true
			}, err
		},
		func(k channelDay, a *q16Acc) Q16Row {
			return Q16Row{Channel: k.Channel, Day: k.Day, Minute: a.Minute, BidStats: a.Stats.stats()}
		})
	return rows
}

// auctionDay is the q17 grouping key.
type auctionDay struct {
	Auction, Day int64
}

// KeyHash implements state.KeyHasher.
func (k auctionDay) KeyHash() uint64 {
	return mixKey(uint64(k.Auction)*0x9e3779b97f4a7c15 ^ uint64(k.Day))
}

func mixKey(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

type q17Acc struct {
	Bids       [4]int64
	MinP, MaxP int64
	Sum        int64
}

// q17: per auction and day, count(*) in total and per price rank,
// min(price), max(price), avg(price) (integer) and sum(price).
func buildQ17(events stream.Stream[nexmark.Event], res *results) error {
	toChanges(q17Changes(events), res)
	return nil
}

// q17Changes is the changelog of q17's rows.
func q17Changes(events stream.Stream[nexmark.Event]) stream.Stream[Change[Q17Row]] {
	bids := bidsOf(events, "q17-bids")
	rows := changelogAggregate(stream.KeyBy(bids, func(b nexmark.Bid) auctionDay { return auctionDay{b.Auction, dayOf(b.DateTime)} }), "q17-report",
		func(a *q17Acc, b nexmark.Bid) bool {
			if a.Bids[0] == 0 || b.Price < a.MinP {
				a.MinP = b.Price
			}
			if a.Bids[0] == 0 || b.Price > a.MaxP {
				a.MaxP = b.Price
			}
			a.Bids[0]++
			a.Bids[priceRank(b.Price)]++
			a.Sum += b.Price
			return true
		},
		func(k auctionDay, a *q17Acc) Q17Row {
			return Q17Row{k.Auction, k.Day, a.Bids[0], a.Bids[1], a.Bids[2], a.Bids[3], a.MinP, a.MaxP, a.Sum / a.Bids[0], a.Sum}
		})
	return rows
}

// compareBidRows orders bids as the SQL layer orders rows of the bid
// table on a tie of ROW_NUMBER's ORDER BY keys: column by column in the
// table's order (auction, bidder, price, channel, url, dateTime, extra),
// numbers numerically and strings by their bytes, as row.Compare does.
// It returns -1, 0 or +1; the smaller bid ranks first.
func compareBidRows(a, b *nexmark.Bid) int {
	if c := cmp.Compare(a.Auction, b.Auction); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Bidder, b.Bidder); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Price, b.Price); c != 0 {
		return c
	}
	if c := strings.Compare(a.Channel, b.Channel); c != 0 {
		return c
	}
	if c := strings.Compare(a.URL, b.URL); c != 0 {
		return c
	}
	if c := cmp.Compare(a.DateTime, b.DateTime); c != 0 {
		return c
	}
	return strings.Compare(a.Extra, b.Extra)
}

// laterBid reports whether a ranks before b in q18's ORDER BY dateTime
// DESC: the later dateTime, and among equal dateTimes the smaller row
// (compareBidRows), the SQL layer's documented tie rule, so the winner
// depends neither on arrival order nor on parallelism. (Flink keeps the
// later-arriving of equal rows.) Identical bids are interchangeable: the
// one kept stays.
func laterBid(a, b *nexmark.Bid) bool {
	if a.DateTime != b.DateTime {
		return a.DateTime > b.DateTime
	}
	return compareBidRows(a, b) < 0
}

// q18Entry is the latest bid of one (bidder, auction) and whether a row
// was emitted for it. While the entry is clean the emitted row is Last
// itself; the first change after a flush keeps the emitted row in
// Emitted (a copy, never written through) until the next flush retracts
// it. So an entry is 96 bytes instead of two whole bids (168), and the
// copy exists only for entries changed since their last flush.
type q18Entry struct {
	Last    nexmark.Bid
	Emitted *nexmark.Bid // set while Dirty && Has
	Has     bool
	Dirty   bool
}

// q18Bidder lists the auctions of a q18 key whose latest bid changed since
// the last flush.
type q18Bidder struct {
	Dirty []int64
	Timer int64
}

// q18: SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder,
// auction ORDER BY dateTime DESC) AS rn FROM bid) WHERE rn <= 1: the latest
// bid per bidder and auction. Keyed by bidder, with one map entry per
// auction, so a bidder's changes flush together on one timer instead of one
// timer per (bidder, auction). (Spreading the hot bidder over several keys
// measured slower.)
func buildQ18(events stream.Stream[nexmark.Event], res *results) error {
	bids := bidsOf(events, "q18-bids")
	keyed := stream.KeyBy(bids, func(b nexmark.Bid) int64 { return b.Bidder })
	rows := stream.KeyedProcess(keyed,
		func(ctx *stream.KeyedContext[int64, Change[Q18Row]]) (stream.KeyedProcessFunc[int64, nexmark.Bid, Change[Q18Row]], error) {
			entries, err := state.NewMap[int64, int64, q18Entry](ctx.State(), "q18-latest")
			if err != nil {
				return nil, err
			}
			meta, err := state.NewValue[int64, q18Bidder](ctx.State(), "q18-dirty")
			if err != nil {
				return nil, err
			}
			return stream.KeyedProcessFuncs[int64, nexmark.Bid, Change[Q18Row]]{
				Element: func(ctx *stream.KeyedContext[int64, Change[Q18Row]], b nexmark.Bid) {
					e, ok := entries.Get(b.Auction)
					if ok && !laterBid(&b, &e.Last) {
						return
					}
					if !e.Dirty && e.Has {
						emitted := e.Last
						e.Emitted = &emitted
					}
					e.Last = b
					if !e.Dirty {
						e.Dirty = true
						m, ok := meta.Get()
						if !ok {
							m.Timer = -1
						}
						m.Dirty = append(m.Dirty, b.Auction)
						if t := flushTime(ctx.Timestamp()); t != m.Timer {
							ctx.RegisterEventTimer(t)
							m.Timer = t
						}
						meta.Set(m)
					}
					entries.Put(b.Auction, e)
				},
				Timer: func(ctx *stream.KeyedContext[int64, Change[Q18Row]], _ stream.Timer) {
					m, _ := meta.Get()
					for _, a := range m.Dirty {
						e, _ := entries.Get(a)
						if e.Has {
							ctx.Emit(Change[Q18Row]{Row: Q18Row(*e.Emitted), Retract: true})
						}
						ctx.Emit(Change[Q18Row]{Row: Q18Row(e.Last)})
						e.Emitted, e.Has, e.Dirty = nil, true, false
						entries.Put(a, e)
					}
					m.Dirty = m.Dirty[:0]
					meta.Set(m)
				},
			}, nil
		}, stream.Name("q18-dedup"))
	toChanges(rows, res)
	return nil
}

// higherBid reports whether a ranks before b in q19's ORDER BY price
// DESC: the higher price, and among equal prices the smaller row
// (compareBidRows: auction, bidder, price, channel, url, dateTime, extra
// ascending), the SQL layer's documented tie rule, so ranks depend
// neither on arrival order nor on parallelism. Identical bids keep
// arrival order.
func higherBid(a, b *nexmark.Bid) bool {
	if a.Price != b.Price {
		return a.Price > b.Price
	}
	return compareBidRows(a, b) < 0
}

const topN = 10

// q19State is an auction's top bids, best first, and, while the key is
// dirty, the list last emitted. A clean key's emitted list is its top
// list, so it is not kept (nor encoded: a checkpoint writes a changed
// clean key's bids once, not twice); the first change after a flush
// keeps the list as Emitted and changes a copy (copy on write).
type q19State struct {
	Top     []nexmark.Bid
	Emitted []nexmark.Bid // while Dirty
	Dirty   bool
	Timer   int64
}

// offer inserts b if it ranks among the best topN and reports whether the
// list changed; the first change of a clean key keeps its list as the
// emitted one.
func (s *q19State) offer(b nexmark.Bid) bool {
	top := s.Top
	if len(top) == topN && !higherBid(&b, &top[topN-1]) {
		return false
	}
	if !s.Dirty {
		s.Emitted = top
		top = append(make([]nexmark.Bid, 0, topN), top...)
	}
	i := len(top)
	for i > 0 && higherBid(&b, &top[i-1]) {
		i--
	}
	if len(top) < topN {
		top = append(top, nexmark.Bid{})
	}
	copy(top[i+1:], top[i:])
	top[i] = b
	s.Top = top
	return true
}

// q19: SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY auction
// ORDER BY price DESC) AS rank_number FROM bid) WHERE rank_number <= 10.
// Each flush of a changed auction retracts its previously emitted ranked
// rows and inserts the current ones.
func buildQ19(events stream.Stream[nexmark.Event], res *results) error {
	toChanges(q19Changes(events), res)
	return nil
}

// q19Changes is the changelog of q19's rows.
func q19Changes(events stream.Stream[nexmark.Event]) stream.Stream[Change[Q19Row]] {
	bids := bidsOf(events, "q19-bids")
	rows := stream.KeyedProcess(stream.KeyBy(bids, func(b nexmark.Bid) int64 { return b.Auction }),
		func(ctx *stream.KeyedContext[int64, Change[Q19Row]]) (stream.KeyedProcessFunc[int64, nexmark.Bid, Change[Q19Row]], error) {
			st, err := state.NewValue[int64, *q19State](ctx.State(), "q19-top10")
			if err != nil {
				return nil, err
			}
			return stream.KeyedProcessFuncs[int64, nexmark.Bid, Change[Q19Row]]{
				Element: func(ctx *stream.KeyedContext[int64, Change[Q19Row]], b nexmark.Bid) {
					s, ok := st.Get()
					if !ok {
						s = &q19State{Timer: -1}
					}
					if !s.offer(b) {
						return
					}
					s.Dirty = true
					if t := flushTime(ctx.Timestamp()); t != s.Timer {
						ctx.RegisterEventTimer(t)
						s.Timer = t
					}
					st.Set(s)
				},
				Timer: func(ctx *stream.KeyedContext[int64, Change[Q19Row]], _ stream.Timer) {
					s, ok := st.Get()
					if !ok || !s.Dirty {
						return
					}
					for i, b := range s.Emitted {
						ctx.Emit(Change[Q19Row]{Row: Q19Row{Bid: b, RankNumber: int64(i + 1)}, Retract: true})
					}
					for i, b := range s.Top {
						ctx.Emit(Change[Q19Row]{Row: Q19Row{Bid: b, RankNumber: int64(i + 1)}})
					}
					s.Emitted, s.Dirty = nil, false
					st.Set(s)
				},
			}, nil
		}, stream.Name("q19-top10"))
	return rows
}

// q20In is an auction or a bid, keyed by auction id.
type q20In struct {
	isAuction bool
	auction   nexmark.Auction
	bid       nexmark.Bid
}

type q20State struct {
	Known   bool // the auction arrived (auction ids are unique)
	Match   bool // ... and is of category 10
	Auction nexmark.Auction
	Pending []nexmark.Bid // bids that arrived before their auction
}

// q20: SELECT B.*, A.* FROM bid B JOIN auction A ON B.auction = A.id WHERE
// A.category = 10. An unbounded join; since auction ids are a primary key,
// bids of an auction known not to match are dropped instead of kept.
func buildQ20(events stream.Stream[nexmark.Event], res *results) error {
	in := stream.FlatMap(events, func(e nexmark.Event, out *stream.Emitter[q20In]) {
		switch e.Type {
		case nexmark.EventAuction:
			out.Emit(q20In{isAuction: true, auction: e.Auction})
		case nexmark.EventBid:
			out.Emit(q20In{bid: e.Bid})
		}
	}, stream.Name("q20-inputs"))
	keyed := stream.KeyBy(in, func(v q20In) int64 {
		if v.isAuction {
			return v.auction.ID
		}
		return v.bid.Auction
	})
	rows := stream.KeyedProcess(keyed, func(ctx *stream.KeyedContext[int64, Q20Row]) (stream.KeyedProcessFunc[int64, q20In, Q20Row], error) {
		st, err := state.NewValue[int64, *q20State](ctx.State(), "q20-auction")
		if err != nil {
			return nil, err
		}
		return stream.KeyedProcessFuncs[int64, q20In, Q20Row]{Element: func(ctx *stream.KeyedContext[int64, Q20Row], v q20In) {
			s, ok := st.Get()
			if !ok {
				s = &q20State{}
			}
			if v.isAuction {
				s.Known, s.Match = true, v.auction.Category == 10
				if s.Match {
					s.Auction = v.auction
					for _, b := range s.Pending {
						ctx.Emit(Q20Row{Bid: b, Auction: s.Auction})
					}
				}
				s.Pending = nil
				st.Set(s)
				return
			}
			switch {
			case s.Match:
				ctx.Emit(Q20Row{Bid: v.bid, Auction: s.Auction})
			case !s.Known:
				s.Pending = append(s.Pending, v.bid)
				st.Set(s)
			}
		}}, nil
	}, stream.Name("q20-join"))
	toAppend(rows, res)
	return nil
}

// q12: SELECT bidder, count(*), window_start, window_end FROM
// TUMBLE(bid, PROCTIME(), 10 s) GROUP BY bidder, window. The windows follow
// the wall clock, so the rows (not their total count) depend on timing: its
// checksum differs from run to run.
func buildQ12(events stream.Stream[nexmark.Event], res *results) error {
	bids := bidsOf(events, "q12-bids")
	counts := stream.Aggregate(
		stream.Window(stream.KeyBy(bids, func(b nexmark.Bid) int64 { return b.Bidder }), window.TumblingProcessingTime(10*time.Second)),
		stream.Count[nexmark.Bid](), stream.Name("q12-count"))
	rows := stream.Map(counts, func(w stream.Windowed[int64, int64]) Q12Row {
		return Q12Row{Bidder: w.Key, BidCount: w.Value, StartTime: w.Window.Start, EndTime: w.Window.End}
	}, stream.Name("q12-rows"))
	toAppend(rows, res)
	return nil
}
