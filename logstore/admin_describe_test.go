package logstore

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestActiveProducers(t *testing.T) {
	dir := t.TempDir()
	l, p := e2eOpen(t, dir, true)
	if got := p.ActiveProducers(); len(got) != 0 {
		t.Fatalf("new partition: %+v", got)
	}
	before := time.Now().UnixMilli()
	txnAppend(t, p, producerBatch(t, 7, 1, 0, 3, false)) // offsets 0-2
	txnAppend(t, p, producerBatch(t, 7, 1, 3, 2, false)) // 3-4
	txnAppend(t, p, producerBatch(t, 4, 0, 0, 2, true))  // 5-6, open transaction
	want := []ProducerInfo{
		{ProducerID: 4, Epoch: 0, LastSequence: 1, TxnStartOffset: 5},
		{ProducerID: 7, Epoch: 1, LastSequence: 4, TxnStartOffset: -1},
	}
	check := func(what string) {
		t.Helper()
		got := p.ActiveProducers()
		for i := range got {
			if got[i].LastTimestamp < before {
				t.Fatalf("%s: last timestamp %d before the appends (%d)", what, got[i].LastTimestamp, before)
			}
			got[i].LastTimestamp = 0
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %+v, want %+v", what, got, want)
		}
	}
	check("after appends")
	if _, err := p.WriteTxnMarker(context.Background(), 4, 0, false); err != nil {
		t.Fatal(err)
	}
	want[0].TxnStartOffset = -1
	check("after the abort marker")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, p = e2eOpen(t, dir, false)
	defer l.Close()
	check("after reopening")
}

func TestOffsetStoreDeleteOffsets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, s := openStoreLog(t, dir, defaultOffsetsSizing)
	a0, a1, b0 := TopicPartition{"a", 0}, TopicPartition{"a", 1}, TopicPartition{"b", 0}
	if err := s.Commit(ctx, "g", map[TopicPartition]CommittedOffset{a0: {Offset: 1}, a1: {Offset: 2}, b0: {Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteOffsets(ctx, "g", []TopicPartition{a1, b0, b0, {"c", 0}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []TopicPartition{a1, b0}) {
		t.Fatalf("deleted %v", deleted)
	}
	if deleted, err := s.DeleteOffsets(ctx, "nobody", []TopicPartition{a0}); err != nil || deleted != nil {
		t.Fatalf("unknown group: %v %v", deleted, err)
	}
	left := func() []TopicPartition {
		var out []TopicPartition
		for tp := range s.Fetch("g") {
			out = append(out, tp)
		}
		return out
	}
	if got := left(); !slices.Equal(got, []TopicPartition{a0}) {
		t.Fatalf("left %v", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, s = openStoreLog(t, dir, defaultOffsetsSizing)
	defer l.Close()
	if got := left(); !slices.Equal(got, []TopicPartition{a0}) {
		t.Fatalf("after reopening: %v", got)
	}
}
