package queries

import (
	"strconv"
	"time"

	"github.com/sluicehq/sluice/nexmark"
)

// Q14Row is a row of q14 (calculation with a user function): table
// nexmark_q14.
type Q14Row struct {
	Auction     int64
	Bidder      int64
	PriceMilli  int64 // 0.908 * price, DECIMAL(23, 3) in thousandths
	BidTimeType string
	DateTime    int64
	Extra       string
	CCounts     int64
}

// AppendJSON implements Row: {"auction","bidder","price","bidTimeType",
// "dateTime","extra","c_counts"}.
func (r Q14Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = appendMilli(dst, r.PriceMilli)
	dst = append(dst, `,"bidTimeType":`...)
	dst = nexmark.AppendJSONString(dst, r.BidTimeType)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, r.DateTime, 10)
	dst = append(dst, `,"extra":`...)
	dst = nexmark.AppendJSONString(dst, r.Extra)
	dst = append(dst, `,"c_counts":`...)
	dst = strconv.AppendInt(dst, r.CCounts, 10)
	return append(dst, '}')
}

// BidStats are the counters of the q15 and q16 reports: bids, distinct
// bidders and distinct auctions, in total and per price rank (rank 1:
// price < 10,000; rank 2: 10,000 <= price < 1,000,000; rank 3: above).
// Index 0 is the total, 1-3 the ranks.
type BidStats struct {
	Bids     [4]int64
	Bidders  [4]int64
	Auctions [4]int64
}

func (s *BidStats) appendJSON(dst []byte) []byte {
	for i, name := range [4]string{`"total_bids":`, `"rank1_bids":`, `"rank2_bids":`, `"rank3_bids":`} {
		dst = append(append(dst, ','), name...)
		dst = strconv.AppendInt(dst, s.Bids[i], 10)
	}
	for i, name := range [4]string{`"total_bidders":`, `"rank1_bidders":`, `"rank2_bidders":`, `"rank3_bidders":`} {
		dst = append(append(dst, ','), name...)
		dst = strconv.AppendInt(dst, s.Bidders[i], 10)
	}
	for i, name := range [4]string{`"total_auctions":`, `"rank1_auctions":`, `"rank2_auctions":`, `"rank3_auctions":`} {
		dst = append(append(dst, ','), name...)
		dst = strconv.AppendInt(dst, s.Auctions[i], 10)
	}
	return dst
}

// Q15Row is a row of q15 (bidding statistics per day): table nexmark_q15.
type Q15Row struct {
	Day int64 // days since the Unix epoch, written as yyyy-MM-dd (UTC)
	BidStats
}

// AppendJSON implements Row: {"day","total_bids",...,"rank3_auctions"}.
func (r Q15Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"day":`...)
	dst = appendDay(dst, r.Day)
	dst = r.BidStats.appendJSON(dst)
	return append(dst, '}')
}

// Q16Row is a row of q16 (channel statistics per day): table nexmark_q16.
type Q16Row struct {
	Channel string
	Day     int64 // days since the Unix epoch, written as yyyy-MM-dd
	Minute  int64 // latest minute of the day with a bid, written as HH:mm
	BidStats
}

// AppendJSON implements Row: {"channel","day","minute","total_bids",...}.
func (r Q16Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"channel":`...)
	dst = nexmark.AppendJSONString(dst, r.Channel)
	dst = append(dst, `,"day":`...)
	dst = appendDay(dst, r.Day)
	dst = append(dst, `,"minute":"`...)
	dst = append2(dst, r.Minute/60)
	dst = append(dst, ':')
	dst = append2(dst, r.Minute%60)
	dst = append(dst, '"')
	dst = r.BidStats.appendJSON(dst)
	return append(dst, '}')
}

// Q17Row is a row of q17 (auction statistics per day): table nexmark_q17.
type Q17Row struct {
	Auction   int64
	Day       int64 // days since the Unix epoch, written as yyyy-MM-dd
	TotalBids int64
	Rank1Bids int64
	Rank2Bids int64
	Rank3Bids int64
	MinPrice  int64
	MaxPrice  int64
	AvgPrice  int64 // AVG over BIGINT: integer division
	SumPrice  int64
}

