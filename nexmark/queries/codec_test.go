package queries

import (
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
