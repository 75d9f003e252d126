package connect

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// datagenColumns are the physical columns of the reference's datagen
// table (ddl_gen.sql), flattened as the planner flattens them.
func datagenColumns() []Column {
	ts := types.TTimestamp
	cols := []Column{{Name: "event_type", Type: types.TInt}}
	add := func(row string, fields ...any) {
		for i := 0; i < len(fields); i += 2 {
			name := fields[i].(string)
			cols = append(cols, Column{Name: row + "." + name, Type: fields[i+1].(types.Type), Path: []string{row, name}})
		}
	}
	add("person", "id", types.TBigInt, "name", types.TVarchar, "emailAddress", types.TVarchar, "creditCard", types.TVarchar,
		"city", types.TVarchar, "state", types.TVarchar, "dateTime", ts, "extra", types.TVarchar)
	add("auction", "id", types.TBigInt, "itemName", types.TVarchar, "description", types.TVarchar, "initialBid", types.TBigInt,
		"reserve", types.TBigInt, "dateTime", ts, "expires", ts, "seller", types.TBigInt, "category", types.TBigInt, "extra", types.TVarchar)
	add("bid", "auction", types.TBigInt, "bidder", types.TBigInt, "price", types.TBigInt, "channel", types.TVarchar,
		"url", types.TVarchar, "dateTime", ts, "extra", types.TVarchar)
	return cols
}

// readAll reads every split of src to its end, split by split.
func readAll(t *testing.T, src stream.Source[exec.Change], parallelism int) [][]exec.Change {
	t.Helper()
	splits, err := src.Splits(context.Background(), parallelism)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]exec.Change, len(splits))
	buf := make([]exec.Change, 7) // odd batch size: batches cut anywhere
	for i, sp := range splits {
		for {
			n, err := sp.Read(context.Background(), buf)
			out[i] = append(out[i], buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("split %s: %v", sp.ID(), err)
			}
		}
		if c, ok := sp.(io.Closer); ok {
			c.Close()
		}
	}
	return out
}

func flatten(parts [][]exec.Change) []exec.Change {
	var out []exec.Change
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// writeAll writes recs through one subtask of sink and closes it.
func writeAll(t *testing.T, sink stream.Sink[exec.Change], recs []exec.Change) {
	t.Helper()
	ctx := context.Background()
	w, err := sink.Open(ctx, stream.SubtaskInfo{Operator: "sink", Index: 0, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 5 {
		if err := w.Write(ctx, recs[i:min(i+5, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func equalVals(a, b []row.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
