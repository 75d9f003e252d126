package queries

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/nexmark"
)

// testConfig spreads events thinly over event time (500 events/s) so that
// a small run spans several windows and has bids at exact window
// boundaries.
func testConfig() nexmark.Config {
	cfg := nexmark.DefaultConfig()
	cfg.EventRate = 500
	return cfg
}

const testEvents = 12_000

// oracles maps each query checked against an independent implementation
// to the fingerprint of the oracle's rows.
func oracleFingerprints(events []nexmark.Event) map[string]Fingerprint {
	return map[string]Fingerprint{
		"q0":  FingerprintRows(oracleQ0(events)),
		"q1":  FingerprintRows(oracleQ1(events)),
		"q2":  FingerprintRows(oracleQ2(events)),
		"q3":  FingerprintRows(oracleQ3(events)),
		"q4":  FingerprintRows(oracleQ4(events)),
		"q5":  FingerprintRows(oracleQ5(events)),
		"q7":  FingerprintRows(oracleQ7(events)),
		"q8":  FingerprintRows(oracleQ8(events)),
		"q11": FingerprintRows(oracleQ11(events)),
		"q14": FingerprintRows(oracleQ14(events)),
		"q15": FingerprintRows(oracleQ15(events)),
		"q16": FingerprintRows(oracleQ16(events)),
		"q17": FingerprintRows(oracleQ17(events)),
		"q18": FingerprintRows(oracleQ18(events)),
		"q19": FingerprintRows(oracleQ19(events)),
		"q20": FingerprintRows(oracleQ20(events)),
		"q21": FingerprintRows(oracleQ21(events)),
		"q22": FingerprintRows(oracleQ22(events)),
	}
}

// testConfigs are the generator settings the queries are checked under:
// dense (500 events/s: several windows, bids at exact window boundaries)
// and sparse (1 event/s from 05:50 UTC: more than three hours, every
// hour-of-day class of q14, many windows, sessions that end).
func testConfigs() map[string]nexmark.Config {
	dense := testConfig()
	sparse := nexmark.DefaultConfig()
	sparse.EventRate = 1
	sparse.BaseTime = nexmark.DefaultBaseTime - (18*60+10)*60*1000
	return map[string]nexmark.Config{"dense": dense, "sparse": sparse}
}

