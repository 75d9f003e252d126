package queries

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/nexmark"
)

// testConfig spreads events thinly over event time (1,000 events/s) so that
// a small run spans many windows and has bids at exact window boundaries.
func testConfig() nexmark.Config {
	cfg := nexmark.DefaultConfig()
	cfg.EventRate = 1000
	return cfg
}

const testEvents = 30_000

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
	}
}

// TestQueriesMatchOracles runs every query at parallelism 1, 2 and 4 and
// checks that the result fingerprint is the same at every parallelism and
// equal to the oracle's.
func TestQueriesMatchOracles(t *testing.T) {
	cfg := testConfig()
	want := oracleFingerprints(generateEvents(cfg, testEvents))
	for _, name := range Queries() {
		t.Run(name, func(t *testing.T) {
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
			t.Logf("%s: %d rows, checksum %s", name, w.Rows, w)
		})
	}
}

func TestUnknownQuery(t *testing.T) {
	_, err := Run(context.Background(), RunConfig{Query: "q99", Events: 10})
	if !errors.Is(err, ErrUnknownQuery) {
		t.Fatalf("Run(q99) error %v, want ErrUnknownQuery", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
