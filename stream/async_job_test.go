package stream

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state/codec"
)

// flakyService is a local HTTP service that answers 3*v+1 for /?v=N after
// a random latency, and fails a share of the requests with 503.
type flakyService struct {
	srv    *httptest.Server
	client *http.Client
	calls  atomic.Int64
	failed atomic.Int64
}

func newFlakyService(t testing.TB, maxLatency time.Duration, errRate float64) *flakyService {
	s := &flakyService{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if maxLatency > 0 {
			// The service's latency (what AsyncMap hides), not
			// synchronisation.
			time.Sleep(rand.N(maxLatency))
		}
		if rand.Float64() < errRate {
			s.failed.Add(1)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		v, err := strconv.ParseInt(r.URL.Query().Get("v"), 10, 64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", 3*v+1)
	}))
	t.Cleanup(s.srv.Close)
	s.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return s
}

func serviceCall(ctx context.Context, client *http.Client, url string, v int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/?v="+strconv.FormatInt(v, 10), nil)
	if err != nil {
		return 0, Permanent(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	switch {
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("service: %s", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return 0, Permanent(fmt.Errorf("service: %s: %s", resp.Status, b))
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (s *flakyService) call(ctx context.Context, v int64) (int64, error) {
	return serviceCall(ctx, s.client, s.srv.URL, v)
}

// TestAsyncMapHTTP calls a local service with random latency and errors:
// in ordered mode the output is the input in order; in unordered mode it
// has every answer once; retries hide the errors.
func TestAsyncMapHTTP(t *testing.T) {
	svc := newFlakyService(t, 2*time.Millisecond, 0.2)
	const n = 1500
	vals := make([]int64, n)
	for i := range vals {
		vals[i] = int64(i)
	}
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			env := New(WithParallelism(1), WithBatchSize(8))
			opts := []OpOption{AsyncConcurrency(8), AsyncRetries(100, time.Millisecond, 4*time.Millisecond), AsyncTimeout(10 * time.Second), AsyncCircuitBreaker(1000, time.Millisecond), Name("call")}
			if unordered {
				opts = append(opts, AsyncUnordered())
			}
			out := Collect(AsyncMap(FromSource(env, "in", FromSlice(vals, 1), WatermarkStrategy[int64]{}), svc.call, opts...))
			job, err := env.Start(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := job.Wait(); err != nil {
				t.Fatal(err)
			}
			got := out.Values()
			want := make([]int64, n)
			for i, v := range vals {
				want[i] = 3*v + 1
			}
			if unordered {
				slices.Sort(got)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("output (%d records) differs from the input's answers in order (%d)", len(got), len(want))
			}
			m := job.AsyncMetrics()
			if len(m) != 1 || m[0].Retries == 0 || m[0].Errors != m[0].Retries || m[0].Calls != n+m[0].Retries || m[0].MaxInFlight > 8 || m[0].Breaker != "closed" {
				t.Fatalf("metrics %+v", m)
			}
			var lat LatencyHistogram
			for _, h := range job.Latency() {
				if h.Kind == LatencyAsync && h.Operator == "call" {
					lat = h
				}
			}
			if lat.Count != uint64(m[0].Calls) {
				t.Fatalf("latency histogram has %d calls, metrics %d", lat.Count, m[0].Calls)
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline (a failure deadline,
// generous for a loaded machine) passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAsyncBackpressure: while the service does not answer, the operator
// holds capacity records with concurrency calls in flight, and the source
// stops reading (it waits for room downstream) after a bounded number of
// records; once the service answers, every record goes through.
func TestAsyncBackpressure(t *testing.T) {
	hold := make(chan struct{})
	fn := func(ctx context.Context, v int64) (int64, error) {
		select {
		case <-hold:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return v, nil
	}
	const n, conc, capacity, batch, credits = 200_000, 4, 8, 16, 2
	env := New(WithParallelism(1), WithBatchSize(batch), WithQueueCapacity(credits))
	var count atomic.Int64
	src := FromSource(env, "gen", Generate(n, 1, func(i int64) int64 { return i }), WatermarkStrategy[int64]{})
	out := AsyncMap(src, fn, AsyncConcurrency(conc), AsyncCapacity(capacity), Name("enrich"))
	To(out, SinkFunc[int64](func(_ context.Context, vs []int64) error { count.Add(int64(len(vs))); return nil }))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	source := func() SubtaskMetrics {
		for _, m := range job.Metrics() {
			if m.Operator == "gen" {
				return m
			}
		}
		t.Fatal("no source metrics")
		return SubtaskMetrics{}
	}
	waitFor(t, "a full queue and a blocked source", func() bool {
		a := job.AsyncMetrics()[0]
		return a.InFlight == conc && a.Queued == capacity && source().Status == "backpressured"
	})
	// Records the source read: the operator's queue, the rest of the batch
	// it is taking, the input queue (credits batches) and the source's
	// open batch.
	read := source().RecordsOut
	if bound := int64(capacity + batch + credits*batch + batch); read > bound {
		t.Fatalf("the source read %d records while the service was stalled, more than %d", read, bound)
	}
	close(hold)
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	a := job.AsyncMetrics()[0]
	if count.Load() != n || a.MaxQueued > capacity || a.MaxInFlight > conc || a.Full == 0 {
		t.Fatalf("%d records out of %d; metrics %+v", count.Load(), n, a)
	}
}

// asyncBuild is the job of the restore and kill tests: events -> AsyncMap
// (the service's answer replaces V) -> tumbling sums -> sink.
func asyncBuild(env *Env, src Source[cev], fn func(context.Context, int64) (int64, error), sink Sink[Windowed[string, int64]], opts ...OpOption) {
	s := FromSource(env, "events", src, WatermarkStrategy[cev]{Timestamp: func(e cev) int64 { return e.Ts }})
	call := func(ctx context.Context, e cev) (cev, error) {
		v, err := fn(ctx, e.V)
		e.V = v
		return e, err
	}
	buildAggTo(AsyncMap(s, call, append([]OpOption{Name("enrich"), AsyncRetries(1000, time.Millisecond, 4*time.Millisecond)}, opts...)...), sink)
}

// asyncOracle is the oracle of asyncBuild: the sums of 3*V+1.
func asyncOracle(data [][]cev) []cres {
	mapped := make([][]cev, len(data))
	for i, s := range data {
		for _, e := range s {
			e.V = 3*e.V + 1
			mapped[i] = append(mapped[i], e)
		}
	}
	return oracle(mapped)
}

// TestAsyncRestoreReissues stops a job with a savepoint while some of its
// calls hang: the barrier passes the operator without waiting for them,
// the savepoint holds the records not emitted yet, and the job restored
// from it (at the same or another parallelism) calls them again: the
// exactly-once output equals the oracle's, which it could not without
// them. (The sources stop at a limit below the queue's capacity: a
// barrier waits behind input that waits for room in a full queue.)
func TestAsyncRestoreReissues(t *testing.T) {
	data := genEvents(5, 2, 600, 7)
	want := asyncOracle(data)
	for _, par := range []int{2, 3, 1} {
		for _, unordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("par=%d/unordered=%v", par, unordered), func(t *testing.T) {
				dir := t.TempDir()
				st := newTxStore()
				var stalled atomic.Bool
				stalled.Store(true)
				var held atomic.Int64
				fn := func(ctx context.Context, v int64) (int64, error) {
					if stalled.Load() && v%2 == 0 {
						held.Add(1)
						<-ctx.Done() // hangs until the job stops
						return 0, ctx.Err()
					}
					return 3*v + 1, nil
				}
				var mode []OpOption
				if unordered {
					mode = append(mode, AsyncUnordered())
				}
				limit, parked := &atomic.Int64{}, &atomic.Int64{}
				limit.Store(40)
				env := New(WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
					WithCheckpointing(dir, time.Hour), WithLogger(quietLog()))
				asyncBuild(env, &pacedSource{data: data, chunk: 10, limit: limit, parked: parked}, fn, txSink{st},
					append(mode, AsyncConcurrency(4), AsyncCapacity(64), Parallelism(2))...)
				job, err := env.Start(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				waitFor(t, "hanging calls", func() bool {
					queued := int64(0)
					for _, m := range job.AsyncMetrics() {
						queued += m.Queued
					}
					return parked.Load() == 2 && held.Load() >= 2 && queued > 0
				})
				path, err := job.StopWithSavepoint(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := job.Wait(); err != nil {
					t.Fatal(err)
				}
				inSnapshot := countAsyncRecords(t, path)
				if inSnapshot < 2 {
					t.Fatalf("the savepoint holds %d records in flight, want at least 2", inSnapshot)
				}
				t.Logf("%d records in flight in the savepoint", inSnapshot)
				stalled.Store(false)
				env2 := New(WithParallelism(2), WithBatchSize(16), WithMaxParallelism(16),
					WithCheckpointing(dir, 5*time.Millisecond), WithRestoreFrom(path), WithLogger(quietLog()))
				asyncBuild(env2, &pacedSource{data: data, chunk: 50}, fn, txSink{st}, append(mode, AsyncConcurrency(4), AsyncCapacity(64), Parallelism(par))...)
				if err := env2.Execute(context.Background()); err != nil {
					t.Fatal(err)
				}
				sameResults(t, st.results(), want)
			})
		}
	}
}

// countAsyncRecords counts the records of the AsyncMap snapshots of the
// checkpoint at path.
func countAsyncRecords(t *testing.T, path string) int {
	t.Helper()
	c, err := checkpoint.LoadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ts := range c.Manifest.Tasks {
		for _, f := range ts.Files {
			if !strings.HasSuffix(f, ".async") {
				continue
			}
			fh, err := c.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(fh)
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			es, err := decodeAsyncSnapshot[cev, cev](b, mustCodecDecode[cev]())
			if err != nil {
				t.Fatal(err)
			}
			n += len(es)
		}
	}
	return n
}

// TestAsyncKillChild is the job run by TestAsyncKillExactlyOnce in a
// child process.
func TestAsyncKillChild(t *testing.T) {
	dir, url := os.Getenv("SLUICE_ASYNC_KILL_DIR"), os.Getenv("SLUICE_ASYNC_KILL_URL")
	if dir == "" {
		t.Skip("run by TestAsyncKillExactlyOnce")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	fn := func(ctx context.Context, v int64) (int64, error) { return serviceCall(ctx, client, url, v) }
	env := New(WithParallelism(2), WithBatchSize(8), WithMaxParallelism(16),
		WithCheckpointing(filepath.Join(dir, "chk"), 20*time.Millisecond), WithLogger(quietLog()))
	var mode []OpOption
	if os.Getenv("SLUICE_ASYNC_KILL_UNORDERED") != "" {
		mode = append(mode, AsyncUnordered())
	}
	asyncBuild(env, &pacedSource{data: killData(), chunk: 5, pace: 1500 * time.Microsecond}, fn,
		fileTxSink{dir: filepath.Join(dir, "sink")}, append(mode, AsyncConcurrency(8))...)
	if err := env.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAsyncKillExactlyOnce kills a job that calls a flaky local service
// (random latency, 10% errors) with SIGKILL at random moments, while
// calls are in flight, and restarts it until it finishes: the committed
// output of the transactional sink equals the oracle.
func TestAsyncKillExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	svc := newFlakyService(t, 3*time.Millisecond, 0.1)
	want := asyncOracle(killData())
	for _, mode := range []string{"ordered", "unordered"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			seed := uint64(time.Now().UnixNano())
			t.Logf("kill schedule seed %d", seed)
			rnd := rand.New(rand.NewPCG(seed, 3))
			kills := 0
			for round := 0; ; round++ {
				env := append(os.Environ(), "SLUICE_ASYNC_KILL_DIR="+dir, "SLUICE_ASYNC_KILL_URL="+svc.srv.URL)
				if mode == "unordered" {
					env = append(env, "SLUICE_ASYNC_KILL_UNORDERED=1")
				}
				killed, out := runChildKilled(t, "^TestAsyncKillChild$", env, round < 4, time.Duration(150+rnd.IntN(500))*time.Millisecond)
				if !killed {
					t.Logf("finished after %d kills\n%s", kills, out)
					break
				}
				kills++
			}
			sameResults(t, readCommitted(t, filepath.Join(dir, "sink")), want)
			if svc.failed.Load() == 0 {
				t.Fatal("the service never failed: the retries were not exercised")
			}
		})
	}
}

func mustCodecDecode[T any]() func([]byte) (T, int, error) {
	return codec.MustFor[T]().Decode
}

// runChildKilled runs the test binary's test run in a child process with
// env. When mayKill, it kills the child with SIGKILL after the given time
// (a random moment picked by the caller, not synchronisation) unless it
// finished first; it reports whether it killed it. A child that fails
// fails the test.
func runChildKilled(t *testing.T, run string, env []string, mayKill bool, after time.Duration) (bool, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
	cmd.Env = env
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if mayKill {
		timer := time.NewTimer(after)
		defer timer.Stop()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			return false, out.String()
		case <-timer.C:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return true, out.String()
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("final run failed: %v\n%s", err, out)
	}
	return false, out.String()
}

// TestAsyncTimeoutAndBreaker: calls that hang are cut by the timeout and
// retried, then the record goes to the failure output; a service that
// always fails opens the breaker after the configured failures, and from
// then on no call reaches it.
func TestAsyncTimeoutAndBreaker(t *testing.T) {
	vals := []int64{1, 2, 3, 4, 5}
	t.Run("timeout", func(t *testing.T) {
		var calls atomic.Int64
		fn := func(ctx context.Context, v int64) (int64, error) {
			calls.Add(1)
			<-ctx.Done() // never answers: only the timeout ends the call
			return 0, ctx.Err()
		}
		env := New(WithParallelism(1))
		tag := NewOutputTag[AsyncFailure[int64]]("failed")
		out := AsyncMap(FromSource(env, "in", FromSlice(vals, 1), WatermarkStrategy[int64]{}), fn,
			AsyncTimeout(20*time.Millisecond), AsyncRetries(2, time.Millisecond, time.Millisecond), AsyncFailuresTo(tag), AsyncConcurrency(5))
		ok, failed := Collect(out), Collect(SideOutput(out, tag))
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
		m := job.AsyncMetrics()[0]
		if ok.Len() != 0 || failed.Len() != len(vals) || calls.Load() != 3*int64(len(vals)) || m.Timeouts != 3*int64(len(vals)) || m.Retries != 2*int64(len(vals)) || m.Failed != int64(len(vals)) {
			t.Fatalf("%d ok, %d failed, %d calls; metrics %+v", ok.Len(), failed.Len(), calls.Load(), m)
		}
		for _, f := range failed.Values() {
			if f.Attempts != 3 || !strings.Contains(f.Err.Error(), "timed out") {
				t.Fatalf("failure %+v", f)
			}
		}
	})
	t.Run("breaker", func(t *testing.T) {
		var calls atomic.Int64
		fn := func(ctx context.Context, v int64) (int64, error) {
			calls.Add(1)
			return 0, fmt.Errorf("service down")
		}
		env := New(WithParallelism(1))
		tag := NewOutputTag[AsyncFailure[int64]]("failed")
		many := make([]int64, 50)
		out := AsyncMap(FromSource(env, "in", FromSlice(many, 1), WatermarkStrategy[int64]{}), fn,
			AsyncCircuitBreaker(3, time.Hour), AsyncFailuresTo(tag), AsyncConcurrency(1))
		failed := Collect(SideOutput(out, tag))
		job, err := env.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := job.Wait(); err != nil {
			t.Fatal(err)
		}
		m := job.AsyncMetrics()[0]
		if calls.Load() != 3 || failed.Len() != 50 || m.Breaker != "open" || m.BreakerOpened != 1 || m.Calls != 50 || m.Errors != 50 {
			t.Fatalf("%d calls reached the service (want 3), %d failed; metrics %+v", calls.Load(), failed.Len(), m)
		}
	})
}

// TestAsyncSlowServiceBackpressure runs a job against a local HTTP
// service that answers every call, slowly (random latency up to 2 ms):
// the source is held back to the service's pace. At every sink batch the
// records the source has read exceed those the sink got by at most the
// operator's capacity and the exchange buffers, whatever the number of
// records, so the input rate follows the service's answers and the
// records held (memory) stay bounded; the source spends time
// backpressured, the operator's queue fills, and its calls in flight
// never exceed the concurrency.
func TestAsyncSlowServiceBackpressure(t *testing.T) {
	svc := newFlakyService(t, 2*time.Millisecond, 0)
	const n, conc, capacity, batch, credits = 4000, 4, 8, 16, 2
	env := New(WithParallelism(1), WithBatchSize(batch), WithQueueCapacity(credits))
	var jobp atomic.Pointer[Job]
	var count, maxGap, samples atomic.Int64
	// Held between the source's counter and the sink's: the source's open
	// batch, the input queue and the batch in hand; the operator's queue;
	// its output batch, the sink's input queue and the batch in hand.
	const bound = capacity + 2*(batch+credits*batch+batch)
	sourceRead := func(j *Job) int64 {
		for _, m := range j.Metrics() {
			if m.Operator == "gen" {
				return m.RecordsOut
			}
		}
		return -1
	}
	sink := SinkFunc[int64](func(_ context.Context, vs []int64) error {
		got := count.Add(int64(len(vs)))
		if j := jobp.Load(); j != nil {
			if gap := sourceRead(j) - got; gap > maxGap.Load() {
				maxGap.Store(gap)
			}
			samples.Add(1)
		}
		return nil
	})
	src := FromSource(env, "gen", Generate(n, 1, func(i int64) int64 { return i }), WatermarkStrategy[int64]{})
	To(AsyncMap(src, svc.call, AsyncConcurrency(conc), AsyncCapacity(capacity), Name("enrich")), sink)
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	jobp.Store(job)
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	a := job.AsyncMetrics()[0]
	var srcM SubtaskMetrics
	for _, m := range job.Metrics() {
		if m.Operator == "gen" {
			srcM = m
		}
	}
	t.Logf("max records between source and sink %d (bound %d) over %d samples; source backpressured %s, busy %s; queue full %d times", maxGap.Load(), bound, samples.Load(), srcM.Backpressured, srcM.Busy, a.Full)
	if count.Load() != n || svc.calls.Load() != n {
		t.Fatalf("%d records out, %d calls, want %d", count.Load(), svc.calls.Load(), n)
	}
	if samples.Load() < 10 {
		t.Fatalf("only %d samples", samples.Load())
	}
	if maxGap.Load() > bound {
		t.Fatalf("the source ran %d records ahead of the sink, more than %d: the slow service did not hold it back", maxGap.Load(), bound)
	}
	if a.Full == 0 || a.MaxQueued > capacity || a.MaxInFlight > conc || srcM.Backpressured == 0 {
		t.Fatalf("no backpressure seen: metrics %+v, source %+v", a, srcM)
	}
}
