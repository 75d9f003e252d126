package queries

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
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
		want := []string{
			`{"auction":1,"bidder":1,"price":500,"dateTime":1436918401000,"extra":"x"}`,
			`{"auction":3,"bidder":3,"price":500,"dateTime":1436918410000,"extra":"x"}`,
			`{"auction":4,"bidder":4,"price":900,"dateTime":1436918412000,"extra":"x"}`,
			`{"auction":5,"bidder":5,"price":100,"dateTime":1436918420000,"extra":"x"}`,
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
	for _, q := range []string{"q0", "q5"} {
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
	if !errorsAs(err, &se) {
		t.Fatalf("error %v, want a *nexmark.SyntaxError", err)
	}
}
