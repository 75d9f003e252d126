package mysqlcdc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
)

// readErr reads until Read fails (or a deadline).
func readErr(t *testing.T, cfg Config, pos []byte) error {
	t.Helper()
	_, sp := openSplit(t, cfg, pos)
	buf := make([]connector.Message, 16)
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		if _, err := sp.Read(context.Background(), buf); err != nil {
			return err
		}
	}
	t.Fatal("no error")
	return nil
}

// TestFatalErrors: what reconnecting cannot cure fails the job with a
// sentence saying what to do.
func TestFatalErrors(t *testing.T) {
	c := server(t)
	nopk := newTable(t, c, "nopk", "id INT, v INT")
	if err := readErr(t, testConfig(nopk), nil); !strings.Contains(err.Error(), "no primary key") {
		t.Errorf("table without a key: %v", err)
	}
	if err := readErr(t, testConfig("test.no_such_table_x"), nil); !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing table: %v", err)
	}
	ok := newTable(t, c, "fatalpos", "id INT PRIMARY KEY")
	gone := (&position{V: positionVersion, Resume: binlogPos{File: "mysql-bin.999999", Pos: 4}}).encode()
	if err := readErr(t, testConfig(ok), gone); !strings.Contains(err.Error(), "new snapshot") {
		t.Errorf("purged binlog: %v", err)
	}
}
