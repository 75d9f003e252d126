package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/stream"
)

// TestDedupMatchesOracle: the first record of a key is kept, and later
// records of the key before its time + within are dropped. Input in event
// time order, so the oracle is a simple scan.
// stateBackends are the state sections the keyed-step tests run with.
var stateBackends = []struct{ name, spec string }{
	{"memory", ""},
	{"pebble", "state: {backend: pebble, dir: $DIR/state}\n"},
}

func TestDedupMatchesOracle(t *testing.T) {
	for _, st := range stateBackends {
		t.Run(st.name, func(t *testing.T) { testDedupMatchesOracle(t, st.spec) })
	}
}

func testDedupMatchesOracle(t *testing.T, stateSpec string) {
	rng := rand.New(rand.NewPCG(7, 7))
	var recs []map[string]any
	ts := int64(0)
	for i := range 500 {
		ts += rng.Int64N(400)
		recs = append(recs, map[string]any{"ts": ts, "id": rng.IntN(20), "seq": i})
	}
	rows, _, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
steps:
  - dedup: {key: [id], within: 5s}
sink: {stdout: {}}
`+stateSpec, map[string]string{"in.jsonl": jsonLines(recs)})
	if err != nil {
		t.Fatal(err)
	}
	until := map[int]int64{}
	var want []int
	for _, r := range recs {
		id, ts := r["id"].(int), r["ts"].(int64)
		if u, ok := until[id]; ok && ts < u {
			continue
		}
		until[id] = ts + 5000
		want = append(want, r["seq"].(int))
	}
	var got []int
	for _, r := range rows {
		var s int
		fmt.Sscan(fmt.Sprint(r["seq"]), &s)
		got = append(got, s)
	}
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept %v\nwant %v", got, want)
	}
}

// TestJoinMatchesOracle: an inner join on user within 10s of event time.
func TestJoinMatchesOracle(t *testing.T) {
	for _, st := range stateBackends {
		t.Run(st.name, func(t *testing.T) { testJoinMatchesOracle(t, st.spec) })
	}
}

func testJoinMatchesOracle(t *testing.T, stateSpec string) {
	rng := rand.New(rand.NewPCG(9, 9))
	var left, right []map[string]any
	for i := range 150 {
		left = append(left, map[string]any{"ts": int64(i * 100), "user": fmt.Sprintf("u%d", rng.IntN(6)), "order": i})
	}
	for i := range 60 {
		right = append(right, map[string]any{"t": int64(i * 250), "uid": fmt.Sprintf("u%d", rng.IntN(8)), "plan": fmt.Sprintf("p%d", i)})
	}
	left = append(left, map[string]any{"ts": int64(500), "order": 999}) // null key: never joins
	rows, _, err := runSpec(t, `
source:
  file: {path: $DIR/left.jsonl}
  event_time: {field: ts}
steps:
  - join:
      input:
        file: {path: $DIR/right.jsonl}
        event_time: {field: t}
      key: [user]
      input_key: [uid]
      within: 2s
      fields: [plan]
      prefix: user_
  - map: {order: order, plan: user_plan}
sink: {stdout: {}}
`+stateSpec, map[string]string{"left.jsonl": jsonLines(left), "right.jsonl": jsonLines(right)})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range left {
		if l["user"] == nil {
			continue
		}
		for _, r := range right {
			d := r["t"].(int64) - l["ts"].(int64)
			if l["user"] == r["uid"] && d >= -2000 && d <= 2000 {
				want = append(want, fmt.Sprintf("%v/%v", l["order"], r["plan"]))
			}
		}
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%v/%v", r["order"], r["plan"]))
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %d pairs %v\nwant %d %v", len(got), got, len(want), want)
	}
}

func TestSetPassesUnreferencedFieldsThrough(t *testing.T) {
	rows, _, err := runSpec(t, `
source: {file: {path: $DIR/in.jsonl}}
steps:
  - set: {total: price * qty, price: price + 1}
  - filter: total > 5
sink: {stdout: {}}
`, map[string]string{"in.jsonl": `{"price":2,"qty":3,"note":"x","nested":{"a":[1,2]},"total":"old"}
{"price":1,"qty":1,"note":"dropped"}
`})
	if err != nil {
		t.Fatal(err)
	}
	got := canon(rows)
	want := `{"nested":{"a":[1,2]},"note":"x","price":3,"qty":3,"total":6}`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

func TestCSVInput(t *testing.T) {
	rows, _, err := runSpec(t, `
source:
  file: {path: $DIR/csv}
  format: csv
  types: {zip: string}
steps:
  - filter: n >= 2
sink: {stdout: {}}
`, map[string]string{
		"csv/a.csv": "name,n,zip\n\"Smith, J\",2,01234\nlow,1,00000\n",
		"csv/b.csv": "zip,name,n\n99999,other,5\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := canon(rows)
	want := []string{`{"n":2,"name":"Smith, J","zip":"01234"}`, `{"n":5,"name":"other","zip":"99999"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

const badInput = `{"ts":1,"a":1}
not json
{"a":2}
{"ts":"yesterday","a":3}
{"ts":4,"a":"x"}
{"ts":5,"a":5}
`

func TestToleranceNoneFailsTheJob(t *testing.T) {
	_, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
sink: {stdout: {}}
`, map[string]string{"in.jsonl": badInput})
	if !errors.Is(err, ErrTolerance) {
		t.Fatalf("err = %v, want ErrTolerance", err)
	}
	if !strings.Contains(err.Error(), "in.jsonl offset 2") || !strings.Contains(err.Error(), "decode") {
		t.Errorf("error does not name the origin, offset and stage: %v", err)
	}
	if j.DeadLetters() < 1 {
		t.Errorf("failed record not counted")
	}
}

func TestDeadLetters(t *testing.T) {
	rows, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
steps:
  - map: {a: a, b: a * 2}
sink: {stdout: {}}
errors: {tolerance: all, dead_letter: {file: {path: $DIR/dead}}}
`, map[string]string{"in.jsonl": badInput})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || j.DeadLetters() != 4 {
		t.Fatalf("%d rows, %d dead letters; want 2 and 4", len(rows), j.DeadLetters())
	}
	// The dead letters are in one committed part file in the directory.
	var dir string
	for _, r := range rows {
		_ = r
	}
	dir = filepath.Dir(j.plan.Spec.Errors.DeadLetter.cfg.(*fileSinkConfig).cfg.Path + "/x")
	parts, _ := filepath.Glob(filepath.Join(dir, "part-*.jsonl"))
	if len(parts) != 1 {
		t.Fatalf("dead-letter parts: %v", parts)
	}
	data, _ := os.ReadFile(parts[0])
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("dead letters:\n%s", data)
	}
	for _, want := range []string{`"stage":"source.decode"`, `"offset":3`, `"stage":"source.event_time"`, `"stage":"steps[0].map.b"`, `"record":"not json"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("dead letters lack %s:\n%s", want, data)
		}
	}
}

// TestEventTimeOutOfRangeIsBadRecord: an event time outside the years
// 0000-9999 (microseconds or nanoseconds written where milliseconds
// belong, a sentinel such as the largest int64) is a bad record. Taken
// as it was, it pushed the watermark thousands of years ahead, so that
// every later record was late and dropped, or overflowed a window's end
// (a sliding window put times of both ends of int64 together).
func TestEventTimeOutOfRangeIsBadRecord(t *testing.T) {
	var in strings.Builder
	bad := []string{"1700000000000000", "1700000000000000000", "9223372036854775807", "-9223372036854775808", `"1700000000000000"`, "1.7e15"}
	want := map[int64]int64{} // window start -> count
	for i := range 40 {
		ts := int64(1_700_000_000_000 + i*1000)
		fmt.Fprintf(&in, `{"ts":%d}`+"\n", ts)
		want[ts-ts%10_000]++
		if i%7 == 3 {
			fmt.Fprintf(&in, `{"ts":%s}`+"\n", bad[(i/7)%len(bad)])
		}
	}
	for _, win := range []string{"tumbling: 10s", "sliding: {size: 10s, slide: 10s}"} {
		rows, j, err := runSpec(t, `
source:
  file: {path: $DIR/in.jsonl}
  event_time: {field: ts}
steps:
  - window: {`+win+`, aggregate: {n: count()}}
sink: {stdout: {}}
errors: {tolerance: all}
parallelism: 1
`, map[string]string{"in.jsonl": in.String()}, WithStreamOptions(stream.WithBatchSize(1)))
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]int64{}
		for _, r := range rows {
			s, _ := r["window_start"].(json.Number).Int64()
			n, _ := r["n"].(json.Number).Int64()
			got[s] += n
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: windows %v, want %v", win, got, want)
		}
		if d := j.DeadLetters(); d != 6 {
			t.Errorf("%s: %d bad records, want 6", win, d)
		}
	}
}

// TestGenerateStartAtEpoch: generate's start: 0 (or the epoch in RFC
// 3339) is the time of record 0 like any other start; it was taken for
// "not set" and replaced by the wall clock, so records were not the same
// from one run (or restore) to the next.
func TestGenerateStartAtEpoch(t *testing.T) {
	for _, start := range []string{"0", `"1970-01-01T00:00:00Z"`} {
		rows, _, err := runSpec(t, `
source:
  generate: {count: 3, splits: 1, start: `+start+`, interval: 1s}
sink: {stdout: {}}
`, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ts []string
		for _, r := range rows {
			ts = append(ts, fmt.Sprint(r["ts"]))
		}
		if got := strings.Join(ts, " "); got != "0 1000 2000" {
			t.Errorf("start %s: ts %s, want 0 1000 2000", start, got)
		}
	}
}
