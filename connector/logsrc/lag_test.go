package logsrc

import (
	"context"
	"testing"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

func TestSplitLag(t *testing.T) {
	l := openLog(t)
	tp := createTopic(t, l, "t", 1)
	p := part(t, tp, 0)
	appendValues(t, p, "a", "b", "c", "d")
	src, err := NewSource(l, SourceConfig{Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	sp := splits(t, src)[0]
	lg, ok := sp.(stream.Lagger)
	if !ok {
		t.Fatal("log split does not implement stream.Lagger")
	}
	if got := lg.Lag(); got != 4 {
		t.Fatalf("lag before reading: %d, want 4", got)
	}
	buf := make([]connector.Message, 3)
	if n, err := sp.Read(context.Background(), buf); err != nil || n != 3 {
		t.Fatalf("read %d, %v", n, err)
	}
	if got := lg.Lag(); got != 1 {
		t.Fatalf("lag after reading 3 of 4: %d, want 1", got)
	}
	appendValues(t, p, "e", "f")
	if got := lg.Lag(); got != 3 {
		t.Fatalf("lag after 2 more appends: %d, want 3", got)
	}
	if err := sp.Seek(sp.Position()); err != nil {
		t.Fatal(err)
	}
	if got := lg.Lag(); got != 3 {
		t.Fatalf("lag after seek to the same position: %d, want 3", got)
	}
}
