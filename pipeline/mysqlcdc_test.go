package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestExampleMySQLCDC runs examples/mysql-cdc-orders.yaml against the
// local MariaDB on a fresh table: the snapshot's rows and then the
// changes arrive, committed, in the file sink.
func TestExampleMySQLCDC(t *testing.T) {
	c, err := client.ConnectWithTimeout("127.0.0.1:3306", "root", "", "", 5*time.Second)
	if err != nil {
		t.Skipf("no MariaDB at 127.0.0.1:3306 (%v): scripts/start-services.sh starts it", err)
	}
	defer c.Close()
	r, err := c.Execute("SELECT @@log_bin, @@binlog_format")
	if err != nil {
		t.Fatal(err)
	}
	if lb, _ := r.GetString(0, 0); lb != "1" && lb != "ON" {
		t.Skipf("MariaDB's binary log is off (log_bin=%s): scripts/start-services.sh turns it on", lb)
	}
	table := fmt.Sprintf("test.orders_example_%d", rand.Uint32())
	for _, q := range []string{
		"CREATE TABLE " + table + " (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2))",
		"INSERT INTO " + table + " VALUES (1, 'ann', 9.50), (2, 'bob', 20.00)",
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	defer c.Execute("DROP TABLE IF EXISTS " + table)

	spec, err := ParseFile("../examples/mysql-cdc-orders.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, ok := spec.Source.cfg.(*mysqlCDCConfig)
	if !ok {
		t.Fatalf("source is %T", spec.Source.cfg)
	}
	cfg.cfg.Tables = []string{table}
	cfg.cfg.ServerID = 5500 + rand.Uint32N(400)
	out := t.TempDir()
	sink := spec.Sinks[0].cfg.(*fileSinkConfig)
	sink.cfg.Path = filepath.Join(out, "changes")
	spec.Checkpoint.Dir = filepath.Join(out, "checkpoints")
	spec.Checkpoint.Interval = 200 * time.Millisecond
	plan, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := plan.Start(ctx, &Host{DataDir: out})
	if err != nil {
		t.Fatal(err)
	}
	ops := func() string {
		s := ""
		files, _ := filepath.Glob(filepath.Join(out, "changes", "part-*"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				var ch struct {
					Op string `json:"op"`
				}
				if err := json.Unmarshal(sc.Bytes(), &ch); err != nil {
					t.Fatalf("%s: %v", sc.Text(), err)
				}
				s += ch.Op
			}
		}
		return s
	}
	waitOps := func(want string) {
		t.Helper()
		end := time.Now().Add(60 * time.Second)
		for ops() != want {
			if time.Now().After(end) {
				t.Fatalf("committed ops %q, want %q", ops(), want)
			}
			time.Sleep(20 * time.Millisecond) // polling the sink's directory
		}
	}
	waitOps("rr")
	for _, q := range []string{
		"INSERT INTO " + table + " VALUES (3, 'cy', 1.00)",
		"UPDATE " + table + " SET amount = 12 WHERE id = 1",
		"DELETE FROM " + table + " WHERE id = 2",
	} {
		if _, err := c.Execute(q); err != nil {
			t.Fatal(err)
		}
	}
	waitOps("rrcud")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(j.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		switch mf.GetName() {
		case "sluice_pipeline_connector_records_total":
			for _, m := range mf.GetMetric() {
				if labelOf(m, "connector") != "mysql_cdc" || labelOf(m, "field") != "source" {
					continue
				}
				found = true
				if v := m.GetCounter().GetValue(); v != 5 {
					t.Errorf("records metric %v, want 5", v)
				}
			}
		case "sluice_pipeline_mysql_cdc_records_total":
			t.Errorf("%s still exported: mysql_cdc's records are the connector meter's", mf.GetName())
		case "sluice_pipeline_connector_lag_messages":
			for _, m := range mf.GetMetric() {
				if labelOf(m, "connector") == "mysql_cdc" {
					t.Errorf("%s exported for mysql_cdc: its lag is in seconds", mf.GetName())
				}
			}
		case "sluice_pipeline_mysql_cdc_lag_seconds":
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v < 0 {
				t.Errorf("lag %v seconds, want >= 0", v)
			}
		}
	}
	if !found {
		t.Error(`no sluice_pipeline_connector_records_total{connector="mysql_cdc",field="source"} metric`)
	}
	cancel()
	if err := j.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// labelOf returns the value of m's label name, or "".
func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
