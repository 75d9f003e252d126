package nexmark

import (
	"errors"
	"fmt"
)

// Id bases of the reference generator (GeneratorConfig.FIRST_*_ID): ids start
// at these values so that queries find matches even on tiny runs.
const (
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
)

// Constants of the reference model generators that are not configurable
// there either.
const (
	// NumCategories is the number of auction categories
	// (AuctionGenerator.NUM_CATEGORIES); categories are 10..14.
	NumCategories = 5
	// NumChannels is the number of non-hot bid channels
	// (BidGenerator.CHANNELS_NUMBER).
	NumChannels = 10000

	personIDLead        = 10  // PersonGenerator.PERSON_ID_LEAD
	auctionIDLead       = 10  // AuctionGenerator.AUCTION_ID_LEAD
	hotSellerBatch      = 100 // AuctionGenerator.HOT_SELLER_RATIO
	hotAuctionBatch     = 100 // BidGenerator.HOT_AUCTION_RATIO
	hotBidderBatch      = 100 // BidGenerator.HOT_BIDDER_RATIO
	hotChannelsRatio    = 2   // BidGenerator.HOT_CHANNELS_RATIO
	minStringLength     = 3   // StringsGenerator.MIN_STRING_LENGTH
	outOfOrderPermuteBy = 953 // GeneratorConfig.nextAdjustedEventNumber
)

// hotChannels are the four hot bid channels (BidGenerator.HOT_CHANNELS):
// half of all bids come from one of them. Read-only.
var hotChannels = [4]string{"Google", "Facebook", "Baidu", "Apple"}

// HotChannels returns the names of the four hot bid channels, in the
// reference's order; half of all bids come from one of them.
func HotChannels() [4]string { return hotChannels }

// DefaultBaseTime is the event time of event 0 in epoch milliseconds,
// 2015-07-15T00:00:00Z: the fixed base time of the Beam Nexmark suite from
// which the Flink project derives. The Flink project's own default is the
// wall clock at start-up, which would make runs unrepeatable.
const DefaultBaseTime int64 = 1436918400000

// DefaultEventRate is the event rate, in events per second of event time,
// that the Flink nexmark benchmark suite configures (nexmark.yaml,
// nexmark.workload.suite.100m.tps = 10,000,000). The bare NexmarkConfiguration
// default is 10,000 events/s.
const DefaultEventRate = 10_000_000

// Config holds the generator parameters. Each field is named after the
// reference's NexmarkConfiguration field it mirrors; DefaultConfig returns the
// reference's values. docs/nexmark.md lists every field with its source.
type Config struct {
	// Seed selects the random stream; the same seed and parameters give the
	// same events. The reference draws from an unseeded java.util.Random.
	Seed uint64

	// BaseTime is the event time of event number 0, in epoch milliseconds.
	BaseTime int64
	// EventRate is the number of events per second of event time
	// (firstEventRate; a constant rate, rate shape SQUARE with equal first
	// and next rates). Event n is stamped BaseTime + n*1e6/EventRate µs,
	// truncated to milliseconds like the reference.
	EventRate int64

	// PersonProportion, AuctionProportion and BidProportion set the event
	// mix: out of every (sum) consecutive event numbers, the first
	// PersonProportion are people, the next AuctionProportion auctions and
	// the rest bids. Defaults 1, 3, 46.
	PersonProportion  int
	AuctionProportion int
	BidProportion     int

	// NumActivePeople bounds the people a random seller or bidder is drawn
	// from: the most recent ones (default 1000).
	NumActivePeople int
	// NumInFlightAuctions bounds the auctions a random bid is drawn from:
	// the most recent ones (default 100). It also sets the average auction
	// length: the time until that many more auctions have been created.
	NumInFlightAuctions int

	// HotAuctionRatio, HotSellersRatio and HotBiddersRatio: a bid goes to
	// the current hot auction, an auction to the current hot seller and a
	// bid comes from the current hot bidder with probability 1 - 1/ratio
	// (defaults 2, 4, 4).
	HotAuctionRatio int
	HotSellersRatio int
	HotBiddersRatio int

	// AvgPersonByteSize, AvgAuctionByteSize and AvgBidByteSize are the
	// idealised average record sizes (defaults 200, 500, 100 bytes); the
	// extra field pads records up to them.
	AvgPersonByteSize  int
	AvgAuctionByteSize int
	AvgBidByteSize     int

	// OutOfOrderGroupSize permutes event numbers within groups of this many
	// events (default 1: in order).
	OutOfOrderGroupSize int64
}

// DefaultConfig returns the reference generator's defaults (see the field
// docs and docs/nexmark.md), seed 0.
func DefaultConfig() Config {
	return Config{
		BaseTime:            DefaultBaseTime,
		EventRate:           DefaultEventRate,
		PersonProportion:    1,
		AuctionProportion:   3,
		BidProportion:       46,
		NumActivePeople:     1000,
		NumInFlightAuctions: 100,
		HotAuctionRatio:     2,
		HotSellersRatio:     4,
		HotBiddersRatio:     4,
		AvgPersonByteSize:   200,
		AvgAuctionByteSize:  500,
		AvgBidByteSize:      100,
		OutOfOrderGroupSize: 1,
	}
}

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid nexmark config")

