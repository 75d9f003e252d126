package sql_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/sql"
	"github.com/sluicehq/sluice/sql/connect"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/stream"
)

// TestIdleTimeoutSetAfterCreateTable: a topic of two partitions, one
// of them empty, read without end. SET 'table.exec.source.idle-timeout'
// after the table's CREATE TABLE (as SET anywhere before the query does
// in Flink) marks the empty partition idle, so the window fires. It was
// read at CREATE TABLE time, and applied only when the query did not read
// every column (projection pushdown plans the table again at query
// time): this query reads them all, so the empty partition held the
// watermark back and the query never emitted anything (the test hangs
// on that code).
func TestIdleTimeoutSetAfterCreateTable(t *testing.T) {
	l, err := logstore.Open(logstore.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sess := sql.NewSession(sql.Options{Connect: connect.Env{Log: l}, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan exec.Change, 16)
	sess.RegisterSink("signal", sql.SinkConnector{Open: func(connect.SinkTable) (stream.Sink[exec.Change], error) {
		return stream.SinkFunc[exec.Change](func(_ context.Context, cs []exec.Change) error {
			for _, c := range cs {
				got <- c
			}
			cancel()
			return nil
		}), nil
	}})
	setup := `
CREATE TABLE events (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
  WITH ('connector' = 'sluice', 'topic' = 'ev', 'format' = 'json', 'sink.partitions' = '2', 'key.fields' = 'k');
CREATE TABLE out (k STRING, ws TIMESTAMP(3), n BIGINT) WITH ('connector' = 'signal');
SET 'parallelism.default' = '2';
INSERT INTO events VALUES ('a', TIMESTAMP '2024-03-01 10:00:01.000'), ('a', TIMESTAMP '2024-03-01 10:00:01.500'), ('a', TIMESTAMP '2024-03-01 10:00:03.000');
SET 'table.exec.source.idle-timeout' = '10 ms';
`
	if err := sess.ExecuteScript(context.Background(), setup); err != nil {
		t.Fatal(err)
	}
	err = sess.ExecuteScript(ctx, `INSERT INTO out SELECT k, window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' SECOND)) GROUP BY k, window_start, window_end`)
	if ctx.Err() == nil {
		t.Fatalf("the query ended without output: %v", err)
	}
	c := <-got
	if n := c.Vals[2].AsInt(); n != 2 {
		t.Fatalf("first window: %v, want a count of 2", c.Vals)
	}
}
