package kafka

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

// TestSplitLag: a split's Lag is the records between its position and
// the partition's end as last fetched.
func TestSplitLag(t *testing.T) {
	brokers := cluster(t, 1, "t")
	cl := client(t, brokers, manual())
	produce(t, cl, "t", 0, "a", "b", "c")
	for _, bounded := range []bool{false, true} {
		sp := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", Bounded: bounded, PollInterval: 50 * time.Millisecond})[0]
		l := sp.(stream.Lagger)
		if got := l.Lag(); got != 3 {
			t.Fatalf("bounded %v: lag %d before reading, want 3", bounded, got)
		}
		read := func(n int) {
			t.Helper()
			dst := make([]connector.Message, n)
			for got := 0; got < n; {
				k, err := sp.Read(ctxT(t), dst[got:])
				if err != nil {
					t.Fatal(err)
				}
				got += k
			}
		}
		read(2)
		if got := l.Lag(); got != 1 {
			t.Fatalf("bounded %v: lag %d after 2 of 3, want 1", bounded, got)
		}
		read(1)
		if got := l.Lag(); got != 0 {
			t.Fatalf("bounded %v: lag %d at the end, want 0", bounded, got)
		}
	}
	// Unbounded: records produced later count once a fetch saw them.
	sp := splitsOf(t, SourceConfig{Brokers: brokers, Topic: "t", PollInterval: 50 * time.Millisecond})[0]
	dst := make([]connector.Message, 1)
	read1 := func() {
		t.Helper()
		for {
			k, err := sp.Read(ctxT(t), dst)
			if err != nil {
				t.Fatal(err)
			}
			if k == 1 {
				return
			}
		}
	}
	for range 3 {
		read1()
	}
	produce(t, cl, "t", 0, "d", "e")
	read1()
	if got := sp.(stream.Lagger).Lag(); got != 1 {
		t.Fatalf("lag %d after 4 of 5, want 1", got)
	}
}
