package nexmark

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// Read-only word lists of the reference PersonGenerator. Few states and
// cities keep joins such as q3 non-empty on small runs.
var (
	usStates   = [...]string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = [...]string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = [...]string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = [...]string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
)

// Generator produces the events with numbers first, first+step,
// first+2*step, ... below end, in order (step 1 unless made by
// NewStridedGenerator). It is not safe for concurrent use; run one generator
// per split.
type Generator struct {
	cfg       Config
	next, end int64
	step      int64

	// One string arena per event type: a job that keeps bids in its
	// state (q18, q19: most of them) then keeps only the chunks of bid
	// strings alive, and the chunks of the larger auction and person
	// strings, garbage once those events are processed, are reused
	// instead of staying resident beside them (a third of the arena).
	people, auctions, bids stringArena

	names    [len(firstNames) * len(lastNames)]string
	hotURLs  [len(hotChannels)]string
	channels []channelEntry // lazily filled, NumChannels entries
	pairs    *exactStringPairs
}

type channelEntry struct {
	name, url string
}

// NewGenerator returns a generator of the events numbered first (inclusive)
// to end (exclusive) under cfg. Event n is the same whichever generator
// produces it.
func NewGenerator(cfg Config, first, end int64) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if first < 0 || end < first {
		return nil, fmt.Errorf("nexmark: event range [%d, %d) is invalid", first, end)
	}
	g := &Generator{cfg: cfg, next: first, end: end, step: 1, pairs: newExactStringPairs()}
	for i, f := range firstNames {
		for j, l := range lastNames {
			g.names[i*len(lastNames)+j] = f + " " + l
		}
	}
	for i := range g.hotURLs {
		r := newRNG(cfg.Seed, domainHotURL, int64(i))
		g.hotURLs[i] = baseURL(&r)
	}
	return g, nil
}

// NewStridedGenerator returns a generator of split i of n interleaved
// splits of the events 0..events-1: the events numbered i, i+n, i+2n, ...
// Unlike contiguous ranges (SplitRange), interleaved splits advance through
// event time together, so their watermarks stay aligned and windows close as
// early as in an unsplit run. Together the n splits yield exactly the events
// of the unsplit run.
func NewStridedGenerator(cfg Config, events int64, n, i int) (*Generator, error) {
	if n <= 0 || i < 0 || i >= n {
		return nil, fmt.Errorf("nexmark: split %d of %d", i, n)
	}
	g, err := NewGenerator(cfg, int64(i), max(events, int64(i)))
	if err != nil {
		return nil, err
	}
	g.step = int64(n)
	return g, nil
}

// SetPosition makes the next call to Next produce event number n, a value
// Position returned earlier (for a strided generator, one of its own event
// numbers).
func (g *Generator) SetPosition(n int64) error {
	if n < 0 || n%g.step != g.next%g.step {
		return fmt.Errorf("nexmark: event %d is not in this split (stride %d)", n, g.step)
	}
	g.next = n
	return nil
}

// Config returns the generator's parameters.
func (g *Generator) Config() Config { return g.cfg }

// Position returns the number of the event the next call to Next produces
// (End or beyond once exhausted). A generator restarted with
// NewGenerator(cfg, Position(), End()) or repositioned with SetPosition continues
// the same sequence.
func (g *Generator) Position() int64 { return g.next }

// End returns the end (exclusive) of the generator's range.
func (g *Generator) End() int64 { return g.end }

// Next fills e with the next event and reports true, or reports false when
// the range is exhausted. Every field of e is overwritten.
func (g *Generator) Next(e *Event) bool {
	if g.next >= g.end {
		return false
	}
	g.generate(g.next, e)
	g.next += g.step
	return true
}

// EventAt fills e with event number n, independently of the generator's
// position.
func (g *Generator) EventAt(n int64, e *Event) {
	g.generate(n, e)
}

