package queries

import (
	"math/rand/v2"
	"testing"
)

// TestFingerprintProperties: the fingerprint ignores order and split, and a
// retraction undoes an insertion.
func TestFingerprintProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rows := make([]Q5Row, 500)
	for i := range rows {
		rows[i] = Q5Row{Auction: r.Int64N(50), Num: r.Int64N(5)} // with duplicates
	}
	want := FingerprintRows(rows)
	for trial := 0; trial < 20; trial++ {
		shuffled := append([]Q5Row(nil), rows...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		cut := r.IntN(len(shuffled) + 1)
		a, b := FingerprintRows(shuffled[:cut]), FingerprintRows(shuffled[cut:])
		a.Merge(b)
		if a != want {
			t.Fatalf("trial %d: split fingerprint %v, want %v", trial, a, want)
		}
	}
	// Insert extra rows and retract them again, interleaved.
	f := FingerprintRows(rows)
	var buf []byte
	extra := Q5Row{Auction: 999, Num: 1}
	buf = extra.AppendJSON(buf[:0])
	f.Add(buf)
	if f == want {
		t.Fatal("adding a row did not change the fingerprint")
	}
	f.Remove(buf)
	if f != want {
		t.Fatalf("add then remove: %v, want %v", f, want)
	}
	if got := want.String(); len(got) != 16 {
		t.Fatalf("checksum %q is not 16 hex digits", got)
	}
}

func TestRowEncodings(t *testing.T) {
	for _, tc := range []struct {
		row  Row
		want string
	}{
		{Q1Row{1, 2, 1234 * 908, 5, "x"}, `{"auction":1,"bidder":2,"price":1120.472,"dateTime":5,"extra":"x"}`},
		{Q1Row{1, 2, 100 * 908, 5, ""}, `{"auction":1,"bidder":2,"price":90.800,"dateTime":5,"extra":""}`},
		{Q4Row{10, 12345}, `{"id":10,"final":12345}`},
		{Q8Row{1000, "Ann \"A\"", 0}, `{"id":1000,"name":"Ann \"A\"","stime":0}`},
		{Q22Row{1, 2, 3, "c", NullString{"a", true}, NullString{}, NullString{"", true}}, `{"auction":1,"bidder":2,"price":3,"channel":"c","dir1":"a","dir2":null,"dir3":""}`},
		{Q17Row{Auction: 7, Day: 16631}, `{"auction":7,"day":"2015-07-15","total_bids":0,"rank1_bids":0,"rank2_bids":0,"rank3_bids":0,"min_price":0,"max_price":0,"avg_price":0,"sum_price":0}`},
	} {
		if got := string(tc.row.AppendJSON(nil)); got != tc.want {
			t.Errorf("%T encodes as\n%s\nwant\n%s", tc.row, got, tc.want)
		}
	}
	if appendMilli(nil, -1500) == nil || string(appendMilli(nil, -1500)) != "-1.500" {
		t.Errorf("appendMilli(-1500) = %s", appendMilli(nil, -1500))
	}
	if d := dayOf(-1); d != -1 {
		t.Errorf("dayOf(-1) = %d, want -1", d)
	}
	if m := minuteOf(nexmarkBase + 61_000); m != 1 {
		t.Errorf("minuteOf = %d, want 1", m)
	}
}

const nexmarkBase = 1436918400000
