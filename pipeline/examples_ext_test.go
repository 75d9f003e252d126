package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/connector"
	nethttp "github.com/sluicehq/sluice/connector/http"
	"github.com/sluicehq/sluice/stream"
)

func testPostgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL at %s (set SLUICE_TEST_POSTGRES_DSN): %v", dsn, err)
	}
	conn.Close(ctx)
	return dsn
}

func exampleLines(t *testing.T) [][]byte {
	data, err := os.ReadFile("../examples/data/orders.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// TestExampleKafkaToPostgres runs examples/kafka-to-postgres-revenue.yaml
// against a fake Kafka cluster (franz-go's kfake) holding the example
// orders and a real PostgreSQL server, twice: the second run over the same
// input leaves the same rows.
func TestExampleKafkaToPostgres(t *testing.T) {
	dsn := testPostgres(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"), kfake.SeedTopics(1, "revenue"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	lines := exampleLines(t)
	for _, l := range lines {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: l}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	table := fmt.Sprintf("sluice_example_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Exec(ctx, "DROP TABLE IF EXISTS "+table)
			conn.Close(ctx)
		}
	})
	run := func() {
		spec, err := ParseFile("../examples/kafka-to-postgres-revenue.yaml")
		if err != nil {
			t.Fatal(err)
		}
		src := spec.Source.cfg.(*kafkaSourceConfig)
		src.cfg.Brokers, src.cfg.Bounded, src.cfg.Group = brokers, true, ""
		pg := spec.Sinks[0].cfg.(*postgresConfig)
		pg.cfg.DSN, pg.cfg.Table, pg.cfg.CheckpointTable = dsn, table, table+"_ckpt"
		spec.Sinks[1].cfg.(*kafkaSinkConfig).cfg.Brokers = brokers
		spec.Errors.DeadLetter.cfg.(*fileSinkConfig).cfg.Path = t.TempDir()
		// A fresh checkpoint directory: each run reads the whole input
		// (a run restored from the previous one's final checkpoint would
		// read nothing).
		spec.Checkpoint.Dir = t.TempDir()
		p, err := Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		j, err := p.Start(ctx, &Host{})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
		if s := j.Summary(); s.RecordsIn != int64(len(lines)) || s.Failed != 2 {
			t.Fatalf("summary %+v; want %d records in, 2 failed", s, len(lines))
		}
	}
	var revenue float64
	count := func() (rows, orders int64) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(sum(orders), 0), coalesce(sum(revenue), 0)::float8 FROM "+table).Scan(&rows, &orders, &revenue); err != nil {
			t.Fatal(err)
		}
		return rows, orders
	}
	// The oracle: paid orders with an event time, and their (user, minute)
	// windows.
	wantOrders, windows, wantRevenue := int64(0), map[string]bool{}, 0.0
	for _, l := range lines {
		s := string(l)
		if !strings.Contains(s, `"status":"paid"`) || !strings.Contains(s, `"ts":`) || !strings.HasSuffix(s, "}") {
			continue
		}
		var ts int64
		var user string
		fmt.Sscanf(s[strings.Index(s, `"ts":`)+5:], "%d", &ts)
		u := s[strings.Index(s, `"user_id":"`)+11:]
		user = u[:strings.IndexByte(u, '"')]
		wantOrders++
		windows[fmt.Sprintf("%s/%d", user, ts-ts%60000)] = true
		var o struct{ Price, Qty float64 }
		if err := json.Unmarshal(l, &o); err != nil {
			t.Fatal(err)
		}
		wantRevenue += o.Price * o.Qty
	}
	run()
	rows, orders := count()
	if rows != int64(len(windows)) || orders != wantOrders {
		t.Fatalf("first run: %d rows with %d orders; want %d rows, %d orders", rows, orders, len(windows), wantOrders)
	}
	if math.Abs(revenue-wantRevenue) > 1e-6*wantRevenue {
		t.Fatalf("first run: revenue %v; want %v", revenue, wantRevenue)
	}
	run()
	if r2, o2 := count(); r2 != rows || o2 != orders {
		t.Fatalf("second run changed the table: %d rows, %d orders", r2, o2)
	}
}

// TestExampleHTTPToParquet runs examples/http-to-parquet.yaml on a free
// port, posts the example orders to it, ends the input and checks that
// committed .parquet files appeared.
func TestExampleHTTPToParquet(t *testing.T) {
	spec, err := ParseFile("../examples/http-to-parquet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec.Source.cfg.(*httpSourceConfig).cfg.Addr = "127.0.0.1:0"
	out := t.TempDir()
	spec.Sinks[0].cfg.(*parquetConfig).cfg.Path = out
	spec.Errors.DeadLetter.cfg.(*fileSinkConfig).cfg.Path = filepath.Join(out, "dead")
	spec.Checkpoint.Dir = filepath.Join(out, "checkpoints")
	// Under exactly_once the request is answered once a checkpoint
	// covers it: do not wait the example's 10 s for one.
	spec.Checkpoint.Interval = 50 * time.Millisecond
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	var src *nethttp.Source
	host := &Host{OnSourceOpen: func(_ string, s stream.Source[connector.Message]) { src = s.(*nethttp.Source) }}
	j, err := p.Start(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile("../examples/data/orders.jsonl")
	// Post the valid lines (the example file has two bad ones, which the
	// endpoint would refuse as a whole request).
	var good bytes.Buffer
	for _, l := range bytes.Split(body, []byte("\n")) {
		if bytes.HasSuffix(l, []byte("}")) && bytes.Contains(l, []byte(`"ts"`)) {
			good.Write(l)
			good.WriteByte('\n')
		}
	}
	resp, err := http.Post("http://"+src.Addr()+"/ingest", "application/x-ndjson", &good)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ingest answered %s", resp.Status)
	}
	src.Stop()
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.parquet"))
	if len(files) == 0 || j.Summary().RecordsOut == 0 {
		t.Fatalf("no parquet output: %v, %+v", files, j.Summary())
	}
	// Every window reached the files (none rejected by a column type
	// guessed from the first rows), and the files read back.
	if s := j.Summary(); s.Failed != 0 {
		t.Fatalf("%d records failed: %+v", s.Failed, s)
	}
	if rows := parquetRows(t, out); int64(len(rows)) != j.Summary().RecordsOut {
		t.Fatalf("%d rows in the files, %d records out", len(rows), j.Summary().RecordsOut)
	}
}