func (g *Generator) generate(n int64, e *Event) {
	cfg := &g.cfg
	id := cfg.adjustedEventNumber(n)
	ts := cfg.Timestamp(id)
	r := newRNG(cfg.Seed, domainEvent, id)
	switch cfg.KindOf(id) {
	case EventPerson:
		e.Type = EventPerson
		g.person(id, ts, &r, &e.Person)
		e.Auction = Auction{}
		e.Bid = Bid{}
	case EventAuction:
		e.Type = EventAuction
		g.auction(id, ts, &r, &e.Auction)
		e.Person = Person{}
		e.Bid = Bid{}
	default:
		e.Type = EventBid
		g.bid(id, ts, &r, &e.Bid)
		e.Person = Person{}
		e.Auction = Auction{}
	}
}

// person follows PersonGenerator.nextPerson.
func (g *Generator) person(id, ts int64, r *rng, p *Person) {
	cfg := &g.cfg
	p.ID = cfg.lastBase0PersonID(id) + FirstPersonID
	first := r.intn(len(firstNames))
	last := r.intn(len(lastNames))
	p.Name = g.names[first*len(lastNames)+last]

	// e-mail: a random string of up to 6, "@", up to 4, ".com".
	b := g.people.reserve(6 + 1 + 4 + 4)
	b = appendTrimmedString(b, r, 7, ' ')
	b = append(b, '@')
	b = appendTrimmedString(b, r, 5, ' ')
	b = append(b, ".com"...)
	p.EmailAddress = g.people.commit(b)

	// credit card: four groups of four digits.
	b = g.people.reserve(19)
	for i := 0; i < 4; i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		v := r.intn(10000)
		b = append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	p.CreditCard = g.people.commit(b)

	p.City = usCities[r.intn(len(usCities))]
	p.State = usStates[r.intn(len(usStates))]
	p.DateTime = ts
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.extra(&g.people, r, size, cfg.AvgPersonByteSize)
}

// auction follows AuctionGenerator.nextAuction (without the extended-bid
// mode).
func (g *Generator) auction(id, ts int64, r *rng, a *Auction) {
	cfg := &g.cfg
	a.ID = cfg.lastBase0AuctionID(id) + FirstAuctionID
	var seller int64
	if r.intn(cfg.HotSellersRatio) > 0 {
		seller = (cfg.lastBase0PersonID(id) / hotSellerBatch) * hotSellerBatch
	} else {
		seller = g.randomBase0PersonID(id, r)
	}
	a.Seller = seller + FirstPersonID
	a.Category = FirstCategoryID + int64(r.intn(NumCategories))
	a.InitialBid = nextPrice(r)
	a.DateTime = ts
	a.Expires = ts + g.auctionLengthMs(id, ts, r)

	b := g.auctions.reserve(19)
	b = appendTrimmedString(b, r, 20, ' ')
	a.ItemName = g.auctions.commit(b)
	b = g.auctions.reserve(99)
	b = appendTrimmedString(b, r, 100, ' ')
	a.Description = g.auctions.commit(b)

	a.Reserve = a.InitialBid + nextPrice(r)
	size := 8 + len(a.ItemName) + len(a.Description) + 8 + 8 + 8 + 8 + 8
	a.Extra = g.extra(&g.auctions, r, size, cfg.AvgAuctionByteSize)
}

// bid follows BidGenerator.nextBid.
func (g *Generator) bid(id, ts int64, r *rng, b *Bid) {
	cfg := &g.cfg
	var auction int64
	if r.intn(cfg.HotAuctionRatio) > 0 {
		auction = (cfg.lastBase0AuctionID(id) / hotAuctionBatch) * hotAuctionBatch
	} else {
		auction = g.randomBase0AuctionID(id, r)
	}
	b.Auction = auction + FirstAuctionID

	var bidder int64
	if r.intn(cfg.HotBiddersRatio) > 0 {
		// The second person of the batch, so hot bidders and hot sellers
		// differ.
		bidder = (cfg.lastBase0PersonID(id)/hotBidderBatch)*hotBidderBatch + 1
	} else {
		bidder = g.randomBase0PersonID(id, r)
	}
	b.Bidder = bidder + FirstPersonID

	b.Price = nextPrice(r)
	if r.intn(hotChannelsRatio) > 0 {
		i := r.intn(len(hotChannels))
		b.Channel, b.URL = hotChannels[i], g.hotURLs[i]
	} else {
		c := g.channel(r.intn(NumChannels))
		b.Channel, b.URL = c.name, c.url
	}
	b.DateTime = ts
	b.Extra = g.extra(&g.bids, r, 8+8+8+8, cfg.AvgBidByteSize)
}

