package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/stream"
)

// userService is a local HTTP service: GET /users/NAME answers
// {"user": NAME, "tier": t(NAME)} after a random latency; a share of the
// requests fail with 503; names starting with "bad" get 400, "gone" 404.
type userService struct {
	srv     *httptest.Server
	ok      atomic.Int64
	failed  atomic.Int64
	mu      sync.Mutex
	batches []int // batch sizes seen by /score
}

func tierOf(user string) string {
	h := fnv.New32a()
	h.Write([]byte(user))
	return fmt.Sprintf("t%d", h.Sum32()%5)
}

func newUserService(t testing.TB, maxLatency time.Duration, errRate float64) *userService {
	s := &userService{}
	mux := http.NewServeMux()
	delay := func() {
		if maxLatency > 0 {
			time.Sleep(rand.N(maxLatency)) // the service's latency, not synchronisation
		}
	}
	mux.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		delay()
		if rand.Float64() < errRate {
			s.failed.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		name := r.PathValue("name")
		switch {
		case strings.HasPrefix(name, "bad"):
			http.Error(w, "no such user name", http.StatusBadRequest)
			return
		case strings.HasPrefix(name, "gone"):
			http.NotFound(w, r)
			return
		}
		s.ok.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user":%q,"tier":%q,"key":%q}`, name, tierOf(name), r.Header.Get("X-Key"))
	})
	// POST /score takes [{"amount": x}, ...] and answers [{"score": 2x}, ...].
	mux.HandleFunc("POST /score", func(w http.ResponseWriter, r *http.Request) {
		delay()
		if rand.Float64() < errRate {
			s.failed.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var in []struct{ Amount float64 }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.batches = append(s.batches, len(in))
		s.mu.Unlock()
		out := make([]map[string]float64, len(in))
		for i, x := range in {
			out[i] = map[string]float64{"score": 2 * x.Amount}
		}
		s.ok.Add(1)
		json.NewEncoder(w).Encode(out)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func ordersInput(n int, bad func(i int) string) string {
	var b strings.Builder
	for i := range n {
		user := fmt.Sprintf("u%d", i%20)
		if bad != nil {
			if u := bad(i); u != "" {
				user = u
			}
		}
		fmt.Fprintf(&b, `{"id":%d,"user":%q,"amount":%d,"ts":%d}`+"\n", i, user, i%7, 1_000_000+i*10)
	}
	return b.String()
}

// TestEnrichHTTP enriches records from a flaky local service (random
// latency, 15% 503): in ordered mode the output is the input's order,
// each record has its user's answer, the cache answers repeated users,
// 400 answers go to the dead letters, 404 answers give null, and the
// metrics are exported.
func TestEnrichHTTP(t *testing.T) {
	svc := newUserService(t, 2*time.Millisecond, 0.15)
	const n = 400
	bad := func(i int) string {
		switch {
		case i%97 == 5:
			return fmt.Sprintf("bad%d", i)
		case i%89 == 3:
			return fmt.Sprintf("gone%d", i)
		}
		return ""
	}
	spec := fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
steps:
  - enrich:
      http:
        url: "%s/users/{user}"
        headers: {X-Key: "k-{id}"}
        retries: 50
        concurrency: 8
        cache: {size: 100, ttl: 1h}
      into: profile
      on_error: dead_letter
  - map:
      id: id
      user: user
      tier: "profile?.tier"
      key: "profile?.key"
sink: {stdout: {}}
errors:
  tolerance: all
  dead_letter: {file: {path: $DIR/dead}}
parallelism: 1
`, svc.srv.URL)
	rows, j, err := runSpec(t, spec, map[string]string{"in.jsonl": ordersInput(n, bad)})
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []int
	for i := range n {
		if !strings.HasPrefix(bad(i), "bad") {
			wantIDs = append(wantIDs, i)
		}
	}
	if len(rows) != len(wantIDs) {
		t.Fatalf("%d rows, want %d", len(rows), len(wantIDs))
	}
	hits := 0
	for k, r := range rows {
		id := fmt.Sprint(r["id"])
		if id != fmt.Sprint(wantIDs[k]) {
			t.Fatalf("row %d is id %s, want %d: ordered output out of input order", k, id, wantIDs[k])
		}
		user := r["user"].(string)
		if strings.HasPrefix(user, "gone") {
			if r["tier"] != nil {
				t.Fatalf("404 user %s got tier %v, want null", user, r["tier"])
			}
			continue
		}
		if r["tier"] != tierOf(user) {
			t.Fatalf("row %s user %s: tier %v, want %s", id, user, r["tier"], tierOf(user))
		}
		if r["key"] != "k-"+id {
			// The header is part of the cache key: every id differs, so a
			// cached answer must still be this record's own.
			t.Fatalf("row %s: header X-Key answered %v", id, r["key"])
		}
		hits++
	}
	if j.DeadLetters() != int64(n-len(wantIDs)) {
		t.Fatalf("%d dead letters, want %d", j.DeadLetters(), n-len(wantIDs))
	}
	dead := readLines(t, filepath.Join(j.plan.Spec.Errors.DeadLetter.cfg.(*fileSinkConfig).cfg.Path))
	if len(dead) != n-len(wantIDs) || !strings.Contains(dead[0], "HTTP 400") || !strings.Contains(dead[0], `\"user\":\"bad`) {
		t.Fatalf("dead letters: %q", dead)
	}
	am := j.AsyncMetrics()
	if len(am) != 1 || am[0].Retries == 0 || am[0].MaxInFlight > 8 || am[0].Failed != int64(n-len(wantIDs)) {
		t.Fatalf("async metrics %+v", am)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(j.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"sluice_pipeline_enrich_calls_total", "sluice_pipeline_enrich_in_flight", "sluice_pipeline_enrich_call_seconds", "sluice_pipeline_enrich_failed_records_total"} {
		if !seen[name] {
			t.Errorf("metric %s not exported", name)
		}
	}
}

// TestEnrichCache: with one user, the cache answers every record after
// the first answer; without a cache each record makes its own call.
func TestEnrichCache(t *testing.T) {
	svc := newUserService(t, 0, 0)
	spec := fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
steps:
  - enrich:
      http: {url: "%s/users/{user}", concurrency: 1, cache: {size: 10, ttl: 1h}}
      into: p
  - map: {id: id, tier: p.tier}
sink: {stdout: {}}
parallelism: 1
`, svc.srv.URL)
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, `{"id":%d,"user":"same"}`+"\n", i)
	}
	rows, j, err := runSpec(t, spec, map[string]string{"in.jsonl": b.String()})
	if err != nil {
		t.Fatal(err)
	}
	st := j.EnrichStats()
	if len(rows) != 50 || svc.ok.Load() != 1 || len(st) != 1 || st[0].CacheHits != 49 || st[0].Misses != 1 {
		t.Fatalf("%d rows, %d calls to the service, stats %+v; want 50 rows, 1 call, 49 hits", len(rows), svc.ok.Load(), st)
	}
}

// TestEnrichBatch sends records in arrays of at most batch.size to a
// scoring service, unordered: every record gets its own score.
func TestEnrichBatch(t *testing.T) {
	svc := newUserService(t, time.Millisecond, 0.1)
	spec := fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
steps:
  - enrich:
      http:
        url: "%s/score"
        body: {amount: amount}
        ordered: false
        retries: 50
        concurrency: 4
        batch: {size: 10, linger: 2ms}
      into: s
  - map: {id: id, amount: amount, score: s.score}
sink: {stdout: {}}
parallelism: 2
`, svc.srv.URL)
	const n = 500
	rows, _, err := runSpec(t, spec, map[string]string{"in.jsonl": ordersInput(n, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n {
		t.Fatalf("%d rows, want %d", len(rows), n)
	}
	for _, r := range rows {
		a, _ := r["amount"].(json.Number).Float64()
		s, _ := r["score"].(json.Number).Float64()
		if s != 2*a {
			t.Fatalf("row %v: score %v, want %v", r["id"], s, 2*a)
		}
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	most := 0
	for _, b := range svc.batches {
		if b > 10 {
			t.Fatalf("a batch of %d records, more than batch.size 10", b)
		}
		most = max(most, b)
	}
	if most < 2 {
		t.Fatalf("no batch had more than one record: %v", svc.batches)
	}
}

// TestEnrichFailsJob: by default a record whose call fails for good fails
// the pipeline with an error naming the step and the answer.
func TestEnrichFailsJob(t *testing.T) {
	svc := newUserService(t, 0, 0)
	spec := fmt.Sprintf(`
source:
  file: {path: $DIR/in.jsonl}
steps:
  - enrich: {http: {url: "%s/users/{user}"}, into: p}
sink: {stdout: {}}
`, svc.srv.URL)
	_, _, err := runSpec(t, spec, map[string]string{"in.jsonl": `{"user":"u1"}` + "\n" + `{"user":"bad7"}` + "\n"})
	if err == nil || !strings.Contains(err.Error(), "steps[0].enrich") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("error %v, want the step and HTTP 400", err)
	}
}

func readLines(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		f.Close()
	}
	return lines
}

// enrichKillSpec is the pipeline of the kill test: file -> enrich (a
// flaky service) -> window per tier -> exactly-once file sink.
func enrichKillSpec(dir, svcURL string) string {
	return fmt.Sprintf(`
name: enrich-kill
source:
  file: {path: %[1]s/in.jsonl}
  event_time: {field: ts, max_out_of_orderness: 0s}
steps:
  - enrich:
      http: {url: "%[2]s/users/{user}", retries: 100, concurrency: 8, timeout: 5s}
      into: profile
  - set: {tier: profile.tier}
  - window:
      key: [tier]
      tumbling: 1s
      aggregate: {n: count(), total: sum(amount)}
sink:
  file: {path: %[1]s/out}
delivery: exactly_once
checkpoint: {interval: 30ms, dir: %[1]s/chk}
parallelism: 2
`, dir, svcURL)
}

// TestEnrichKillChild runs the kill test's pipeline in a child process.
func TestEnrichKillChild(t *testing.T) {
	dir, svc := os.Getenv("SLUICE_ENRICH_KILL_DIR"), os.Getenv("SLUICE_ENRICH_KILL_URL")
	if dir == "" {
		t.Skip("run by TestEnrichKillExactlyOnce")
	}
	s, err := Parse("kill.yaml", []byte(enrichKillSpec(dir, svc)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	j, err := p.Start(context.Background(), &Host{DataDir: dir, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestEnrichKillExactlyOnce kills the pipeline process with SIGKILL at
// random moments while its calls to a flaky service (random latency, 10%
// 503) are in flight, and restarts it until it finishes: the committed
// output equals a run without kills (the oracle).
func TestEnrichKillExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	svc := newUserService(t, 3*time.Millisecond, 0.1)
	input := ordersInput(2000, nil)
	run := func(dir string, maxKills int) int {
		if err := os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(input), 0o644); err != nil {
			t.Fatal(err)
		}
		seed := uint64(time.Now().UnixNano())
		t.Logf("kill schedule seed %d", seed)
		rnd := rand.New(rand.NewPCG(seed, 7))
		kills := 0
		for round := 0; ; round++ {
			cmd := exec.Command(os.Args[0], "-test.run=^TestEnrichKillChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SLUICE_ENRICH_KILL_DIR="+dir, "SLUICE_ENRICH_KILL_URL="+svc.srv.URL)
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if round < maxKills {
				// A random moment to kill at, not synchronisation.
				timer := time.NewTimer(time.Duration(200+rnd.IntN(600)) * time.Millisecond)
				select {
				case err := <-done:
					timer.Stop()
					if err != nil {
						t.Fatalf("child failed: %v\n%s", err, out)
					}
					return kills
				case <-timer.C:
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					continue
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("final run failed: %v\n%s", err, out)
			}
			return kills
		}
	}
	oracleDir := t.TempDir()
	run(oracleDir, 0)
	want := readParts(t, filepath.Join(oracleDir, "out"))
	dir := t.TempDir()
	kills := run(dir, 4)
	got := readParts(t, filepath.Join(dir, "out"))
	t.Logf("%d kills; %d result lines; service: %d ok, %d failed", kills, len(got), svc.ok.Load(), svc.failed.Load())
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("output after %d kills (%d lines) differs from the oracle (%d lines):\n%s\nwant:\n%s", kills, len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// exampleService serves the users of examples/data/users.jsonl as
// GET /users/{user_id} for the enrich example, and returns u with its
// scheme and host replaced by the local server's.
func exampleService(t *testing.T, u string) string {
	data, err := os.ReadFile("../examples/data/users.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		users[m.UserID] = line
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line, ok := users[strings.TrimPrefix(r.URL.Path, "/users/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, line)
	}))
	t.Cleanup(srv.Close)
	pu, err := url.Parse(strings.ReplaceAll(strings.ReplaceAll(u, "{", "%7B"), "}", "%7D"))
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL + strings.ReplaceAll(strings.ReplaceAll(pu.EscapedPath(), "%7B", "{"), "%7D", "}")
}

// TestEnrichBackpressure: while the service does not answer, the step
// holds its capacity with its concurrency in flight and the source stops
// reading (it waits for room), after a bounded number of records; once
// the service answers, every record goes through.
func TestEnrichBackpressure(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	const n, conc, capacity, batch, credits = 3000, 2, 4, 16, 2
	spec := fmt.Sprintf(`
source:
  generate: {preset: orders, count: %d, start: 1767225600000}
steps:
  - enrich:
      http: {url: "%s/users/{user_id}", concurrency: %d, capacity: %d}
      into: p
sink: {stdout: {}}
parallelism: 1
`, n, srv.URL, conc, capacity)
	s, err := Parse("bp.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	j, err := p.Start(context.Background(), &Host{Stdout: &out}, WithStreamOptions(stream.WithBatchSize(batch), stream.WithQueueCapacity(credits)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		am := j.AsyncMetrics()
		blocked := false
		for _, m := range j.Metrics() {
			if m.Operator == "source" && m.Status == "backpressured" {
				blocked = true
			}
		}
		if len(am) == 1 && am[0].InFlight == conc && am[0].Queued == capacity && blocked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source did not block behind a full enrich queue: %+v", am)
		}
		time.Sleep(time.Millisecond)
	}
	// The queue, the input queue's batches, the batch in hand and the one
	// the source is reading.
	if read, bound := j.Summary().RecordsIn, int64(capacity+(credits+3)*batch); read > bound {
		t.Fatalf("the source read %d records while the service was stalled, more than %d", read, bound)
	}
	close(release)
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	am := j.AsyncMetrics()[0]
	if lines := strings.Count(out.String(), "\n"); lines != n || am.MaxInFlight > conc || am.MaxQueued > capacity || am.Full == 0 {
		t.Fatalf("%d records out of %d; metrics %+v", lines, n, am)
	}
}