// AppendJSON implements Row: {"auction","day","total_bids","rank1_bids",
// "rank2_bids","rank3_bids","min_price","max_price","avg_price","sum_price"}.
func (r Q17Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"day":`...)
	dst = appendDay(dst, r.Day)
	for _, f := range [...]struct {
		name string
		v    int64
	}{
		{`,"total_bids":`, r.TotalBids}, {`,"rank1_bids":`, r.Rank1Bids}, {`,"rank2_bids":`, r.Rank2Bids},
		{`,"rank3_bids":`, r.Rank3Bids}, {`,"min_price":`, r.MinPrice}, {`,"max_price":`, r.MaxPrice},
		{`,"avg_price":`, r.AvgPrice}, {`,"sum_price":`, r.SumPrice},
	} {
		dst = append(dst, f.name...)
		dst = strconv.AppendInt(dst, f.v, 10)
	}
	return append(dst, '}')
}

// Q18Row is a row of q18 (last bid per bidder and auction): table
// nexmark_q18, every bid column.
type Q18Row nexmark.Bid

// AppendJSON implements Row: {"auction","bidder","price","channel","url",
// "dateTime","extra"}.
func (r Q18Row) AppendJSON(dst []byte) []byte {
	b := nexmark.Bid(r)
	return nexmark.AppendBidJSON(dst, &b)
}

// Q19Row is a row of q19 (top 10 bids per auction): table nexmark_q19.
type Q19Row struct {
	Bid        nexmark.Bid
	RankNumber int64 // 1..10
}

// AppendJSON implements Row: the bid columns then "rank_number".
func (r Q19Row) AppendJSON(dst []byte) []byte {
	dst = nexmark.AppendBidJSON(dst, &r.Bid)
	dst = dst[:len(dst)-1]
	dst = append(dst, `,"rank_number":`...)
	dst = strconv.AppendInt(dst, r.RankNumber, 10)
	return append(dst, '}')
}

// Q20Row is a row of q20 (bids joined with their category-10 auction):
// table nexmark_q20.
type Q20Row struct {
	Bid     nexmark.Bid
	Auction nexmark.Auction
}

// AppendJSON implements Row: {"auction","bidder","price","channel","url",
// "bid_dateTime","bid_extra","itemName","description","initialBid",
// "reserve","auction_dateTime","expires","seller","category",
// "auction_extra"}.
func (r Q20Row) AppendJSON(dst []byte) []byte {
	b, a := &r.Bid, &r.Auction
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, b.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, b.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, b.Price, 10)
	dst = append(dst, `,"channel":`...)
	dst = nexmark.AppendJSONString(dst, b.Channel)
	dst = append(dst, `,"url":`...)
	dst = nexmark.AppendJSONString(dst, b.URL)
	dst = append(dst, `,"bid_dateTime":`...)
	dst = strconv.AppendInt(dst, b.DateTime, 10)
	dst = append(dst, `,"bid_extra":`...)
	dst = nexmark.AppendJSONString(dst, b.Extra)
	dst = append(dst, `,"itemName":`...)
	dst = nexmark.AppendJSONString(dst, a.ItemName)
	dst = append(dst, `,"description":`...)
	dst = nexmark.AppendJSONString(dst, a.Description)
	dst = append(dst, `,"initialBid":`...)
	dst = strconv.AppendInt(dst, a.InitialBid, 10)
	dst = append(dst, `,"reserve":`...)
	dst = strconv.AppendInt(dst, a.Reserve, 10)
	dst = append(dst, `,"auction_dateTime":`...)
	dst = strconv.AppendInt(dst, a.DateTime, 10)
	dst = append(dst, `,"expires":`...)
	dst = strconv.AppendInt(dst, a.Expires, 10)
	dst = append(dst, `,"seller":`...)
	dst = strconv.AppendInt(dst, a.Seller, 10)
	dst = append(dst, `,"category":`...)
	dst = strconv.AppendInt(dst, a.Category, 10)
	dst = append(dst, `,"auction_extra":`...)
	dst = nexmark.AppendJSONString(dst, a.Extra)
	return append(dst, '}')
}

// Q21Row is a row of q21 (channel id extraction): table nexmark_q21.
type Q21Row struct {
	Auction   int64
	Bidder    int64
	Price     int64
	Channel   string
	ChannelID string
}

// AppendJSON implements Row: {"auction","bidder","price","channel",
// "channel_id"}.
func (r Q21Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, r.Price, 10)
	dst = append(dst, `,"channel":`...)
	dst = nexmark.AppendJSONString(dst, r.Channel)
	dst = append(dst, `,"channel_id":`...)
	dst = nexmark.AppendJSONString(dst, r.ChannelID)
	return append(dst, '}')
}

// NullString is a VARCHAR that may be NULL.
type NullString struct {
	S     string
	Valid bool
}

func appendNullString(dst []byte, s NullString) []byte {
	if !s.Valid {
		return append(dst, "null"...)
	}
	return nexmark.AppendJSONString(dst, s.S)
}

// Q22Row is a row of q22 (URL split): table nexmark_q22.
type Q22Row struct {
	Auction int64
	Bidder  int64
	Price   int64
	Channel string
	Dir1    NullString
	Dir2    NullString
	Dir3    NullString
}

// AppendJSON implements Row: {"auction","bidder","price","channel","dir1",
// "dir2","dir3"}.
func (r Q22Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, r.Price, 10)
	dst = append(dst, `,"channel":`...)
	dst = nexmark.AppendJSONString(dst, r.Channel)
	dst = append(dst, `,"dir1":`...)
	dst = appendNullString(dst, r.Dir1)
	dst = append(dst, `,"dir2":`...)
	dst = appendNullString(dst, r.Dir2)
	dst = append(dst, `,"dir3":`...)
	dst = appendNullString(dst, r.Dir3)
	return append(dst, '}')
}

const msPerDay = 24 * 60 * 60 * 1000

// dayOf returns the UTC day of epoch milliseconds ms, as days since the
// epoch (DATE_FORMAT(dateTime, 'yyyy-MM-dd') without the string).
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}

// minuteOf returns the UTC minute of the day of ms (0..1439).
func minuteOf(ms int64) int64 {
	return (ms - dayOf(ms)*msPerDay) / 60000
}

// appendDay appends day (days since the epoch) as a quoted yyyy-MM-dd.
func appendDay(dst []byte, day int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(day*msPerDay).UTC().AppendFormat(dst, "2006-01-02")
	return append(dst, '"')
}

func append2(dst []byte, v int64) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

// Q12Row is a row of q12 (bids per bidder per processing-time window):
// table nexmark_q12 (discard_sink in the reference).
type Q12Row struct {
	Bidder    int64
	BidCount  int64
	StartTime int64 // window start, wall-clock epoch ms
	EndTime   int64
}

// AppendJSON implements Row: {"bidder","bid_count","starttime","endtime"}.
func (r Q12Row) AppendJSON(dst []byte) []byte {
	return Q11Row(r).AppendJSON(dst)
}