// randomBase0PersonID picks one of the active people or a few not yet
// created (PersonGenerator.nextBase0PersonId).
func (g *Generator) randomBase0PersonID(id int64, r *rng) int64 {
	numPeople := g.cfg.lastBase0PersonID(id) + 1
	active := min(numPeople, int64(g.cfg.NumActivePeople))
	return numPeople - active + r.int64n(active+personIDLead)
}

// randomBase0AuctionID picks one of the auctions likely in flight or a few
// not yet created (AuctionGenerator.nextBase0AuctionId).
func (g *Generator) randomBase0AuctionID(id int64, r *rng) int64 {
	maxAuction := g.cfg.lastBase0AuctionID(id)
	minAuction := max(maxAuction-int64(g.cfg.NumInFlightAuctions), 0)
	return minAuction + r.int64n(maxAuction-minAuction+1+auctionIDLead)
}

// auctionLengthMs draws an auction length averaging the time until
// NumInFlightAuctions more auctions exist
// (AuctionGenerator.nextAuctionLengthMs).
func (g *Generator) auctionLengthMs(id, ts int64, r *rng) int64 {
	cfg := &g.cfg
	eventsForAuctions := int64(cfg.NumInFlightAuctions) * cfg.totalProportion() / int64(cfg.AuctionProportion)
	horizon := cfg.Timestamp(id+eventsForAuctions) - ts
	return 1 + r.int64n(max(horizon*2, 1))
}

// nextPrice returns a price in cents, log-uniform between 1 and 1,000,000
// dollars (PriceGenerator.nextPrice).
func nextPrice(r *rng) int64 {
	// 10^(6u) computed as e^(6u ln 10): half the cost of math.Pow.
	return int64(math.Floor(math.Exp(r.float64()*(6*math.Ln10))*100 + 0.5))
}

// appendRandomString appends a string of 3 to maxLen-1 characters, each a
// lower-case letter or, with probability 1/13, special
// (StringsGenerator.nextString before trimming).
func appendRandomString(b []byte, r *rng, maxLen int, special byte) []byte {
	n := minStringLength + r.intn(maxLen-minStringLength)
	for ; n > 0; n-- {
		// One draw decides both: 26 of 338 values (1/13) give the special
		// character, the other 312 = 12*26 a uniform letter.
		v := r.intn(13 * 26)
		if v < 26 {
			b = append(b, special)
		} else {
			b = append(b, 'a'+byte(v%26))
		}
	}
	return b
}

// appendTrimmedString appends a random string like appendRandomString and
// then drops its leading and trailing characters <= ' ', like Java's
// String.trim (StringsGenerator.nextString).
func appendTrimmedString(b []byte, r *rng, maxLen int, special byte) []byte {
	start := len(b)
	b = appendRandomString(b, r, maxLen, special)
	s := b[start:]
	lo, hi := 0, len(s)
	for lo < hi && s[lo] <= ' ' {
		lo++
	}
	for hi > lo && s[hi-1] <= ' ' {
		hi--
	}
	copy(s, s[lo:hi])
	return b[:start+hi-lo]
}

// extra returns padding such that currentSize plus its length averages
// desiredAverage, within ±20% (StringsGenerator.nextExtra).
func (g *Generator) extra(arena *stringArena, r *rng, currentSize, desiredAverage int) string {
	if currentSize > desiredAverage {
		return ""
	}
	desiredAverage -= currentSize
	delta := int(math.Floor(float64(desiredAverage)*0.2 + 0.5))
	size := desiredAverage - delta
	if delta != 0 {
		size += r.intn(2 * delta)
	}
	if size == 0 {
		return ""
	}
	b := arena.reserve(size)
	b = g.appendExactString(b, r, size)
	return arena.commit(b)
}

