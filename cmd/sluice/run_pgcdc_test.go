package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cdcChild is a `sluice run` child process and its log.
type cdcChild struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	log strings.Builder
}

func (c *cdcChild) logged(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Contains(c.log.String(), s)
}

func (c *cdcChild) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

func startCDCRun(t *testing.T, spec, dataDir string) *cdcChild {
	t.Helper()
	c := &cdcChild{cmd: exec.Command(os.Args[0], "run", "--log-format", "text", "--data-dir", dataDir, spec)}
	c.cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr, c.cmd.Stdout = pw, pw
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return c
}

// checkpoints returns the id of the latest complete checkpoint in dir (0:
// none); older ones are deleted as newer ones complete.
func checkpoints(dir string) int {
	m, _ := filepath.Glob(filepath.Join(dir, "chk-*", "MANIFEST"))
	latest := 0
	for _, f := range m {
		var id int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(f)), "chk-%d", &id); err == nil && id > latest {
			latest = id
		}
	}
	return latest
}

func waitFor(t *testing.T, what string, c *cdcChild, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(180 * time.Second)
	for !cond() {
		if c != nil && c.cmd.ProcessState != nil {
			t.Fatalf("%s: the run ended: %s", what, c.text())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; log:\n%s", what, func() string {
				if c == nil {
					return ""
				}
				return c.text()
			}())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunPostgresCDCCrash kills `sluice run` with SIGKILL in the middle
// of the snapshot and again in the middle of the change stream (while
// transactions keep committing) and checks, after a last restart, that a
// GROUP BY over the changes equals the same GROUP BY over the table. The
// table has REPLICA IDENTITY FULL and the changelog no key, so every
// event counts as it is: a change lost or emitted twice shows as a wrong
// count or sum.
func TestRunPostgresCDCCrash(t *testing.T) {
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	db, err := pgx.Connect(cctx, dsn)
	cancel()
	if err != nil {
		t.Skipf("no PostgreSQL at %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close(ctx) }) // after the cleanups below (LIFO)
	var wal string
	if err := db.QueryRow(ctx, "SHOW wal_level").Scan(&wal); err != nil || wal != "logical" {
		t.Skipf("PostgreSQL's wal_level is %q, not logical (%v): run scripts/start-services.sh", wal, err)
	}
	n := fmt.Sprintf("%d", os.Getpid())
	src, agg, slot := "crash_src_"+n, "crash_agg_"+n, "crash_slot_"+n
	exec1 := func(db *pgx.Conn, q string) {
		t.Helper()
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec1(db, "DROP TABLE IF EXISTS "+src+", "+agg)
	exec1(db, "CREATE TABLE "+src+" (id bigint PRIMARY KEY, grp int NOT NULL, qty bigint NOT NULL)")
	exec1(db, "ALTER TABLE "+src+" REPLICA IDENTITY FULL")
	exec1(db, "INSERT INTO "+src+" SELECT i, i % 13, i FROM generate_series(1, 60000) i")
	t.Cleanup(func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1", slot+"%")
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("dropping slot %s: %v", slot, err)
				}
				break
			}
			_, _ = db.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE $1 AND active_pid IS NOT NULL", slot+"%")
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+slot)
		_, _ = db.Exec(ctx, "DROP TABLE IF EXISTS "+src+", "+agg)
	})
	dir := t.TempDir()
	chk := filepath.Join(dir, "checkpoints")
	spec := filepath.Join(dir, "cdc.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(`name: cdc-crash
source:
  postgres_cdc: {dsn: "%s", tables: [public.%s], slot: %s, publication: %s, chunk_rows: 200}
  changelog: {}
steps:
  - sql:
      query: SELECT grp, COUNT(*) AS n, SUM(qty) AS total FROM input GROUP BY grp
      columns: {grp: INT, qty: BIGINT}
sink:
  postgres: {dsn: "%s", table: %s, key: [grp]}
parallelism: 2
checkpoint: {interval: 100ms, dir: %s}
`, dsn, src, slot, slot, dsn, agg, chk)), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")

	// 1. Killed in the middle of the snapshot, after a checkpoint.
	c1 := startCDCRun(t, spec, data)
	waitFor(t, "a checkpoint during the snapshot", c1, func() bool { return checkpoints(chk) > 0 || c1.logged("snapshot done") })
	if err := c1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c1.cmd.Wait()
	if c1.logged("snapshot done") {
		t.Fatalf("the snapshot ended before the first checkpoint: the kill did not hit it:\n%s", c1.text())
	}

	// 2. Changes committing all along, killed in the middle of the stream.
	var stop atomic.Bool
	writerDone := make(chan error, 1)
	go func() {
		w, err := pgx.Connect(ctx, dsn)
		if err != nil {
			writerDone <- err
			return
		}
		defer w.Close(ctx)
		for i := 0; !stop.Load() && i < 20000; i++ {
			base := 100000 + i*10
			for _, q := range []string{
				fmt.Sprintf("INSERT INTO %s SELECT i, i %% 13, i FROM generate_series(%d, %d) i", src, base, base+9),
				fmt.Sprintf("UPDATE %s SET qty = qty + 1, grp = (grp + 1) %% 13 WHERE id IN (%d, %d, %d)", src, 2+i*3, 40000+i, base+1),
				fmt.Sprintf("DELETE FROM %s WHERE id IN (%d, %d)", src, 1+i*3, base+5),
			} {
				if _, err := w.Exec(ctx, q); err != nil {
					writerDone <- err
					return
				}
			}
			// Paces the load (about 15 changes an iteration) so that
			// the pipeline keeps up on a loaded machine.
			time.Sleep(5 * time.Millisecond)
		}
		writerDone <- nil
	}()
	c2 := startCDCRun(t, spec, data)
	waitFor(t, "the resumed snapshot to end", c2, func() bool { return c2.logged("snapshot done") })
	at := checkpoints(chk)
	waitFor(t, "two checkpoints while streaming", c2, func() bool { return checkpoints(chk) >= at+2 })
	if err := c2.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c2.cmd.Wait()
	if !c2.logged("resuming the snapshot") {
		t.Errorf("the second run did not resume the snapshot:\n%s", c2.text())
	}

	// 3. A last run catches up after the writer stops.
	c3 := startCDCRun(t, spec, data)
	waitFor(t, "the stream to resume", c3, func() bool { return checkpoints(chk) >= at+4 })
	stop.Store(true)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	rows := func(q string) string {
		rs, err := db.Query(ctx, q)
		if err != nil {
			return err.Error()
		}
		defer rs.Close()
		var out []string
		for rs.Next() {
			v, _ := rs.Values()
			out = append(out, fmt.Sprint(v...))
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	want := "SELECT grp::bigint, count(*), sum(qty)::bigint FROM " + src + " GROUP BY grp"
	got := "SELECT grp::bigint, n, total::bigint FROM " + agg
	deadline := time.Now().Add(180 * time.Second)
	for rows(want) != rows(got) {
		if time.Now().After(deadline) {
			t.Fatalf("after the crashes the aggregate differs:\nwant %s\n got %s\nlog:\n%s", rows(want), rows(got), c3.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
