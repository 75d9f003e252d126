package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestExamplePostgresCDC runs examples/postgres-cdc-replicate.yaml
// against the test server, with its table, slot, publication and replica
// renamed for the test: the replica follows the snapshot and the changes
// (the example upper-cases status).
func TestExamplePostgresCDC(t *testing.T) {
	f := newCDCFixture(t)
	orders, replica := f.target("cdc_orders"), f.target("cdc_orders_replica")
	f.exec("CREATE TABLE " + orders + " (id bigint PRIMARY KEY, customer text, status text, amount numeric(10,2))")
	f.exec("INSERT INTO " + orders + " SELECT i, 'c' || (i % 10), 'paid', i * 1.25 FROM generate_series(1, 200) i")
	spec, err := ParseFile("../examples/postgres-cdc-replicate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := spec.Source.cfg.(*pgcdcConfig)
	src.cfg.DSN, src.cfg.Tables, src.cfg.Slot, src.cfg.Publication = f.dsn, []string{"public." + orders}, f.slot, f.pub
	sink := spec.Sinks[0].cfg.(*postgresConfig)
	sink.cfg.DSN, sink.cfg.Table = f.dsn, replica
	spec.Checkpoint.Dir = t.TempDir()
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	j, err := plan.Start(context.Background(), &Host{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		j.Cancel()
		<-j.Done()
	}()
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
