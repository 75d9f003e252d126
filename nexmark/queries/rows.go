package queries

import (
	"strconv"

	"github.com/sluicehq/sluice/nexmark"
)

// Row is a result row of a query. AppendJSON appends the row as one JSON
// object whose keys are the columns of the reference's result table
// (CREATE TABLE nexmark_qN), in that order, with times as epoch
// milliseconds. That encoding is canonical: the checksum hashes it.
type Row interface {
	AppendJSON(dst []byte) []byte
}

// Q0Row is a row of q0 (pass-through): table nexmark_q0.
type Q0Row struct {
	Auction  int64
	Bidder   int64
	Price    int64
	DateTime int64
	Extra    string
}

// AppendJSON implements Row: {"auction","bidder","price","dateTime","extra"}.
func (r Q0Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, r.Price, 10)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, r.DateTime, 10)
	dst = append(dst, `,"extra":`...)
	dst = nexmark.AppendJSONString(dst, r.Extra)
	return append(dst, '}')
}

// Q1Row is a row of q1 (currency conversion): table nexmark_q1. PriceMilli
// is the DECIMAL(23, 3) price 0.908 * price in thousandths, so it is exact:
// price * 908.
type Q1Row struct {
	Auction    int64
	Bidder     int64
	PriceMilli int64
	DateTime   int64
	Extra      string
}

// AppendJSON implements Row: {"auction","bidder","price","dateTime","extra"},
// price as a decimal number with three fraction digits.
func (r Q1Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = appendMilli(dst, r.PriceMilli)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, r.DateTime, 10)
	dst = append(dst, `,"extra":`...)
	dst = nexmark.AppendJSONString(dst, r.Extra)
	return append(dst, '}')
}

// appendMilli appends v/1000 as a decimal with exactly three fraction
// digits (SQL DECIMAL(_, 3)).
func appendMilli(dst []byte, v int64) []byte {
	u := uint64(v)
	if v < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/1000, 10)
	f := u % 1000
	return append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// Q2Row is a row of q2 (selection): table nexmark_q2.
type Q2Row struct {
	Auction int64
	Price   int64
}

// AppendJSON implements Row: {"auction","price"}.
func (r Q2Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, r.Price, 10)
	return append(dst, '}')
}

// Q3Row is a row of q3 (local item suggestion): table nexmark_q3.
type Q3Row struct {
	Name  string
	City  string
	State string
	ID    int64 // auction id
}

// AppendJSON implements Row: {"name","city","state","id"}.
func (r Q3Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"name":`...)
	dst = nexmark.AppendJSONString(dst, r.Name)
	dst = append(dst, `,"city":`...)
	dst = nexmark.AppendJSONString(dst, r.City)
	dst = append(dst, `,"state":`...)
	dst = nexmark.AppendJSONString(dst, r.State)
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendInt(dst, r.ID, 10)
	return append(dst, '}')
}

// Q4Row is a row of q4 (average winning price per category): table
// nexmark_q4, whose columns are id (the category) and final (the average,
// a BIGINT: integer division like Flink's AVG over BIGINT).
type Q4Row struct {
	ID    int64
	Final int64
}

// AppendJSON implements Row: {"id","final"}.
func (r Q4Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, r.ID, 10)
	dst = append(dst, `,"final":`...)
	dst = strconv.AppendInt(dst, r.Final, 10)
	return append(dst, '}')
}

// Q5Row is a row of q5 (hot items): table nexmark_q5.
type Q5Row struct {
	Auction int64
	Num     int64
}

// AppendJSON implements Row: {"auction","num"}.
func (r Q5Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, r.Auction, 10)
	dst = append(dst, `,"num":`...)
	dst = strconv.AppendInt(dst, r.Num, 10)
	return append(dst, '}')
}

// Q7Row is a row of q7 (highest bid): table nexmark_q7.
type Q7Row = Q0Row

// q7Row is the row q7 writes for bid b. The reference query selects
// B.auction, B.price, B.bidder into nexmark_q7 (auction, bidder, price),
// and INSERT matches columns by position, so the bidder column holds the
// price and the price column the bidder, as Flink writes them.
func q7Row(b nexmark.Bid) Q7Row {
	return Q7Row{Auction: b.Auction, Bidder: b.Price, Price: b.Bidder, DateTime: b.DateTime, Extra: b.Extra}
}

// Q8Row is a row of q8 (monitor new users): table nexmark_q8.
type Q8Row struct {
	ID    int64
	Name  string
	STime int64 // window start
}

// AppendJSON implements Row: {"id","name","stime"}.
func (r Q8Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, r.ID, 10)
	dst = append(dst, `,"name":`...)
	dst = nexmark.AppendJSONString(dst, r.Name)
	dst = append(dst, `,"stime":`...)
	dst = strconv.AppendInt(dst, r.STime, 10)
	return append(dst, '}')
}

// Q11Row is a row of q11 (user sessions): table nexmark_q11.
type Q11Row struct {
	Bidder    int64
	BidCount  int64
	StartTime int64
	EndTime   int64
}

// AppendJSON implements Row: {"bidder","bid_count","starttime","endtime"}.
func (r Q11Row) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"bidder":`...)
	dst = strconv.AppendInt(dst, r.Bidder, 10)
	dst = append(dst, `,"bid_count":`...)
	dst = strconv.AppendInt(dst, r.BidCount, 10)
	dst = append(dst, `,"starttime":`...)
	dst = strconv.AppendInt(dst, r.StartTime, 10)
	dst = append(dst, `,"endtime":`...)
	dst = strconv.AppendInt(dst, r.EndTime, 10)
	return append(dst, '}')
}
