package connect

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
)

// eventRow is the oracle: the datagen row of e, built field by field
// from the event struct.
func eventRow(e *nexmark.Event) []row.Value {
	v := make([]row.Value, 26)
	v[0] = row.Int(int64(e.Type))
	switch e.Type {
	case nexmark.EventPerson:
		p := e.Person
		copy(v[1:], []row.Value{row.Int(p.ID), row.String(p.Name), row.String(p.EmailAddress), row.String(p.CreditCard),
			row.String(p.City), row.String(p.State), row.Timestamp(p.DateTime), row.String(p.Extra)})
	case nexmark.EventAuction:
		a := e.Auction
		copy(v[9:], []row.Value{row.Int(a.ID), row.String(a.ItemName), row.String(a.Description), row.Int(a.InitialBid),
			row.Int(a.Reserve), row.Timestamp(a.DateTime), row.Timestamp(a.Expires), row.Int(a.Seller), row.Int(a.Category), row.String(a.Extra)})
	default:
		b := e.Bid
		copy(v[19:], []row.Value{row.Int(b.Auction), row.Int(b.Bidder), row.Int(b.Price), row.String(b.Channel),
			row.String(b.URL), row.Timestamp(b.DateTime), row.String(b.Extra)})
	}
	return v
}

func nexmarkTable(opts Options) SourceTable {
	o := Options{"connector": "nexmark"}
	for k, v := range opts {
		o[k] = v
	}
	return SourceTable{Name: "datagen", Columns: datagenColumns(), Options: o}
}

func TestNexmarkEqualsGenerator(t *testing.T) {
	const events = 3000
	src, info, err := OpenSource(nexmarkTable(Options{"events.num": "3000", "first-event.rate": "10000000", "next-event.rate": "10000000"}), Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Bounded {
		t.Fatal("events.num > 0 must be bounded")
	}
	g, err := nexmark.NewGenerator(nexmark.DefaultConfig(), 0, events)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]row.Value
	var e nexmark.Event
	for g.Next(&e) {
		want = append(want, eventRow(&e))
	}
	for _, par := range []int{1, 3} {
		parts := readAll(t, src, par)
		if len(parts) != par {
			t.Fatalf("parallelism %d: %d splits", par, len(parts))
		}
		// Split i holds events i, i+par, ...
		n := 0
		for i, p := range parts {
			for j, c := range p {
				k := i + j*par
				if c.Op != exec.Insert || !equalVals(c.Vals, want[k]) {
					t.Fatalf("parallelism %d: event %d:\n got %v\nwant %v", par, k, c.Vals, want[k])
				}
				n++
			}
		}
		if n != events {
			t.Fatalf("parallelism %d: %d rows, want %d", par, n, events)
		}
	}
}

