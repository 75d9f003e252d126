package connect

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// nexmarkField is one leaf of the reference's datagen table.
type nexmarkField uint8

const (
	nxEventType nexmarkField = iota
	nxPersonID
	nxPersonName
	nxPersonEmail
	nxPersonCard
	nxPersonCity
	nxPersonState
	nxPersonTime
	nxPersonExtra
	nxAuctionID
	nxAuctionItem
	nxAuctionDesc
	nxAuctionInitial
	nxAuctionReserve
	nxAuctionTime
	nxAuctionExpires
	nxAuctionSeller
	nxAuctionCategory
	nxAuctionExtra
	nxBidAuction
	nxBidBidder
	nxBidPrice
	nxBidChannel
	nxBidURL
	nxBidTime
	nxBidExtra
)

// nexmarkFields are the datagen table's leaves by path, as the
// reference's ddl_gen.sql declares them, with the storage of each.
var nexmarkFields = []struct {
	path string
	f    nexmarkField
	kind row.Kind
}{
	{"event_type", nxEventType, row.KindInt},
	{"person.id", nxPersonID, row.KindInt},
	{"person.name", nxPersonName, row.KindString},
	{"person.emailAddress", nxPersonEmail, row.KindString},
	{"person.creditCard", nxPersonCard, row.KindString},
	{"person.city", nxPersonCity, row.KindString},
	{"person.state", nxPersonState, row.KindString},
	{"person.dateTime", nxPersonTime, row.KindTimestamp},
	{"person.extra", nxPersonExtra, row.KindString},
	{"auction.id", nxAuctionID, row.KindInt},
	{"auction.itemName", nxAuctionItem, row.KindString},
	{"auction.description", nxAuctionDesc, row.KindString},
	{"auction.initialBid", nxAuctionInitial, row.KindInt},
	{"auction.reserve", nxAuctionReserve, row.KindInt},
	{"auction.dateTime", nxAuctionTime, row.KindTimestamp},
	{"auction.expires", nxAuctionExpires, row.KindTimestamp},
	{"auction.seller", nxAuctionSeller, row.KindInt},
	{"auction.category", nxAuctionCategory, row.KindInt},
	{"auction.extra", nxAuctionExtra, row.KindString},
	{"bid.auction", nxBidAuction, row.KindInt},
	{"bid.bidder", nxBidBidder, row.KindInt},
	{"bid.price", nxBidPrice, row.KindInt},
	{"bid.channel", nxBidChannel, row.KindString},
	{"bid.url", nxBidURL, row.KindString},
	{"bid.dateTime", nxBidTime, row.KindTimestamp},
	{"bid.extra", nxBidExtra, row.KindString},
}

// nexmarkColumn maps a declared column onto the generator's fields.
type nexmarkColumn struct {
	f         nexmarkField
	timestamp bool // TIMESTAMP storage (else the number as an integer)
}

func nexmarkColumns(cols []Column) ([]nexmarkColumn, error) {
	out := make([]nexmarkColumn, len(cols))
	for i, c := range cols {
		if c.Metadata != "" {
			return nil, fmt.Errorf("column %s: the nexmark connector has no metadata (METADATA FROM '%s')", c.Name, c.Metadata)
		}
		p := strings.Join(c.path(), ".")
		found := false
		for _, f := range nexmarkFields {
			if !strings.EqualFold(f.path, p) {
				continue
			}
			found = true
			st := c.Type.Storage()
			ok := st == f.kind || f.kind == row.KindTimestamp && st == row.KindInt && c.Type.Kind == types.BigInt
			if f.kind == row.KindInt && (c.Type.Kind == types.Decimal || c.Type.Kind == types.Date || c.Type.Kind == types.Time) {
				ok = false
			}
			if !ok {
				return nil, fmt.Errorf("column %s is %s but the nexmark field %s is %s", p, c.Type, f.path, nexmarkTypeName(f.kind))
			}
			out[i] = nexmarkColumn{f: f.f, timestamp: st == row.KindTimestamp}
		}
		if !found {
			names := make([]string, len(nexmarkFields))
			for j, f := range nexmarkFields {
				names[j] = f.path
			}
			return nil, fmt.Errorf("column %s is not a field of the nexmark table%s (fields: %s)", p, didYouMean(p, names), strings.Join(names, ", "))
		}
	}
	return out, nil
}

