package nexmark

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends e as one JSON object, without a trailing newline, in
// the shape of the reference's generated table:
//
//	{"event_type":0,"person":{...},"auction":null,"bid":null}
//
// Field names are the reference's (person: id, name, emailAddress,
// creditCard, city, state, dateTime, extra; auction: id, itemName,
// description, initialBid, reserve, dateTime, expires, seller, category,
// extra; bid: auction, bidder, price, channel, url, dateTime, extra) and
// times are epoch milliseconds. It never allocates beyond growing dst.
func AppendJSON(dst []byte, e *Event) []byte {
	dst = append(dst, `{"event_type":`...)
	dst = strconv.AppendInt(dst, int64(e.Type), 10)
	switch e.Type {
	case EventPerson:
		dst = append(dst, `,"person":`...)
		dst = AppendPersonJSON(dst, &e.Person)
		dst = append(dst, `,"auction":null,"bid":null}`...)
	case EventAuction:
		dst = append(dst, `,"person":null,"auction":`...)
		dst = AppendAuctionJSON(dst, &e.Auction)
		dst = append(dst, `,"bid":null}`...)
	default:
		dst = append(dst, `,"person":null,"auction":null,"bid":`...)
		dst = AppendBidJSON(dst, &e.Bid)
		dst = append(dst, '}')
	}
	return dst
}

// AppendPersonJSON appends p as a JSON object with the reference's field
// names.
func AppendPersonJSON(dst []byte, p *Person) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, p.ID, 10)
	dst = append(dst, `,"name":`...)
	dst = AppendJSONString(dst, p.Name)
	dst = append(dst, `,"emailAddress":`...)
	dst = AppendJSONString(dst, p.EmailAddress)
	dst = append(dst, `,"creditCard":`...)
	dst = AppendJSONString(dst, p.CreditCard)
	dst = append(dst, `,"city":`...)
	dst = AppendJSONString(dst, p.City)
	dst = append(dst, `,"state":`...)
	dst = AppendJSONString(dst, p.State)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, p.DateTime, 10)
	dst = append(dst, `,"extra":`...)
	dst = AppendJSONString(dst, p.Extra)
	return append(dst, '}')
}

// AppendAuctionJSON appends a as a JSON object with the reference's field
// names.
func AppendAuctionJSON(dst []byte, a *Auction) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, a.ID, 10)
	dst = append(dst, `,"itemName":`...)
	dst = AppendJSONString(dst, a.ItemName)
	dst = append(dst, `,"description":`...)
	dst = AppendJSONString(dst, a.Description)
	dst = append(dst, `,"initialBid":`...)
	dst = strconv.AppendInt(dst, a.InitialBid, 10)
	dst = append(dst, `,"reserve":`...)
	dst = strconv.AppendInt(dst, a.Reserve, 10)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, a.DateTime, 10)
	dst = append(dst, `,"expires":`...)
	dst = strconv.AppendInt(dst, a.Expires, 10)
	dst = append(dst, `,"seller":`...)
	dst = strconv.AppendInt(dst, a.Seller, 10)
	dst = append(dst, `,"category":`...)
	dst = strconv.AppendInt(dst, a.Category, 10)
	dst = append(dst, `,"extra":`...)
	dst = AppendJSONString(dst, a.Extra)
	return append(dst, '}')
}

// AppendBidJSON appends b as a JSON object with the reference's field names.
func AppendBidJSON(dst []byte, b *Bid) []byte {
	dst = append(dst, `{"auction":`...)
	dst = strconv.AppendInt(dst, b.Auction, 10)
	dst = append(dst, `,"bidder":`...)
	dst = strconv.AppendInt(dst, b.Bidder, 10)
	dst = append(dst, `,"price":`...)
	dst = strconv.AppendInt(dst, b.Price, 10)
	dst = append(dst, `,"channel":`...)
	dst = AppendJSONString(dst, b.Channel)
	dst = append(dst, `,"url":`...)
	dst = AppendJSONString(dst, b.URL)
	dst = append(dst, `,"dateTime":`...)
	dst = strconv.AppendInt(dst, b.DateTime, 10)
	dst = append(dst, `,"extra":`...)
	dst = AppendJSONString(dst, b.Extra)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

const (
	ones8 = 0x0101010101010101
	high8 = 0x8080808080808080
)

// load8 returns the eight bytes of s at i, little-endian (the compiler
// merges the loads into one).
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsEscape8 reports whether any byte of x is below 0x20, '"', '\\' or
// at least 0x80 (not plain ASCII). The tests for a byte below n,
// (x - n*ones) &^ x & high, and for a zero byte are exact as "any" tests:
// a borrow reaches a higher byte only from a byte that matched.
func needsEscape8(x uint64) bool {
	q := x ^ ('"' * ones8)
	b := x ^ ('\\' * ones8)
	t := (x - 0x20*ones8) &^ x
	t |= (q - ones8) &^ q
	t |= (b - ones8) &^ b
	return (t|x)&high8 != 0
}

// AppendJSONString appends s as a quoted JSON string. '"', '\\' and control
// characters are escaped; invalid UTF-8 is replaced by U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs escaping (the common
		// case: generated strings are letters and a few symbols).
		for i+8 <= len(s) && !needsEscape8(load8(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