func TestNexmarkSubsetAndOptions(t *testing.T) {
	cols := []Column{
		{Name: "bid.price", Type: types.TBigInt, Path: []string{"bid", "price"}},
		{Name: "event_type", Type: types.TInt},
		{Name: "auction.expires", Type: types.TBigInt, Path: []string{"auction", "expires"}},
	}
	opts := Options{"connector": "nexmark", "events.num": "500", "person.proportion": "2", "auction.proportion": "3",
		"bid.proportion": "5", "first-event.rate": "1000", "next-event.rate": "1000", "seed": "7", "bid.avg-size": "150b",
		"keep-alive": "false", "stop-at": "-1", "max-emit-speed": "true", "splits": "2"}
	src, info, err := OpenSource(SourceTable{Name: "t", Columns: cols, Options: opts}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Splits != 2 {
		t.Fatalf("info %+v", info)
	}
	cfg := nexmark.DefaultConfig()
	cfg.PersonProportion, cfg.AuctionProportion, cfg.BidProportion = 2, 3, 5
	cfg.EventRate, cfg.Seed, cfg.AvgBidByteSize = 1000, 7, 150
	got := readAll(t, src, 8) // 'splits' wins over the parallelism
	if len(got) != 2 {
		t.Fatalf("%d splits, want 2", len(got))
	}
	for i, part := range got {
		g, _ := nexmark.NewStridedGenerator(cfg, 500, 2, i)
		var e nexmark.Event
		for j, c := range part {
			if !g.Next(&e) {
				t.Fatal("more rows than events")
			}
			full := eventRow(&e)
			want := []row.Value{full[21], full[0], {}}
			if e.Type == nexmark.EventAuction {
				want[2] = row.Int(e.Auction.Expires)
			}
			if !equalVals(c.Vals, want) {
				t.Fatalf("split %d row %d: got %v want %v", i, j, c.Vals, want)
			}
		}
	}
}

// The JSON file `sluice nexmark generate` writes reads into the datagen
// table as the same rows the nexmark connector produces.
func TestNexmarkFileReadsAsDatagen(t *testing.T) {
	path := filepath.Join("..", "..", "nexmark", "testdata", "first20.jsonl")
	src, _, err := OpenSource(SourceTable{Name: "datagen", Columns: datagenColumns(),
		Options: Options{"connector": "filesystem", "path": path, "format": "json"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	got := flatten(readAll(t, src, 1))
	gen, _, err := OpenSource(nexmarkTable(Options{"events.num": "20"}), Env{})
	if err != nil {
		t.Fatal(err)
	}
	want := flatten(readAll(t, gen, 1))
	if len(got) != 20 || len(want) != 20 {
		t.Fatalf("%d rows from the file, %d generated", len(got), len(want))
	}
	// And independently: the file's lines through nexmark's own decoder.
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := range got {
		var e nexmark.Event
		if err := nexmark.UnmarshalEvent([]byte(lines[i]), &e); err != nil {
			t.Fatal(err)
		}
		if !equalVals(got[i].Vals, eventRow(&e)) || !equalVals(got[i].Vals, want[i].Vals) {
			t.Fatalf("row %d:\nfile %v\n gen %v", i, got[i].Vals, want[i].Vals)
		}
		// Written back with AppendJSON, the row is the line itself.
		if out := AppendJSON(nil, datagenColumns(), got[i].Vals, JSONOptions{}); !bytes.Equal(out, []byte(lines[i])) {
			t.Fatalf("row %d encodes as\n%s\nwant\n%s", i, out, lines[i])
		}
	}
}

func TestNexmarkBadColumn(t *testing.T) {
	cols := []Column{{Name: "bid.prize", Type: types.TBigInt, Path: []string{"bid", "prize"}}}
	_, _, err := OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "nexmark"}}, Env{})
	if err == nil || !strings.Contains(err.Error(), "did you mean 'bid.price'") {
		t.Fatalf("err = %v", err)
	}
	cols = []Column{{Name: "bid.price", Type: types.TVarchar, Path: []string{"bid", "price"}}}
	_, _, err = OpenSource(SourceTable{Name: "t", Columns: cols, Options: Options{"connector": "nexmark"}}, Env{})
	if err == nil || !strings.Contains(err.Error(), "is STRING but the nexmark field bid.price is BIGINT") {
		t.Fatalf("err = %v", err)
	}
}

func TestNexmarkUnboundedSeek(t *testing.T) {
	src, info, err := OpenSource(nexmarkTable(nil), Env{})
	if err != nil || info.Bounded {
		t.Fatalf("%v %+v", err, info)
	}
	splits, _ := src.(*NexmarkSource).Splits(t.Context(), 2)
	buf := make([]exec.Change, 10)
	if n, err := splits[1].Read(t.Context(), buf); n != 10 || err != nil {
		t.Fatal(n, err)
	}
	pos := splits[1].Position()
	n, _ := splits[1].Read(t.Context(), buf)
	next := append([]exec.Change(nil), buf[:n]...)
	if err := splits[1].Seek(pos); err != nil {
		t.Fatal(err)
	}
	splits[1].Read(t.Context(), buf)
	for i := range next {
		if !equalVals(next[i].Vals, buf[i].Vals) {
			t.Fatal("seek does not replay")
		}
	}
	ids := []string{splits[0].ID(), splits[1].ID()}
	sort.Strings(ids)
	if ids[0] != "nexmark-0-of-2" {
		t.Fatal(ids)
	}
}
