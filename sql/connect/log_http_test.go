package connect

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

func TestLogRoundTrip(t *testing.T) {
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := Env{Log: l}
	opts := Options{"connector": "sluice", "topic": "events", "format": "json", "sink.partitions": "2", "key.fields": "id"}
	sink, err := OpenSink(SinkTable{Name: "out", Columns: allTypesColumns(), Options: opts}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := allTypesRows()
	writeAll(t, sink, want)
	src, info, err := OpenSource(SourceTable{Name: "in", Columns: allTypesColumns(),
		Options: Options{"connector": "log", "topic": "events", "format": "json", "scan.bounded.mode": "latest-offset"}}, env)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Bounded {
		t.Fatal(info)
	}
	got := flatten(readAll(t, src, 2))
	sort.Slice(got, func(i, j int) bool { return got[i].Vals[0].AsInt() < got[j].Vals[0].AsInt() })
	if len(got) != len(want) {
		t.Fatalf("%d rows", len(got))
	}
	for i := range want {
		if !equalVals(got[i].Vals, want[i].Vals) {
			t.Fatalf("row %d: got %v want %v", i, got[i].Vals, want[i].Vals)
		}
	}
	if _, _, err := OpenSource(SourceTable{Name: "in", Columns: allTypesColumns(), Options: opts}, Env{}); err == nil || !strings.Contains(err.Error(), "no embedded log") {
		t.Fatalf("err = %v", err)
	}
}

func TestHTTPSource(t *testing.T) {
	cols := []Column{col("id", types.TBigInt), col("ts", types.TTimestamp), col("amount", types.DecimalOf(9, 2))}
	src, _, err := OpenSource(SourceTable{Name: "in", Columns: cols, Options: Options{"connector": "http", "address": "127.0.0.1:0"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	hs := src.(*HTTPSource)
	defer hs.Ingest.Close()
	splits, err := src.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []exec.Change)
	go func() {
		var out []exec.Change
		buf := make([]exec.Change, 4)
		for {
			n, err := splits[0].Read(context.Background(), buf)
			out = append(out, buf[:n]...)
			if errors.Is(err, io.EOF) {
				done <- out
				return
			}
			if err != nil {
				t.Error(err)
				done <- out
				return
			}
		}
	}()
	body := `{"id":1,"ts":"2015-07-15T00:00:01Z","amount":"10.5"}` + "\n" + `{"id":2,"ts":1436918402000,"amount":0.01}`
	resp, err := http.Post("http://"+hs.Ingest.Addr()+"/ingest", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	hs.Ingest.Stop()
	got := <-done
	want := [][]row.Value{{row.Int(1), row.Timestamp(1436918401000), row.Int(1050)}, {row.Int(2), row.Timestamp(1436918402000), row.Int(1)}}
	if len(got) != 2 || !equalVals(got[0].Vals, want[0]) || !equalVals(got[1].Vals, want[1]) {
		t.Fatalf("got %v", got)
	}
}