// Validate reports the first parameter out of its domain.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.EventRate <= 0:
		return bad("event rate %d must be positive", c.EventRate)
	case c.PersonProportion <= 0 || c.AuctionProportion <= 0 || c.BidProportion < 0:
		return bad("proportions %d:%d:%d: person and auction must be positive, bid non-negative",
			c.PersonProportion, c.AuctionProportion, c.BidProportion)
	case c.PersonProportion+c.AuctionProportion+c.BidProportion > 1<<20:
		return bad("proportions %d:%d:%d sum beyond 2^20",
			c.PersonProportion, c.AuctionProportion, c.BidProportion)
	case c.NumActivePeople <= 0:
		return bad("active people %d must be positive", c.NumActivePeople)
	case c.NumInFlightAuctions <= 0:
		return bad("in-flight auctions %d must be positive", c.NumInFlightAuctions)
	case c.HotAuctionRatio <= 0 || c.HotSellersRatio <= 0 || c.HotBiddersRatio <= 0:
		return bad("hot ratios %d/%d/%d must be positive",
			c.HotAuctionRatio, c.HotSellersRatio, c.HotBiddersRatio)
	case c.AvgPersonByteSize < 0 || c.AvgAuctionByteSize < 0 || c.AvgBidByteSize < 0 ||
		c.AvgPersonByteSize > 1<<20 || c.AvgAuctionByteSize > 1<<20 || c.AvgBidByteSize > 1<<20:
		return bad("average sizes %d/%d/%d must be in [0, 1 MiB]",
			c.AvgPersonByteSize, c.AvgAuctionByteSize, c.AvgBidByteSize)
	case c.OutOfOrderGroupSize <= 0:
		return bad("out-of-order group size %d must be positive", c.OutOfOrderGroupSize)
	}
	return nil
}

func (c *Config) totalProportion() int64 {
	return int64(c.PersonProportion + c.AuctionProportion + c.BidProportion)
}

// interEventDelayUs is the event-time distance between consecutive events
// in microseconds, as a float like the reference.
func (c *Config) interEventDelayUs() float64 {
	return 1e6 / float64(c.EventRate)
}

// Timestamp returns the event time, in epoch milliseconds, of event number
// n, computed like the reference (GeneratorConfig.timestampForEvent).
func (c *Config) Timestamp(n int64) int64 {
	return c.BaseTime + int64(float64(n)*c.interEventDelayUs())/1000
}

// adjustedEventNumber permutes event numbers within out-of-order groups
// (GeneratorConfig.nextAdjustedEventNumber); the identity for group size 1.
func (c *Config) adjustedEventNumber(n int64) int64 {
	g := c.OutOfOrderGroupSize
	if g <= 1 {
		return n
	}
	return (n/g)*g + (n*outOfOrderPermuteBy)%g
}

// KindOf returns the type of the event with id id.
func (c *Config) KindOf(id int64) EventType {
	rem := id % c.totalProportion()
	switch {
	case rem < int64(c.PersonProportion):
		return EventPerson
	case rem < int64(c.PersonProportion+c.AuctionProportion):
		return EventAuction
	default:
		return EventBid
	}
}

// lastBase0PersonID is the base-0 id of the latest person created at or
// before event id (the person being created when id is a person event).
func (c *Config) lastBase0PersonID(id int64) int64 {
	tp := c.totalProportion()
	epoch, offset := id/tp, id%tp
	if offset >= int64(c.PersonProportion) {
		offset = int64(c.PersonProportion) - 1
	}
	return epoch*int64(c.PersonProportion) + offset
}

// lastBase0AuctionID is the base-0 id of the latest auction created at or
// before event id (-1 before the first auction).
func (c *Config) lastBase0AuctionID(id int64) int64 {
	tp := c.totalProportion()
	epoch, offset := id/tp, id%tp
	pp, ap := int64(c.PersonProportion), int64(c.AuctionProportion)
	switch {
	case offset < pp:
		epoch--
		offset = ap - 1
	case offset >= pp+ap:
		offset = ap - 1
	default:
		offset -= pp
	}
	return epoch*ap + offset
}

// LastPersonID returns the id of the latest person created at or before
// event id id: bids and auctions at id never name a person beyond
// LastPersonID(id) + 10 (the reference's look-ahead lead).
func (c *Config) LastPersonID(id int64) int64 {
	return c.lastBase0PersonID(id) + FirstPersonID
}

// LastAuctionID returns the id of the latest auction created at or before
// event id id (FirstAuctionID-1 before the first auction): bids at id never
// name an auction beyond LastAuctionID(id) + 10.
func (c *Config) LastAuctionID(id int64) int64 {
	return c.lastBase0AuctionID(id) + FirstAuctionID
}

// SplitRange returns the half-open range [first, end) of event numbers that
// split i of n generates when a run of events events is cut into n
// contiguous splits of nearly equal size (the first events%n splits get one
// more event). It panics if n <= 0 or i is outside [0, n).
func SplitRange(events int64, n, i int) (first, end int64) {
	if n <= 0 || i < 0 || i >= n {
		panic(fmt.Sprintf("nexmark: split %d of %d", i, n))
	}
	size, extra := events/int64(n), events%int64(n)
	first = int64(i)*size + min(int64(i), extra)
	end = first + size
	if int64(i) < extra {
		end++
	}
	return first, end
}
