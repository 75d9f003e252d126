package queries

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
	"github.com/sluicehq/sluice/stream"
)

func writeEvents(t *testing.T, events []nexmark.Event) string {
	t.Helper()
	var buf []byte
	for i := range events {
		buf = append(nexmark.AppendJSON(buf, &events[i]), '\n')
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func bidAt(t0, offset, auction, bidder, price int64) nexmark.Event {
	return nexmark.Event{Type: nexmark.EventBid, Bid: nexmark.Bid{Auction: auction, Bidder: bidder, Price: price, DateTime: t0 + offset, Channel: "Google", URL: "u", Extra: "x"}}
}

// runLines runs query over the events of path and returns the sorted
// output lines, checking them against the reported fingerprint.
func runLines(t *testing.T, query, path string, parallelism int) []string {
	t.Helper()
	var out bytes.Buffer
	r, err := Run(context.Background(), RunConfig{Query: query, SourceFile: path, Parallelism: parallelism, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if out.Len() == 0 {
		lines = nil
	}
	var fp Fingerprint
	for _, l := range lines {
		fp.Add([]byte(l))
	}
	if fp.Rows != r.Results || fp.String() != r.Checksum {
		t.Fatalf("%s: output has %d rows (%s), result says %d (%s)", query, fp.Rows, fp, r.Results, r.Checksum)
	}
	sort.Strings(lines)
	return lines
}

// TestQ7WindowBoundary: the reference joins a bid with every window whose
// end lies within 10 s after it, ends included, so a bid exactly at a
// window's end matches that window's maximum too.
func TestQ7WindowBoundary(t *testing.T) {
	t0 := nexmark.DefaultBaseTime // a multiple of 10 s
	events := []nexmark.Event{
		bidAt(t0, 1000, 1, 1, 500),  // window 1 maximum
		bidAt(t0, 2000, 2, 2, 400),  // window 1
		bidAt(t0, 10000, 3, 3, 500), // window 2, at window 1's end: matches window 1's maximum
		bidAt(t0, 12000, 4, 4, 900), // window 2 maximum
		bidAt(t0, 20000, 5, 5, 100), // window 3, at window 2's end: below its maximum
	}
	path := writeEvents(t, events)
	for _, p := range []int{1, 3} {
		got := runLines(t, "q7", path, p)
		// q7 writes B.price into the bidder column and B.bidder into the
		// price column: see q7Row.
		want := []string{
			`{"auction":1,"bidder":500,"price":1,"dateTime":1436918401000,"extra":"x"}`,
			`{"auction":3,"bidder":500,"price":3,"dateTime":1436918410000,"extra":"x"}`,
			`{"auction":4,"bidder":900,"price":4,"dateTime":1436918412000,"extra":"x"}`,
			`{"auction":5,"bidder":100,"price":5,"dateTime":1436918420000,"extra":"x"}`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("parallelism %d: got\n%s\nwant\n%s", p, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if fp := FingerprintRows(oracleQ7(events)); fp.Rows != 4 {
			t.Fatalf("oracle finds %d rows", fp.Rows)
		}
	}
}

// TestQ11SessionGap: bids exactly 10 s apart share a session (Flink's
// windows intersect when one ends where the other starts); 10.001 s apart
// they do not.
func TestQ11SessionGap(t *testing.T) {
	t0 := nexmark.DefaultBaseTime
	events := []nexmark.Event{
		bidAt(t0, 0, 1, 7, 100),
		bidAt(t0, 10000, 1, 7, 100),
		bidAt(t0, 20001, 1, 7, 100),
		bidAt(t0, 5000, 1, 8, 100),
	}
	got := runLines(t, "q11", writeEvents(t, events), 2)
	want := []string{
		`{"bidder":7,"bid_count":1,"starttime":1436918420001,"endtime":1436918430001}`,
		`{"bidder":7,"bid_count":2,"starttime":1436918400000,"endtime":1436918420000}`,
		`{"bidder":8,"bid_count":1,"starttime":1436918405000,"endtime":1436918415000}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fp := FingerprintRows(oracleQ11(events)); fp.String() != FingerprintRows(parseQ11(t, want)).String() {
		t.Fatal("oracle disagrees with the expected sessions")
	}
}

func parseQ11(t *testing.T, lines []string) []Q11Row {
	t.Helper()
	rows := []Q11Row{
		{7, 1, 1436918420001, 1436918430001},
		{7, 2, 1436918400000, 1436918420000},
		{8, 1, 1436918405000, 1436918415000},
	}
	for i, r := range rows {
		if got := string(r.AppendJSON(nil)); got != lines[i] {
			t.Fatalf("row %d encodes as %s, want %s", i, got, lines[i])
		}
	}
	return rows
}

// TestFileSourceMatchesGenerator: reading a generated file with any number
// of splits gives the same results as generating.
func TestFileSourceMatchesGenerator(t *testing.T) {
	cfg := testConfig()
	events := generateEvents(cfg, 5000)
	path := writeEvents(t, events)
	for _, q := range []string{"q0", "q4", "q5", "q19"} {
		runLines(t, q, path, 2) // the output holds exactly the fingerprinted rows
		want, err := Run(context.Background(), RunConfig{Query: q, Events: 5000, Generator: &cfg, Parallelism: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []int{1, 2, 3, 7} {
			got, err := Run(context.Background(), RunConfig{Query: q, SourceFile: path, Parallelism: p})
			if err != nil {
				t.Fatal(err)
			}
			if got.Events != 5000 || got.Results != want.Results || got.Checksum != want.Checksum {
				t.Fatalf("%s from file at parallelism %d: %+v, generated: %+v", q, p, got, want)
			}
		}
	}
}

func TestFileSourceErrors(t *testing.T) {
	if _, err := Run(context.Background(), RunConfig{Query: "q0", SourceFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("Run read a missing file")
	}
	path := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(path, []byte("{\"event_type\":2,\"bid\":{}}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), RunConfig{Query: "q0", SourceFile: path, Parallelism: 1})
	var se *nexmark.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v, want a *nexmark.SyntaxError", err)
	}
}

// TestSplitsResumeFromPosition: a split re-created and moved to a saved
// Position continues with exactly the events that were still to come.
func TestSplitsResumeFromPosition(t *testing.T) {
	cfg := testConfig()
	path := writeEvents(t, generateEvents(cfg, 3000))
	sources := map[string]func() stream.Source[nexmark.Event]{
		"generator": func() stream.Source[nexmark.Event] { return &GeneratorSource{Config: cfg, Events: 3000} },
		"file":      func() stream.Source[nexmark.Event] { return &FileSource{Path: path} },
	}
	for name, mk := range sources {
		ctx := context.Background()
		whole, err := mk().Splits(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := mk().Splits(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i := range whole {
			all := readAll(t, whole[i], 1<<30)
			first := readAll(t, resumed[i], 100)
			pos := resumed[i].Position()
			fresh, _ := mk().Splits(ctx, 3)
			if err := fresh[i].Seek(pos); err != nil {
				t.Fatalf("%s split %d: %v", name, i, err)
			}
			rest := readAll(t, fresh[i], 1<<30)
			if len(first)+len(rest) != len(all) {
				t.Fatalf("%s split %d: %d + %d events after resuming, want %d", name, i, len(first), len(rest), len(all))
			}
			for k := range rest {
				if rest[k] != all[len(first)+k] {
					t.Fatalf("%s split %d: event %d differs after resuming", name, i, len(first)+k)
				}
			}
		}
		if err := whole[0].Seek([]byte{1}); err == nil {
			t.Fatalf("%s: Seek accepted a 1-byte position", name)
		}
	}
}

// readAll reads up to limit events (at least) from s in batches of 64.
func readAll(t *testing.T, s stream.Split[nexmark.Event], limit int) []nexmark.Event {
	t.Helper()
	var out []nexmark.Event
	buf := make([]nexmark.Event, 64)
	for len(out) < limit {
		n, err := s.Read(context.Background(), buf[:min(64, limit-len(out))])
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if c, ok := s.(io.Closer); ok {
		c.Close()
	}
	return out
}

func bidFull(t int64, auction, bidder, price int64, channel, extra string) nexmark.Event {
	return nexmark.Event{Type: nexmark.EventBid, Bid: nexmark.Bid{Auction: auction, Bidder: bidder, Price: price, DateTime: t, Channel: channel, URL: "https://www.nexmark.com/a/b/c/item.htm?query=1", Extra: extra}}
}

// TestDailyReportsAcrossMidnight checks the day and minute grouping of
// q15-q17 around a change of day (UTC), against the oracles and by hand.
func TestDailyReportsAcrossMidnight(t *testing.T) {
	mid := nexmark.DefaultBaseTime // 2015-07-15T00:00:00Z
	events := []nexmark.Event{
		bidFull(mid-60_001, 1, 7, 500, "Google", "a"),       // 23:58, rank 1
		bidFull(mid-1, 2, 7, 50_000, "Google", "b"),         // 23:59, rank 2
		bidFull(mid, 1, 8, 5_000_000, "Google", "c"),        // 00:00, rank 3
		bidFull(mid+61_000, 1, 8, 700, "channel-12", "d"),   // 00:01, rank 1
		bidFull(mid+3_600_000, 3, 9, 10_000, "Google", "e"), // 01:00, rank 2
	}
	path := writeEvents(t, events)
	for q, oracle := range map[string]Fingerprint{
		"q15": FingerprintRows(oracleQ15(events)),
		"q16": FingerprintRows(oracleQ16(events)),
		"q17": FingerprintRows(oracleQ17(events)),
	} {
		r, err := Run(context.Background(), RunConfig{Query: q, SourceFile: path, Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		if r.Results != oracle.Rows || r.Checksum != oracle.String() {
			t.Fatalf("%s: %d rows (%s), oracle %d (%s)", q, r.Results, r.Checksum, oracle.Rows, oracle)
		}
	}
	got := runLines(t, "q16", path, 3)
	want := []string{
		`{"channel":"Google","day":"2015-07-14","minute":"23:59","total_bids":2,"rank1_bids":1,"rank2_bids":1,"rank3_bids":0,"total_bidders":1,"rank1_bidders":1,"rank2_bidders":1,"rank3_bidders":0,"total_auctions":2,"rank1_auctions":1,"rank2_auctions":1,"rank3_auctions":0}`,
		`{"channel":"Google","day":"2015-07-15","minute":"01:00","total_bids":2,"rank1_bids":0,"rank2_bids":1,"rank3_bids":1,"total_bidders":2,"rank1_bidders":0,"rank2_bidders":1,"rank3_bidders":1,"total_auctions":2,"rank1_auctions":0,"rank2_auctions":1,"rank3_auctions":1}`,
		`{"channel":"channel-12","day":"2015-07-15","minute":"00:01","total_bids":1,"rank1_bids":1,"rank2_bids":0,"rank3_bids":0,"total_bidders":1,"rank1_bidders":1,"rank2_bidders":0,"rank3_bidders":0,"total_auctions":1,"rank1_auctions":1,"rank2_auctions":0,"rank3_auctions":0}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("q16 got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRankTieBreaks: q18 and q19 break ties on their ORDER BY key by the
// whole bid row (auction, bidder, price, channel, url, dateTime, extra;
// strings by bytes), the smaller first, as the SQL layer does, so their
// results depend neither on arrival order nor on parallelism.
func TestRankTieBreaks(t *testing.T) {
	t0 := nexmark.DefaultBaseTime
	events := []nexmark.Event{
		bidFull(t0+5, 1, 7, 900, "Google", "a"),
		bidFull(t0+5, 1, 7, 300, "Google", "x"), // same time as the one before: the lower price is the smaller row
		bidFull(t0+1, 1, 7, 100, "Apple", "b"),
		bidFull(t0+2, 1, 8, 100, "apple", "d"),
		bidFull(t0+2, 1, 8, 100, "Google", "c"), // "G" < "a" in bytes
		bidFull(t0+0, 1, 9, 100, "Google", "e"), // earliest, but the greatest bidder among the 100s
		bidFull(t0+5, 1, 7, 300, "Google", "x"), // identical to the second
	}
	want18 := []string{
		`{"auction":1,"bidder":7,"price":300,"channel":"Google","url":"https://www.nexmark.com/a/b/c/item.htm?query=1","dateTime":1436918400005,"extra":"x"}`,
		`{"auction":1,"bidder":8,"price":100,"channel":"Google","url":"https://www.nexmark.com/a/b/c/item.htm?query=1","dateTime":1436918400002,"extra":"c"}`,
		`{"auction":1,"bidder":9,"price":100,"channel":"Google","url":"https://www.nexmark.com/a/b/c/item.htm?query=1","dateTime":1436918400000,"extra":"e"}`,
	}
	want19 := []string{
		`"extra":"a","rank_number":1}`,
		`"extra":"b","rank_number":4}`,
		`"extra":"c","rank_number":5}`,
		`"extra":"d","rank_number":6}`,
		`"extra":"e","rank_number":7}`,
		`"extra":"x","rank_number":2}`,
		`"extra":"x","rank_number":3}`,
	}
	reversed := slices.Clone(events)
	slices.Reverse(reversed)
	for oi, evs := range [][]nexmark.Event{events, reversed} {
		path := writeEvents(t, evs)
		for _, par := range []int{1, 2} {
			q18 := runLines(t, "q18", path, par)
			if strings.Join(q18, "\n") != strings.Join(want18, "\n") {
				t.Fatalf("order %d, parallelism %d: q18 got\n%s", oi, par, strings.Join(q18, "\n"))
			}
			q19 := runLines(t, "q19", path, par)
			var ranks []string
			for _, l := range q19 {
				ranks = append(ranks, l[strings.Index(l, `"extra"`):])
			}
			sort.Strings(ranks)
			if strings.Join(ranks, "\n") != strings.Join(want19, "\n") {
				t.Fatalf("order %d, parallelism %d: q19 got\n%s", oi, par, strings.Join(ranks, "\n"))
			}
		}
		for q, fp := range map[string]Fingerprint{"q18": FingerprintRows(oracleQ18(evs)), "q19": FingerprintRows(oracleQ19(evs))} {
			r, err := Run(context.Background(), RunConfig{Query: q, SourceFile: path, Parallelism: 3})
			if err != nil {
				t.Fatal(err)
			}
			if r.Checksum != fp.String() || r.Results != fp.Rows {
				t.Fatalf("%s disagrees with its oracle", q)
			}
		}
	}
}