func nexmarkTypeName(k row.Kind) string {
	switch k {
	case row.KindString:
		return "VARCHAR"
	case row.KindTimestamp:
		return "TIMESTAMP(3)"
	}
	return "BIGINT (INT for event_type)"
}

// nexmarkConfig reads the generator's parameters from the options (the
// reference's NexmarkSourceOptions). Defaults are nexmark.DefaultConfig's,
// which the hand-written queries use: in particular a rate of
// nexmark.DefaultEventRate events per second where the reference's option
// defaults to 10,000, so that an option-less table gives the same events
// as `sluice nexmark`.
func nexmarkConfig(opts Options) (cfg nexmark.Config, events int64, splits int, err error) {
	cfg = nexmark.DefaultConfig()
	ints := []struct {
		key string
		dst *int
	}{
		{"person.proportion", &cfg.PersonProportion},
		{"auction.proportion", &cfg.AuctionProportion},
		{"bid.proportion", &cfg.BidProportion},
		{"bid.hot-ratio.auctions", &cfg.HotAuctionRatio},
		{"bid.hot-ratio.bidders", &cfg.HotBiddersRatio},
		{"auction.hot-ratio.sellers", &cfg.HotSellersRatio},
	}
	for _, o := range ints {
		n, err := optInt(opts, o.key, int64(*o.dst))
		if err != nil {
			return cfg, 0, 0, err
		}
		if n < 0 || n > math.MaxInt32 {
			return cfg, 0, 0, fmt.Errorf("option '%s' = %d is out of range", o.key, n)
		}
		*o.dst = int(n)
	}
	sizes := []struct {
		key string
		dst *int
	}{
		{"person.avg-size", &cfg.AvgPersonByteSize},
		{"auction.avg-size", &cfg.AvgAuctionByteSize},
		{"bid.avg-size", &cfg.AvgBidByteSize},
	}
	for _, o := range sizes {
		n, err := optSize(opts, o.key, int64(*o.dst))
		if err != nil {
			return cfg, 0, 0, err
		}
		if n > 1<<20 {
			return cfg, 0, 0, fmt.Errorf("option '%s' = '%s' is above 1mb", o.key, opts[o.key])
		}
		*o.dst = int(n)
	}
	first, err := optInt(opts, "first-event.rate", nexmark.DefaultEventRate)
	if err != nil {
		return cfg, 0, 0, err
	}
	next, err := optInt(opts, "next-event.rate", first)
	if err != nil {
		return cfg, 0, 0, err
	}
	if first != next {
		return cfg, 0, 0, fmt.Errorf("'first-event.rate' = %d and 'next-event.rate' = %d differ: only a constant rate is supported; set both to the same value", first, next)
	}
	if first <= 0 {
		return cfg, 0, 0, fmt.Errorf("option 'first-event.rate' = %d must be positive", first)
	}
	cfg.EventRate = first
	if _, err := optEnum(opts, "rate.shape", "SQUARE", "SQUARE", "SINE"); err != nil {
		return cfg, 0, 0, err
	}
	if limited, err := optBool(opts, "rate.limited", false); err != nil {
		return cfg, 0, 0, err
	} else if limited {
		return cfg, 0, 0, fmt.Errorf("'rate.limited' = 'true' is not supported: the generator emits as fast as the job reads (event times still follow the rate)")
	}
	if speed, err := optBool(opts, "max-emit-speed", true); err != nil {
		return cfg, 0, 0, err
	} else if !speed {
		return cfg, 0, 0, fmt.Errorf("'max-emit-speed' = 'false' is not supported: the generator emits as fast as the job reads (event times still follow the rate)")
	}
	if _, err := optBool(opts, "keep-alive", false); err != nil {
		return cfg, 0, 0, err
	}
	if _, err := optInt(opts, "stop-at", -1); err != nil {
		return cfg, 0, 0, err
	}
	seed, err := optInt(opts, "seed", 0)
	if err != nil {
		return cfg, 0, 0, err
	}
	cfg.Seed = uint64(seed)
	if cfg.BaseTime, err = optInt(opts, "base-time", cfg.BaseTime); err != nil {
		return cfg, 0, 0, err
	}
	if events, err = optInt(opts, "events.num", 0); err != nil {
		return cfg, 0, 0, err
	}
	if events < 0 {
		return cfg, 0, 0, fmt.Errorf("option 'events.num' = %d must not be negative (0: unbounded)", events)
	}
	n, err := optInt(opts, "splits", 0)
	if err != nil {
		return cfg, 0, 0, err
	}
	if n < 0 || n > 1<<16 {
		return cfg, 0, 0, fmt.Errorf("option 'splits' = %d must be 0 (the job's parallelism) to 65536", n)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, 0, 0, err
	}
	return cfg, events, int(n), nil
}