// exactStringPairs maps a pair of base-26 digits (0..675) to the two
// characters the reference's nextExactString writes for them: index 0 for a
// non-negative draw ('a' + digit), index 1 for a negative one ('a' - digit,
// Java's truncated remainder).
type exactStringPairs [2][676][2]byte

func newExactStringPairs() *exactStringPairs {
	t := new(exactStringPairs)
	for v := 0; v < 676; v++ {
		lo, hi := byte(v%26), byte(v/26)
		t[0][v] = [2]byte{'a' + lo, 'a' + hi}
		t[1][v] = [2]byte{'a' - lo, 'a' - hi}
	}
	return t
}

// put6 writes the six characters of one 32-bit draw to dst[0:6].
func (t *exactStringPairs) put6(dst []byte, rnd int32) {
	_ = dst[5]
	// Branch-free |rnd| (the sign is a coin flip, so a branch would
	// mispredict half the time); MinInt32 maps to 2^31.
	sign := uint32(rnd) >> 31
	m := (uint32(rnd) ^ -sign) + sign
	pairs := &t[sign&1]
	p := pairs[m%676]
	dst[0], dst[1] = p[0], p[1]
	m /= 676
	p = pairs[m%676]
	dst[2], dst[3] = p[0], p[1]
	m /= 676
	p = pairs[m%676]
	dst[4], dst[5] = p[0], p[1]
}

// appendExactString appends n pseudo-letters the way
// StringsGenerator.nextExactString does: six base-26 digits per signed
// 32-bit draw, least significant first, with Java's truncated remainder, so
// negative draws give characters from 'H' to '`' as well as letters. The
// digits are taken two at a time through a table.
func (g *Generator) appendExactString(b []byte, r *rng, n int) []byte {
	start := len(b)
	if cap(b)-start < n {
		b = append(b, make([]byte, n)...)[:start]
	}
	b = b[:start+n]
	dst := b[start:]
	var v uint64
	half := false
	for len(dst) > 0 {
		// Two 32-bit draws per 64 random bits.
		if !half {
			v = r.next()
		}
		rnd := int32(v >> 32)
		v <<= 32
		half = !half
		if len(dst) >= 6 {
			g.pairs.put6(dst[:6], rnd)
			dst = dst[6:]
			continue
		}
		var six [6]byte
		g.pairs.put6(six[:], rnd)
		copy(dst, six[:])
		break
	}
	return b
}

// channel returns the name and URL of non-hot channel n, creating them on
// first use (BidGenerator.getNextChannelAndurl). Nine channels in ten carry
// a channel_id query parameter: the bit-reversed channel number made
// positive with Java's Math.abs, which leaves MinInt32 negative.
func (g *Generator) channel(n int) channelEntry {
	if g.channels == nil {
		g.channels = make([]channelEntry, NumChannels)
	}
	c := &g.channels[n]
	if c.name == "" {
		r := newRNG(g.cfg.Seed, domainChannel, int64(n))
		url := baseURL(&r)
		if r.intn(10) > 0 {
			rev := int32(bits.Reverse32(uint32(n)))
			if rev < 0 && rev != math.MinInt32 {
				rev = -rev
			}
			url += "&channel_id=" + strconv.FormatInt(int64(rev), 10)
		}
		c.name = "channel-" + strconv.Itoa(n)
		c.url = url
	}
	return *c
}

// baseURL returns a URL with three random path segments
// (BidGenerator.getBaseUrl).
func baseURL(r *rng) string {
	b := make([]byte, 0, 64)
	b = append(b, "https://www.nexmark.com/"...)
	for i := 0; i < 3; i++ {
		b = appendTrimmedString(b, r, 5, '_')
		b = append(b, '/')
	}
	b = append(b, "item.htm?query=1"...)
	return string(b)
}
