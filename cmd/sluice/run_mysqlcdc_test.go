package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// mariadb connects to the test MariaDB (or MySQL) server, or skips.
func mariadb(t *testing.T) *client.Conn {
	t.Helper()
	c, err := client.ConnectWithTimeout("127.0.0.1:3306", "root", "", "", 5*time.Second)
	if err != nil {
		t.Skipf("no MariaDB at 127.0.0.1:3306 (%v): scripts/start-services.sh starts it", err)
	}
	r, err := c.Execute("SELECT @@log_bin, @@binlog_format")
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := r.GetString(0, 0)
	f, _ := r.GetString(0, 1)
	if (lb != "1" && lb != "ON") || f != "ROW" {
		c.Close()
		t.Skipf("MariaDB has log_bin=%s binlog_format=%s: CDC needs ON/ROW (scripts/start-services.sh sets them)", lb, f)
	}
	return c
}

type cdcChange struct {
	Op     string         `json:"op"`
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
}

// committedChanges reads the file sink's committed part files in the
// order they were written: runs by their first file's time, parts by
// sequence.
func committedChanges(t *testing.T, dir string) []cdcChange {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	type part struct {
		run   string
		seq   string
		mtime time.Time
		path  string
	}
	var parts []part
	first := map[string]time.Time{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		f := strings.Split(strings.TrimSuffix(e.Name(), ".jsonl"), "-") // part-RUN-SUB-SEQ, RUN may hold dashes
		if len(f) < 4 {
			t.Fatalf("part file %s", e.Name())
		}
		f = []string{f[0], strings.Join(f[1:len(f)-2], "-"), f[len(f)-2], f[len(f)-1]}
		info, err := e.Info()
		if err != nil {
			continue
		}
		p := part{run: f[1], seq: f[3], mtime: info.ModTime(), path: filepath.Join(dir, e.Name())}
		if m, ok := first[p.run]; !ok || p.mtime.Before(m) {
			first[p.run] = p.mtime
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool {
		a, b := parts[i], parts[j]
		if a.run != b.run {
			return first[a.run].Before(first[b.run])
		}
		return a.seq < b.seq
	})
	var out []cdcChange
	for _, p := range parts {
		data, err := os.ReadFile(p.path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var c cdcChange
			d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			d.UseNumber()
			if err := d.Decode(&c); err != nil {
				t.Fatalf("%s: %q: %v", p.path, sc.Text(), err)
			}
			out = append(out, c)
		}
	}
	return out
}

func canonRow(m map[string]any) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// replay applies changes to an empty table image keyed by id, failing on
// any change that contradicts the image (a doubled or missing change).
func replay(changes []cdcChange) (map[string]string, error) {
	img := map[string]string{}
	for i, c := range changes {
		row := c.After
		if row == nil {
			row = c.Before
		}
		key := fmt.Sprint(row["id"])
		old, exists := img[key]
		switch c.Op {
		case "r", "c":
			if exists {
				return nil, fmt.Errorf("change %d: %s of id %s, which exists", i, c.Op, key)
			}
			img[key] = canonRow(c.After)
		case "u", "d":
			if !exists || old != canonRow(c.Before) {
				return nil, fmt.Errorf("change %d: %s of id %s with before %s, the image has %q", i, c.Op, key, canonRow(c.Before), old)
			}
			if c.Op == "u" {
				img[key] = canonRow(c.After)
			} else {
				delete(img, key)
			}
		default:
			return nil, fmt.Errorf("change %d: op %q", i, c.Op)
		}
	}
	return img, nil
}

func mariadbImage(t *testing.T, c *client.Conn, table string) map[string]string {
	t.Helper()
	r, err := c.Execute("SELECT id, v, pad FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	img := map[string]string{}
	for i := range r.RowNumber() {
		id, _ := r.GetInt(i, 0)
		v, _ := r.GetInt(i, 1)
		pad, _ := r.GetString(i, 2)
		img[fmt.Sprint(id)] = canonRow(map[string]any{"id": json.Number(fmt.Sprint(id)), "v": json.Number(fmt.Sprint(v)), "pad": pad})
	}
	return img
}

// TestRunMySQLCDCKilled runs `sluice run` on a mysql_cdc → file pipeline
// under exactly_once while a writer keeps changing the table, SIGKILLs it
// in the middle of the snapshot and again in the middle of the stream,
// and checks that the committed output replays into exactly the table:
// nothing lost, nothing doubled.
func TestRunMySQLCDCKilled(t *testing.T) {
	c := mariadb(t)
	defer c.Close()
	table := fmt.Sprintf("test.crash_%d", rand.Uint32())
	if _, err := c.Execute("CREATE TABLE " + table + " (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	defer c.Execute("DROP TABLE IF EXISTS " + table)
	const rows = 30000
	for from := 0; from < rows; from += 1000 {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " VALUES ")
		for i := from; i < from+1000; i++ {
			if i > from {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d, 0, '%080d')", i, i)
		}
		if _, err := c.Execute(b.String()); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := filepath.Join(dir, "cdc.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(`name: mysqlcdc-crash
source:
  mysql_cdc: {host: 127.0.0.1, port: 3306, user: root, tables: [%s], chunk_rows: 200, server_id: %d}
sink:
  file: {path: %s, roll_bytes: 262144}
checkpoint: {interval: 200ms, dir: %s}
delivery: exactly_once
`, table, 6000+rand.IntN(1000), out, filepath.Join(dir, "chk"))), 0o644)

	// The writer: updates, inserts and deletes, some several to a
	// transaction, until stopped.
	w, err := client.ConnectWithTimeout("127.0.0.1:3306", "root", "", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var nextID atomic.Int64
	nextID.Store(rows)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond) // a steady load, not synchronisation
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var qs []string
			switch n % 4 {
			case 0:
				id := nextID.Add(1)
				qs = []string{fmt.Sprintf("INSERT INTO %s VALUES (%d, 1, 'new')", table, id)}
			case 1:
				qs = []string{fmt.Sprintf("UPDATE %s SET v = v + 1 WHERE id = %d", table, rand.IntN(int(nextID.Load())))}
			case 2:
				qs = []string{fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, rand.IntN(int(nextID.Load())))}
			case 3:
				qs = []string{"BEGIN",
					fmt.Sprintf("UPDATE %s SET v = v + 10 WHERE id BETWEEN %d AND %d", table, n%rows, n%rows+20),
					fmt.Sprintf("INSERT INTO %s VALUES (%d, 2, 'txn')", table, nextID.Add(1)),
					fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, (n*7)%rows), "COMMIT"}
			}
			for _, q := range qs {
				if _, err := w.Execute(q); err != nil {
					werr.Store(err)
					return
				}
			}
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()

	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "run", "--data-dir", filepath.Join(dir, "data"), spec)
		cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN=1")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kill := func(cmd *exec.Cmd) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	detail := ""
	waitFor := func(what string, cond func([]cdcChange) bool) []cdcChange {
		t.Helper()
		end := time.Now().Add(3 * time.Minute)
		for {
			ch := committedChanges(t, out)
			if cond(ch) {
				return ch
			}
			if time.Now().After(end) {
				t.Fatalf("waiting for %s: %d changes committed (%s); logs:\n%s", what, len(ch), detail, logs.String())
			}
			time.Sleep(50 * time.Millisecond) // polling the output files
		}
	}
	count := func(ch []cdcChange, op string) int {
		n := 0
		for _, c := range ch {
			if c.Op == op {
				n++
			}
		}
		return n
	}

	// 1. Killed in the middle of the snapshot.
	cmd := start()
	got := waitFor("the first snapshot rows", func(ch []cdcChange) bool { return len(ch) > 0 })
	kill(cmd)
	got = committedChanges(t, out)
	if n := count(got, "r"); n == 0 || n >= rows-rows/10 || len(got) != n {
		t.Fatalf("killed after %d snapshot rows of %d and %d changes: not mid-snapshot", n, rows, len(got)-n)
	}
	t.Logf("killed mid-snapshot after %d rows", len(got))

	// 2. Killed in the middle of the stream: once a row inserted after
	// the restart (so after the resumed snapshot's point) is committed.
	mark := nextID.Load()
	cmd = start()
	got = waitFor("streamed changes", func(ch []cdcChange) bool {
		for _, c := range ch {
			if c.Op == "c" {
				if id, _ := c.After["id"].(json.Number).Int64(); id > mark+50 {
					return true
				}
			}
		}
		return false
	})
	kill(cmd)
	t.Logf("killed mid-stream after %d changes (%d snapshot rows)", len(got), count(got, "r"))

	// 3. Restarted: runs until the writer stops and the output matches.
	cmd = start()
	defer kill(cmd)
	mark = nextID.Load()
	waitFor("changes after the second restart", func(ch []cdcChange) bool { return len(ch) > len(got)+200 })
	stopWriter()
	if err, _ := werr.Load().(error); err != nil {
		t.Fatalf("writer: %v", err)
	}
	want := mariadbImage(t, c, table)
	waitFor("the replayed output to equal the table", func(ch []cdcChange) bool {
		img, err := replay(ch)
		if err != nil {
			t.Fatalf("replaying the committed output: %v", err)
		}
		detail = fmt.Sprintf("%d rows replayed, %d in the table", len(img), len(want))
		if len(img) != len(want) {
			return false
		}
		for k, v := range want {
			if img[k] != v {
				detail = fmt.Sprintf("id %s: replayed %s, table %s", k, img[k], v)
				return false
			}
		}
		return true
	})
	t.Logf("%d changes replayed into %d rows", len(committedChanges(t, out)), len(want))
}
