package auth

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/logstore"
)

func openTestLog(t *testing.T, dir string) *logstore.Log {
	t.Helper()
	l, err := logstore.Open(logstore.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler), RetentionCheckInterval: -1, Cleaner: logstore.CleanerOptions{Interval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestQuotaPrecedence checks Resolve against Kafka's order of precedence,
// from the most specific entity to the least, and that quotas persist.
func TestQuotaPrecedence(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	ctx := context.Background()
	q, err := OpenQuotas(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	set := func(e QuotaEntity, v float64) {
		t.Helper()
		if err := q.Alter(ctx, e, map[string]float64{ProducerByteRate: v}, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	// Each level, from least to most specific; after adding each, it wins.
	levels := []QuotaEntity{
		{ClientID: Default}, {ClientID: "app"}, {User: Default}, {User: Default, ClientID: Default},
		{User: Default, ClientID: "app"}, {User: "alice"}, {User: "alice", ClientID: Default}, {User: "alice", ClientID: "app"},
	}
	for i, e := range levels {
		set(e, float64(i+1))
		v, from, ok := q.Resolve("alice", "app", ProducerByteRate)
		if !ok || v != float64(i+1) || from != e {
			t.Fatalf("after setting %+v: got %v from %+v (%v)", e, v, from, ok)
		}
	}
	// Another user falls back to the defaults.
	if v, from, _ := q.Resolve("bob", "app", ProducerByteRate); v != 5 || from != (QuotaEntity{User: Default, ClientID: "app"}) {
		t.Fatalf("bob/app: %v from %+v", v, from)
	}
	if _, _, ok := q.Resolve("bob", "app", ConsumerByteRate); ok {
		t.Fatal("a consumer quota nobody set applies")
	}
	// Removing a key; bad input.
	if err := q.Alter(ctx, QuotaEntity{User: "alice", ClientID: "app"}, nil, []string{ProducerByteRate}, false); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []error{
		q.Alter(ctx, QuotaEntity{}, map[string]float64{ProducerByteRate: 1}, nil, false),
		q.Alter(ctx, QuotaEntity{User: "x"}, map[string]float64{"request_rate": 1}, nil, false),
		q.Alter(ctx, QuotaEntity{User: "x"}, map[string]float64{ProducerByteRate: -1}, nil, false),
	} {
		if !errors.Is(bad, ErrBadQuota) {
			t.Fatalf("bad quota accepted: %v", bad)
		}
	}
	l.Close()
	l = openTestLog(t, dir)
	defer l.Close()
	q, err = OpenQuotas(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := q.Resolve("alice", "app", ProducerByteRate); v != 7 {
		t.Fatalf("after restart alice/app resolves to %v, want 7 (alice/<default>)", v)
	}
	if n := len(q.List(nil)); n != 7 {
		t.Fatalf("%d entities after restart, want 7", n)
	}
}