// NexmarkSource is the 'nexmark' connector's source: the events of the
// built-in generator as rows of the reference's datagen table, split like
// queries.GeneratorSource (split i of n makes events i, i+n, ...), so the
// rows are those of the events the hand-written queries see.
type NexmarkSource struct {
	Config nexmark.Config
	// Events is the number of events; 0 or less is unbounded.
	Events    int64
	NumSplits int
	cols      []nexmarkColumn
	reserve   int
}

func openNexmark(t SourceTable) (stream.Source[exec.Change], Info, error) {
	cfg, events, splits, err := nexmarkConfig(t.Options)
	if err != nil {
		return nil, Info{}, err
	}
	cols, err := nexmarkColumns(t.Columns)
	if err != nil {
		return nil, Info{}, err
	}
	desc := fmt.Sprintf("nexmark generator, %d events/s of event time", cfg.EventRate)
	if events > 0 {
		desc = fmt.Sprintf("nexmark generator, %d events, %d events/s of event time", events, cfg.EventRate)
	} else {
		desc += ", unbounded"
	}
	return &NexmarkSource{Config: cfg, Events: events, NumSplits: splits, cols: cols, reserve: t.Reserve},
		Info{Bounded: events > 0, Splits: splits, Description: desc}, nil
}

// Splits implements stream.Source.
func (s *NexmarkSource) Splits(_ context.Context, parallelism int) ([]stream.Split[exec.Change], error) {
	n := s.NumSplits
	if n <= 0 {
		n = max(parallelism, 1)
	}
	events := s.Events
	if events <= 0 {
		events = math.MaxInt64
	}
	out := make([]stream.Split[exec.Change], n)
	for i := range out {
		g, err := nexmark.NewStridedGenerator(s.Config, events, n, i)
		if err != nil {
			return nil, fmt.Errorf("nexmark source: %w", err)
		}
		out[i] = &nexmarkSplit{id: fmt.Sprintf("nexmark-%d-of-%d", i, n), g: g, cols: s.cols, reserve: s.reserve}
	}
	return out, nil
}

type nexmarkSplit struct {
	id   string
	g    *nexmark.Generator
	cols []nexmarkColumn
	ev   nexmark.Event
	slab []row.Value
	// reserve is spare capacity left after each row (SourceTable.Reserve).
	reserve int
}

func (s *nexmarkSplit) ID() string { return s.id }

