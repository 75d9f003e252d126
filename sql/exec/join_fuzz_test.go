package exec

import (
	"bytes"
	"testing"

	"github.com/sluicehq/sluice/row"
)

// FuzzStateDecoders feeds arbitrary bytes (a damaged checkpoint file) to
// the decoders of the join and rank state: they return errors, never
// panic, and what they accept encodes back to the same bytes.
func FuzzStateDecoders(f *testing.F) {
	vals := []row.Value{row.Int(-3), row.String("k"), row.Null(), row.Timestamp(1700000000000), row.Float(2.5), row.Bool(true)}
	j, _ := joinRec{Vals: vals, Count: 2, Matches: 1, Ts: 99, Touched: 5}.MarshalBinary()
	tr, _ := timedRow{Vals: vals, Ts: -4, Matched: true}.MarshalBinary()
	rs, _ := rankState{Seq: 7, Touched: 1, Rows: []rankRow{{Vals: vals, Seq: 3}, {Vals: vals[:2], Seq: 6}}}.MarshalBinary()
	for _, b := range [][]byte{j, tr, rs, {}, {0}, {1, 2, 3}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var jr joinRec
		if jr.UnmarshalBinary(b) == nil {
			back, _ := jr.MarshalBinary()
			var again joinRec
			if err := again.UnmarshalBinary(back); err != nil {
				t.Fatalf("re-encoded join row does not decode: %v", err)
			}
		}
		var tr timedRow
		if tr.UnmarshalBinary(b) == nil {
			back, _ := tr.MarshalBinary()
			var again timedRow
			if err := again.UnmarshalBinary(back); err != nil {
				t.Fatalf("re-encoded buffered row does not decode: %v", err)
			}
		}
		var st rankState
		if st.UnmarshalBinary(b) == nil {
			back, _ := st.MarshalBinary()
			var again rankState
			if err := again.UnmarshalBinary(back); err != nil {
				t.Fatalf("re-encoded rank state does not decode: %v", err)
			}
			back2, _ := again.MarshalBinary()
			if !bytes.Equal(back, back2) {
				t.Fatalf("rank state encoding is not stable")
			}
		}
	})
}