// TestQueriesMatchOracles runs every query at parallelism 1, 2 and 4 and
// checks that the result fingerprint is the same at every parallelism and
// equal to the oracle's.
func TestQueriesMatchOracles(t *testing.T) {
	for cname, cfg := range testConfigs() {
		want := oracleFingerprints(generateEvents(cfg, testEvents))
		for _, name := range Queries() {
			if name == "q12" { // processing time: see TestQ12
				continue
			}
			t.Run(cname+"/"+name, func(t *testing.T) {
				w, ok := want[name]
				if !ok {
					t.Fatalf("no oracle for %s", name)
				}
				if w.Rows == 0 {
					t.Fatalf("the oracle finds no rows for %s: the test configuration is too small", name)
				}
				for _, p := range []int{1, 2, 4} {
					r, err := Run(context.Background(), RunConfig{Query: name, Events: testEvents, Generator: &cfg, Parallelism: p, BatchSize: 256})
					if err != nil {
						t.Fatalf("parallelism %d: %v", p, err)
					}
					if r.Results != w.Rows || r.Checksum != w.String() {
						t.Fatalf("parallelism %d: %d rows, checksum %s; oracle: %d rows, checksum %s", p, r.Results, r.Checksum, w.Rows, w)
					}
					if r.Events != testEvents || r.Query != name {
						t.Fatalf("result %+v", r)
					}
				}
				t.Logf("%d rows, checksum %s", w.Rows, w)
			})
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Run(ctx, RunConfig{Query: "q99", Events: 10}); !errors.Is(err, ErrUnknownQuery) {
		t.Fatalf("Run(q99) error %v, want ErrUnknownQuery", err)
	}
	if _, err := Run(ctx, RunConfig{Query: "q5", Events: 10, StateBackend: "disk"}); err == nil {
		t.Fatal("Run accepted state backend disk")
	}
	if _, err := Run(ctx, RunConfig{Query: "q5", Events: -1}); err == nil {
		t.Fatal("Run accepted -1 events")
	}
	bad := nexmark.DefaultConfig()
	bad.EventRate = 0
	if _, err := Run(ctx, RunConfig{Query: "q5", Events: 10, Generator: &bad}); !errors.Is(err, nexmark.ErrInvalidConfig) {
		t.Fatalf("bad generator config: error %v, want nexmark.ErrInvalidConfig", err)
	}
	for _, q := range Queries() {
		if Describe(q) == "" {
			t.Fatalf("%s has no description", q)
		}
		r, err := Run(ctx, RunConfig{Query: q, Events: 0, Parallelism: 2})
		if err != nil || r.Results != 0 {
			t.Fatalf("%s over no events: %+v, %v", q, r, err)
		}
	}
	if Describe("q99") != "" {
		t.Fatal("q99 has a description")
	}
}

// TestQueriesWithCheckpoints: with exactly-once checkpoints taken every few
// milliseconds during the run, every query's checksum is still the
// oracle's.
func TestQueriesWithCheckpoints(t *testing.T) {
	cfg := testConfig()
	want := oracleFingerprints(generateEvents(cfg, testEvents))
	for _, name := range Queries() {
		if name == "q12" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			r, err := Run(context.Background(), RunConfig{Query: name, Events: testEvents, Generator: &cfg, Parallelism: 2, BatchSize: 64,
				CheckpointInterval: 2 * time.Millisecond, CheckpointDir: t.TempDir()})
			if err != nil && strings.Contains(err.Error(), "checkpointing does not support KeyedProcess state yet") {
				// A limitation of the stream engine at the time of
				// writing; this test covers the query once it is lifted.
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if w := want[name]; r.Results != w.Rows || r.Checksum != w.String() {
				t.Fatalf("with checkpoints: %d rows, checksum %s; oracle: %d rows, checksum %s", r.Results, r.Checksum, w.Rows, w)
			}
		})
	}
}

// TestQueriesWithPebbleState: with keyed state in Pebble (and
// checkpoints), the stateful queries give the oracle's checksums.
func TestQueriesWithPebbleState(t *testing.T) {
	cfg := testConfig()
	const events = 4000
	want := oracleFingerprints(generateEvents(cfg, events))
	for _, name := range []string{"q3", "q4", "q5", "q7", "q15", "q16", "q17", "q18", "q19", "q20"} {
		t.Run(name, func(t *testing.T) {
			r, err := Run(context.Background(), RunConfig{Query: name, Events: events, Generator: &cfg, Parallelism: 2,
				StateBackend: "pebble", StateDir: t.TempDir(), CheckpointInterval: 20 * time.Millisecond, CheckpointDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if w := want[name]; r.Results != w.Rows || r.Checksum != w.String() {
				t.Fatalf("pebble state: %d rows, checksum %s; oracle: %d rows, checksum %s", r.Results, r.Checksum, w.Rows, w)
			}
		})
	}
}

// TestQ12 checks what does not depend on the wall clock: every bid is
// counted in exactly one window of 10 s.
func TestQ12(t *testing.T) {
	cfg := testConfig()
	var out bytes.Buffer
	r, err := Run(context.Background(), RunConfig{Query: "q12", Events: testEvents, Generator: &cfg, Parallelism: 2, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	dec := json.NewDecoder(&out)
	for rows := int64(0); ; rows++ {
		var row struct {
			Bidder    int64 `json:"bidder"`
			Count     int64 `json:"bid_count"`
			StartTime int64 `json:"starttime"`
			EndTime   int64 `json:"endtime"`
		}
		if err := dec.Decode(&row); err != nil {
			if rows != r.Results {
				t.Fatalf("%d rows written, %d reported (%v)", rows, r.Results, err)
			}
			break
		}
		if row.EndTime-row.StartTime != 10_000 || row.StartTime%10_000 != 0 {
			t.Fatalf("window [%d, %d)", row.StartTime, row.EndTime)
		}
		total += row.Count
	}
	if want := int64(len(bidsIn(generateEvents(cfg, testEvents)))); total != want {
		t.Fatalf("windows count %d bids, want %d", total, want)
	}
}

func TestReports(t *testing.T) {
	r := Result{Query: "q5", Events: 1000, WallSeconds: 0.5, CPUSeconds: 0.25, EventsPerSecond: 2000, EventsPerCoreSecond: 4000, Results: 3, Checksum: "00000000000000ff"}
	var text, table, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"query:                  q5\n", "events per core-second: 4000\n", "checksum:               00000000000000ff\n"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if err := WriteTable(&table, []Result{r, r}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(table.String(), "\n"); lines != 3 {
		t.Fatalf("table has %d lines:\n%s", lines, table.String())
	}
	if err := json.NewEncoder(&js).Encode(r); err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(js.Bytes(), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"query", "events", "wall_seconds", "cpu_seconds", "events_per_second", "events_per_core_second", "results", "checksum", "gc_cpu_share", "max_rss_bytes"} {
		if _, ok := keys[k]; !ok {
			t.Fatalf("JSON result lacks %q: %s", k, js.String())
		}
	}
	if len(keys) != 10 {
		t.Fatalf("JSON result has %d keys: %s", len(keys), js.String())
	}
}