func (s *nexmarkSplit) Read(_ context.Context, dst []exec.Change) (int, error) {
	w := len(s.cols)
	stride := w + s.reserve
	n := 0
	for n < len(dst) && s.g.Next(&s.ev) {
		if len(s.slab) < stride {
			s.slab = make([]row.Value, stride*max(len(dst), 64))
		}
		vals := s.slab[:w:stride]
		s.slab = s.slab[stride:]
		fillNexmark(vals, s.cols, &s.ev)
		dst[n] = exec.Change{Op: exec.Insert, Vals: vals}
		n++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Buffered reports more events ready at once (stream.Buffered).
func (s *nexmarkSplit) Buffered() bool { return s.g.Position() < s.g.End() }

// Position is the number of the next event, 8 bytes big-endian.
func (s *nexmarkSplit) Position() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(s.g.Position()))
}

func (s *nexmarkSplit) Seek(pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("nexmark split %s: position of %d bytes, want 8", s.id, len(pos))
	}
	if err := s.g.SetPosition(int64(binary.BigEndian.Uint64(pos))); err != nil {
		return fmt.Errorf("nexmark split %s: %w", s.id, err)
	}
	return nil
}

// fillNexmark sets vals from e; fields of the records e does not carry
// are null.
func fillNexmark(vals []row.Value, cols []nexmarkColumn, e *nexmark.Event) {
	for i, c := range cols {
		var v row.Value
		switch c.f {
		case nxEventType:
			v = row.Int(int64(e.Type))
		case nxPersonID, nxPersonName, nxPersonEmail, nxPersonCard, nxPersonCity, nxPersonState, nxPersonTime, nxPersonExtra:
			if e.Type == nexmark.EventPerson {
				v = personValue(c, &e.Person)
			}
		case nxBidAuction, nxBidBidder, nxBidPrice, nxBidChannel, nxBidURL, nxBidTime, nxBidExtra:
			if e.Type == nexmark.EventBid {
				v = bidValue(c, &e.Bid)
			}
		default:
			if e.Type == nexmark.EventAuction {
				v = auctionValue(c, &e.Auction)
			}
		}
		vals[i] = v
	}
}

func timeValue(c nexmarkColumn, ms int64) row.Value {
	if c.timestamp {
		return row.Timestamp(ms)
	}
	return row.Int(ms)
}

func personValue(c nexmarkColumn, p *nexmark.Person) row.Value {
	switch c.f {
	case nxPersonID:
		return row.Int(p.ID)
	case nxPersonName:
		return row.String(p.Name)
	case nxPersonEmail:
		return row.String(p.EmailAddress)
	case nxPersonCard:
		return row.String(p.CreditCard)
	case nxPersonCity:
		return row.String(p.City)
	case nxPersonState:
		return row.String(p.State)
	case nxPersonTime:
		return timeValue(c, p.DateTime)
	default:
		return row.String(p.Extra)
	}
}

func auctionValue(c nexmarkColumn, a *nexmark.Auction) row.Value {
	switch c.f {
	case nxAuctionID:
		return row.Int(a.ID)
	case nxAuctionItem:
		return row.String(a.ItemName)
	case nxAuctionDesc:
		return row.String(a.Description)
	case nxAuctionInitial:
		return row.Int(a.InitialBid)
	case nxAuctionReserve:
		return row.Int(a.Reserve)
	case nxAuctionTime:
		return timeValue(c, a.DateTime)
	case nxAuctionExpires:
		return timeValue(c, a.Expires)
	case nxAuctionSeller:
		return row.Int(a.Seller)
	case nxAuctionCategory:
		return row.Int(a.Category)
	default:
		return row.String(a.Extra)
	}
}

func bidValue(c nexmarkColumn, b *nexmark.Bid) row.Value {
	switch c.f {
	case nxBidAuction:
		return row.Int(b.Auction)
	case nxBidBidder:
		return row.Int(b.Bidder)
	case nxBidPrice:
		return row.Int(b.Price)
	case nxBidChannel:
		return row.String(b.Channel)
	case nxBidURL:
		return row.String(b.URL)
	case nxBidTime:
		return timeValue(c, b.DateTime)
	default:
		return row.String(b.Extra)
	}
}
