package queries

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/state/codec"
)

func checkCodec[T any](t *testing.T, name string) {
	t.Helper()
	if _, err := codec.For[T](); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

// TestStateTypesHaveCodecs: every key, state value and window accumulator
// type of the queries can be encoded, as checkpoints require.
func TestStateTypesHaveCodecs(t *testing.T) {
	checkCodec[q3State](t, "q3State")
	checkCodec[q4State](t, "q4State")
	checkCodec[q4Avg](t, "q4Avg")
	checkCodec[q5Top](t, "q5Top")
	checkCodec[q7Best](t, "q7Best")
	checkCodec[q8Acc](t, "q8Acc")
	checkCodec[q11Acc](t, "q11Acc")
	checkCodec[*aggState[statsAcc, Q15Row]](t, "q15 state")
	checkCodec[*aggState[q16Acc, Q16Row]](t, "q16 state")
	checkCodec[*aggState[q17Acc, Q17Row]](t, "q17 state")
	checkCodec[channelDay](t, "channelDay")
	checkCodec[auctionDay](t, "auctionDay")
	checkCodec[q18Entry](t, "q18Entry")
	checkCodec[q18Bidder](t, "q18Bidder")
	checkCodec[*q19State](t, "q19State")
	checkCodec[*q20State](t, "q20State")

	// A round trip through the codec keeps a q7 accumulator intact.
	c := codec.MustFor[q7Best]()
	in := q7Best{Max: 5, Set: true, Best: []nexmark.Bid{{Auction: 1, Price: 5, Extra: "x"}}}
	b := c.Append(nil, in)
	out, n, err := c.Decode(b)
	if err != nil || n != len(b) || out.Max != 5 || len(out.Best) != 1 || out.Best[0].Extra != "x" {
		t.Fatalf("q7Best round trip: %+v, %d/%d bytes, %v", out, n, len(b), err)
	}
}

// TestQ18RecordRoundTrip: a bid encoded by q18Record decodes to itself,
// with empty strings, lengths that need multi-byte prefixes, and negative
// numbers.
func TestQ18RecordRoundTrip(t *testing.T) {
	long := strings.Repeat("u", 300)
	for _, b := range []nexmark.Bid{
		{Auction: 1, Bidder: 2, Price: 3, Channel: "Google", URL: "https://www.nexmark.com/a/b/c", DateTime: 1_700_000_000_000, Extra: "xyz"},
		{Auction: 7, Bidder: 8},
		{Auction: -1, Bidder: -2, Price: -3, Channel: long, URL: long + "v", DateTime: -4, Extra: long},
	} {
		r := q18Record(&b)
		if got := q18RecordTime(r); got != b.DateTime {
			t.Errorf("%+v: time %d", b, got)
		}
		if got := decodeQ18Record(r, b.Auction, b.Bidder); got != b {
			t.Errorf("round trip: got %+v, want %+v", got, b)
		}
	}
}
