package pipeline

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// startExample starts the example pipeline in file with its postgres_cdc
// source reading table through the fixture's slot and publication, its
// first (postgres) sink writing target and its checkpoints in a
// temporary directory; the job is cancelled when the test ends.
func (f *cdcFixture) startExample(file, table, target string) *Job {
	f.t.Helper()
	spec, err := ParseFile(file)
	if err != nil {
		f.t.Fatal(err)
	}
	src := spec.Source.cfg.(*pgcdcConfig)
	src.cfg.DSN, src.cfg.Tables, src.cfg.Slot, src.cfg.Publication = f.dsn, []string{"public." + table}, f.slot, f.pub
	sink := spec.Sinks[0].cfg.(*postgresConfig)
	sink.cfg.DSN, sink.cfg.Table = f.dsn, target
	spec.Checkpoint.Dir = f.t.TempDir()
	return f.startSpec(spec)
}

// TestExamplePostgresCDC runs examples/postgres-cdc-replicate.yaml
// against the test server, with its table, slot, publication and replica
// renamed for the test: the replica follows the snapshot and the changes
// (the example upper-cases status).
func TestExamplePostgresCDC(t *testing.T) {
	f := newCDCFixture(t)
	orders, replica := f.target("cdc_orders"), f.target("cdc_orders_replica")
	f.exec("CREATE TABLE " + orders + " (id bigint PRIMARY KEY, customer text, status text, amount numeric(10,2))")
	f.exec("INSERT INTO " + orders + " SELECT i, 'c' || (i % 10), 'paid', i * 1.25 FROM generate_series(1, 200) i")
	j := f.startExample("../examples/postgres-cdc-replicate.yaml", orders, replica)
	want := "SELECT id, customer, upper(status), amount::float8 FROM " + orders
	got := "SELECT id, customer, status, amount FROM " + replica
	f.waitEqual(want, got, j)
	f.exec("UPDATE " + orders + " SET status = 'refunded' WHERE id % 10 = 0")
	f.exec("DELETE FROM " + orders + " WHERE id > 190")
	f.exec("INSERT INTO " + orders + " VALUES (500, 'new', 'open', 9.99)")
	f.waitEqual(want, got, j)
	// The source's metrics: 200 snapshot reads, 20+10+1 changes.
	reg := prometheus.NewRegistry()
	reg.MustRegister(j.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			vals[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if vals["sluice_pipeline_postgres_cdc_records_total"] != 231 || vals["sluice_pipeline_postgres_cdc_snapshot_records_total"] != 200 {
		t.Errorf("metrics %v", vals)
	}
	if _, ok := vals["sluice_pipeline_postgres_cdc_slot_lag_bytes"]; !ok {
		t.Errorf("no slot lag metric: %v", vals)
	}
}

// TestExamplePostgresCDCWindow runs examples/postgres-cdc-window.yaml
// against the test server (its table, slot, publication and target
// renamed): the hours' results reflect the orders deleted, updated and
// moved to another hour before the watermark passed them.
func TestExamplePostgresCDCWindow(t *testing.T) {
	f := newCDCFixture(t)
	orders, hourly := f.target("cdc_win_orders"), f.target("cdc_orders_hourly")
	f.exec("CREATE TABLE " + orders + " (id bigint PRIMARY KEY, status text, amount numeric(10,2), created_ms bigint)")
	const h = 3_600_000
	// Created within 10:00-10:34: with 10 minutes out of orderness no
	// hour fires before the order at 20:00, whenever the snapshot is
	// read relative to the changes below.
	f.exec("INSERT INTO "+orders+" SELECT i, CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'open' END, i * 1.5, $1::bigint + i * 20000 FROM generate_series(1, 100) i", 10*h)
	j := f.startExample("../examples/postgres-cdc-window.yaml", orders, hourly)
	f.exec("DELETE FROM " + orders + " WHERE id % 10 = 0")
	f.exec("UPDATE " + orders + " SET amount = amount + 100 WHERE id % 7 = 0")
	f.exec("UPDATE "+orders+" SET created_ms = created_ms + $1 WHERE id = 5", h) // to the next hour
	// A much later order moves the watermark past hours 10 to 12.
	f.exec("INSERT INTO "+orders+" VALUES (1000, 'paid', 1, $1)", 20*h)
	want := "SELECT status, (created_ms / " + fmt.Sprint(h) + ") * " + fmt.Sprint(h) + " AS hour, count(*), sum(amount)::float8, max(amount)::float8 FROM " + orders +
		" WHERE id < 1000 GROUP BY 1, 2"
	got := "SELECT status, window_start, orders, revenue::float8, largest::float8 FROM " + hourly
	f.waitEqual(want, got, j)
}
