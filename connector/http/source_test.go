package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/connector"
	"github.com/sluicehq/sluice/stream"
)

func newSource(t *testing.T, cfg Config) (*Source, stream.Split[connector.Message]) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sp, err := s.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return s, sp[0]
}

type response struct {
	code  int
	retry string
	ans   answer
}

func post(t *testing.T, s *Source, body string, hdr ...string) response {
	t.Helper()
	req, err := nethttp.NewRequest(nethttp.MethodPost, "http://"+s.Addr()+DefaultPath, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return response{}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A fresh connection per request: a kept-alive one may belong to a
	// run the test has ended, and a POST on it fails with EOF (the
	// transport does not retry a non-idempotent request).
	req.Close = true
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return response{}
	}
	defer res.Body.Close()
	var a answer
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		t.Errorf("decode answer: %v", err)
	}
	return response{code: res.StatusCode, retry: res.Header.Get("Retry-After"), ans: a}
}

// postAsync posts in the background; the answer arrives on the channel.
func postAsync(t *testing.T, s *Source, body string) <-chan response {
	ch := make(chan response, 1)
	go func() { ch <- post(t, s, body) }()
	return ch
}

func lines(n int, prefix string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":\"%s%d\"}\n", prefix, i)
	}
	return b.String()
}

// waitFor polls cond until it holds, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
}

// reader drains a split in the background into a slice.
type reader struct {
	mu   sync.Mutex
	vals []string
	done chan error
	// handed reads the source's count of records handed over (nil for
	// a split of another type). Under at-least-once a request is
	// answered as its records are handed over, inside Read, so the
	// answer can reach a test before this goroutine has appended them:
	// values waits until it holds as many as the source handed over.
	handed func() int64
}

func startReader(sp stream.Split[connector.Message]) (*reader, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{done: make(chan error, 1)}
	if x, ok := sp.(*split); ok {
		r.handed = x.s.cnt.handed.Load
	}
	go func() {
		dst := make([]connector.Message, 16)
		for {
			n, err := sp.Read(ctx, dst)
			r.mu.Lock()
			for _, m := range dst[:n] {
				r.vals = append(r.vals, string(m.Value))
			}
			r.mu.Unlock()
			if err != nil {
				r.done <- err
				return
			}
		}
	}()
	return r, cancel
}

func (r *reader) values() []string {
	// The goroutine appends every record Read returned before it
	// reads again or stops, so the wait ends; the deadline only turns
	// a bug into a failed assertion on what was read instead of a hang.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		if r.handed == nil || int64(len(r.vals)) >= r.handed() || time.Now().After(deadline) {
			defer r.mu.Unlock()
			return slices.Clone(r.vals)
		}
		r.mu.Unlock()
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
}

func readN(t *testing.T, sp stream.Split[connector.Message], n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []string
	dst := make([]connector.Message, n)
	for len(out) < n {
		k, err := sp.Read(ctx, dst[:n-len(out)])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range dst[:k] {
			out = append(out, string(m.Value))
		}
	}
	return out
}

func TestIngestLinesAndArrayAtLeastOnce(t *testing.T) {
	s, sp := newSource(t, Config{})
	r, cancel := startReader(sp)
	defer cancel()
	res := post(t, s, lines(3, "a"))
	if res.code != 200 || res.ans.Accepted != 3 || res.ans.Shed != 0 {
		t.Fatalf("lines: %+v", res)
	}
	// Answered only once handed over: the reader has them already.
	if got := r.values(); len(got) != 3 {
		t.Fatalf("answered before the records were handed over: %v", got)
	}
	res = post(t, s, `[{"id":"b0"}, {"id":"b1"}]`)
	if res.code != 200 || res.ans.Accepted != 2 {
		t.Fatalf("array: %+v", res)
	}
	want := []string{`{"id":"a0"}`, `{"id":"a1"}`, `{"id":"a2"}`, `{"id":"b0"}`, `{"id":"b1"}`}
	if got := r.values(); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	st := s.Stats()
	if st.Requests != 2 || st.Accepted != 5 || st.Handed != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRequestErrors(t *testing.T) {
	s, _ := newSource(t, Config{MaxBodyBytes: 64})
	if res := post(t, s, "{\"a\":1}\nnot json\n"); res.code != 400 || !strings.Contains(res.ans.Error, "line 2") {
		t.Fatalf("bad body: %+v", res)
	}
	if res := post(t, s, lines(10, "x")); res.code != 413 {
		t.Fatalf("big body: %+v", res)
	}
	res, err := nethttp.Get("http://" + s.Addr() + DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	if st := s.Stats(); st.BadRequests != 2 || st.Accepted != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTokenRequired(t *testing.T) {
	if _, err := NewSource(Config{Addr: "0.0.0.0:0"}); err == nil {
		t.Fatal("non-loopback address without token accepted")
	}
	if _, err := NewSource(Config{Addr: ":8090"}); err == nil {
		t.Fatal("all-interfaces address without token accepted")
	}
	s, sp := newSource(t, Config{Token: "s3cret"})
	_, cancel := startReader(sp)
	defer cancel()
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}} {
		if res := post(t, s, lines(1, "x"), h...); res.code != 401 {
			t.Fatalf("header %v: %+v", h, res)
		}
	}
	if res := post(t, s, lines(1, "x"), "Authorization", "Bearer s3cret"); res.code != 200 || res.ans.Accepted != 1 {
		t.Fatalf("right token: %+v", res)
	}
	if st := s.Stats(); st.Unauthorized != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Addr: "nonsense"},
		{Rate: -1},
		{Burst: -1},
		{Shedding: Sample},
		{Shedding: Sample, SampleFraction: 1.5},
		{Shedding: 9},
		{Delivery: 5},
	} {
		if _, err := NewSource(cfg); err == nil {
			t.Errorf("NewSource(%+v): no error", cfg)
		}
	}
	for _, name := range []string{"block", "reject", "drop_oldest", "sample"} {
		p, err := ParsePolicy(name)
		if err != nil || p.String() != name {
			t.Fatalf("ParsePolicy(%s) = %v, %v", name, p, err)
		}
	}
	if _, err := ParsePolicy("drop_newest"); err == nil {
		t.Fatal("ParsePolicy accepted drop_newest")
	}
}

func TestRejectOverRateLimit(t *testing.T) {
	// A bucket of 5 that refills once every ~3 hours: exactly 5 records pass.
	s, sp := newSource(t, Config{Rate: 0.0001, Burst: 5, Shedding: Reject})
	r, cancel := startReader(sp)
	defer cancel()
	if res := post(t, s, lines(3, "a")); res.code != 200 || res.ans.Accepted != 3 {
		t.Fatalf("first: %+v", res)
	}
	res := post(t, s, lines(3, "b")) // 2 tokens left: all of it refused
	if res.code != 429 || res.ans.Accepted != 0 || res.ans.Shed != 3 || res.retry == "" {
		t.Fatalf("over the limit: %+v", res)
	}
	if res := post(t, s, lines(6, "c")); res.code != 413 {
		t.Fatalf("more than the burst: %+v", res)
	}
	if res := post(t, s, lines(2, "d")); res.code != 200 || res.ans.Accepted != 2 {
		t.Fatalf("within the rest: %+v", res)
	}
	if got := len(r.values()); got != 5 {
		t.Fatalf("pipeline got %d records, want 5", got)
	}
	if st := s.Stats(); st.ShedRateLimit != 9 || st.Rejected != 2 || st.Accepted != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRejectOnBackpressure(t *testing.T) {
	s, sp := newSource(t, Config{BufferRecords: 4, Shedding: Reject})
	first := postAsync(t, s, lines(4, "a")) // fills the buffer; answered once read
	waitFor(t, "the buffer to fill", func() bool { return s.Stats().Accepted == 4 })
	if res := post(t, s, lines(1, "b")); res.code != 429 || res.retry != "1" || res.ans.Shed != 1 {
		t.Fatalf("full buffer: %+v", res)
	}
	if got := readN(t, sp, 4); len(got) != 4 {
		t.Fatalf("read %v", got)
	}
	if res := <-first; res.code != 200 || res.ans.Accepted != 4 {
		t.Fatalf("first: %+v", res)
	}
	if st := s.Stats(); st.ShedBackpressure != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDropOldest(t *testing.T) {
	s, sp := newSource(t, Config{BufferRecords: 4, Shedding: DropOldest})
	a := postAsync(t, s, lines(3, "a"))
	waitFor(t, "a admitted", func() bool { return s.Stats().Accepted == 3 })
	b := postAsync(t, s, lines(3, "b")) // evicts a0 and a1
	waitFor(t, "b admitted", func() bool { return s.Stats().ShedBackpressure == 2 })
	got := readN(t, sp, 4)
	want := []string{`{"id":"a2"}`, `{"id":"b0"}`, `{"id":"b1"}`, `{"id":"b2"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if res := <-a; res.code != 200 || res.ans.Accepted != 1 || res.ans.Shed != 2 {
		t.Fatalf("a: %+v", res)
	}
	if res := <-b; res.code != 200 || res.ans.Accepted != 3 || res.ans.Shed != 0 {
		t.Fatalf("b: %+v", res)
	}
}

func TestDropOldestOverRateLimitKeepsNewest(t *testing.T) {
	s, sp := newSource(t, Config{Rate: 0.0001, Burst: 2, Shedding: DropOldest})
	r, cancel := startReader(sp)
	defer cancel()
	if res := post(t, s, lines(5, "a")); res.code != 200 || res.ans.Accepted != 2 || res.ans.Shed != 3 {
		t.Fatalf("%+v", res)
	}
	if got, want := r.values(), []string{`{"id":"a3"}`, `{"id":"a4"}`}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if st := s.Stats(); st.ShedRateLimit != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSampleUnderBackpressure(t *testing.T) {
	s, sp := newSource(t, Config{BufferRecords: 10, Shedding: Sample, SampleFraction: 0.5})
	a := postAsync(t, s, lines(6, "a")) // fits: all kept
	waitFor(t, "a admitted", func() bool { return s.Stats().Accepted == 6 })
	b := postAsync(t, s, lines(8, "b")) // 4 of room: half of b kept
	waitFor(t, "b admitted", func() bool { return s.Stats().Accepted == 10 })
	got := readN(t, sp, 10)
	want := []string{`{"id":"a0"}`, `{"id":"a1"}`, `{"id":"a2"}`, `{"id":"a3"}`, `{"id":"a4"}`, `{"id":"a5"}`,
		`{"id":"b1"}`, `{"id":"b3"}`, `{"id":"b5"}`, `{"id":"b7"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if res := <-a; res.ans.Accepted != 6 {
		t.Fatalf("a: %+v", res)
	}
	if res := <-b; res.code != 200 || res.ans.Accepted != 4 || res.ans.Shed != 4 {
		t.Fatalf("b: %+v", res)
	}
	if st := s.Stats(); st.ShedBackpressure != 4 || st.Records != 14 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBlockWaitsForRoomAndTimesOut(t *testing.T) {
	s, sp := newSource(t, Config{BufferRecords: 2, Shedding: Block})
	r, cancel := startReader(sp)
	res := post(t, s, lines(50, "a")) // 25 buffer-fulls, each waiting for the reader
	if res.code != 200 || res.ans.Accepted != 50 {
		t.Fatalf("%+v", res)
	}
	if got := r.values(); len(got) != 50 || got[49] != `{"id":"a49"}` {
		t.Fatalf("got %d records", len(got))
	}
	cancel()
	<-r.done

	s2, _ := newSource(t, Config{BufferRecords: 2, Shedding: Block, BlockTimeout: 20 * time.Millisecond, AckTimeout: 20 * time.Millisecond})
	res = post(t, s2, lines(5, "b")) // nobody reads
	if res.code != 503 || res.ans.Accepted != 0 {
		t.Fatalf("no reader: %+v", res)
	}
	if st := s2.Stats(); st.NotAdmitted != 3 || st.Accepted != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBlockOverRateLimit(t *testing.T) {
	// 2 tokens at once, then one every ms: the request waits for tokens.
	s, sp := newSource(t, Config{Rate: 1000, Burst: 2, Shedding: Block})
	r, cancel := startReader(sp)
	defer cancel()
	if res := post(t, s, lines(20, "a")); res.code != 200 || res.ans.Accepted != 20 {
		t.Fatalf("%+v", res)
	}
	if got := r.values(); len(got) != 20 {
		t.Fatalf("got %d", len(got))
	}
}

func TestExactlyOnceAnswersAfterCommit(t *testing.T) {
	s, sp := newSource(t, Config{Delivery: ExactlyOnce})
	ch := postAsync(t, s, lines(3, "a"))
	got := readN(t, sp, 3)
	if len(got) != 3 {
		t.Fatal(got)
	}
	pos := sp.Position()
	select {
	case res := <-ch:
		t.Fatalf("answered before the checkpoint completed: %+v", res)
	default:
	}
	c, ok := sp.(interface {
		CommitPosition(context.Context, []byte) error
	})
	if !ok {
		t.Fatal("split has no CommitPosition")
	}
	if err := c.CommitPosition(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.code != 200 || res.ans.Accepted != 3 {
		t.Fatalf("%+v", res)
	}
	if err := sp.Seek([]byte{1}); err == nil {
		t.Fatal("Seek of 1 byte accepted")
	}
}

// Through the stream runtime: records posted reach the pipeline, and Stop
// ends the job once they are all in.
func TestPipelineStop(t *testing.T) {
	src, err := NewSource(Config{Addr: "127.0.0.1:0", Splits: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(2))
	out := stream.Collect(stream.FromSource(env, "http", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}))
	job, err := env.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if res := post(t, src, lines(10, fmt.Sprintf("r%d-", i))); res.ans.Accepted != 10 {
			t.Fatalf("request %d: %+v", i, res)
		}
	}
	src.Stop()
	if err := job.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := out.Len(); n != 100 {
		t.Fatalf("pipeline got %d records, want 100", n)
	}
	// The job closed its splits: the endpoint is gone.
	if res, err := nethttp.Post("http://"+src.Addr()+DefaultPath, "application/json", strings.NewReader("{}")); err == nil {
		res.Body.Close()
		if res.StatusCode != 503 {
			t.Fatalf("after stop: %d", res.StatusCode)
		}
	}
}

// Under every policy, with concurrent clients, a small buffer and a tight
// rate limit, every record is accounted for exactly once: accepted (and
// then handed to the pipeline), shed, or not admitted; the answers add up
// to the counters and to what the pipeline got.
func TestAccountingUnderLoad(t *testing.T) {
	for _, p := range []Policy{Block, Reject, DropOldest, Sample} {
		t.Run(p.String(), func(t *testing.T) {
			s, sp := newSource(t, Config{BufferRecords: 8, Rate: 2000, Burst: 16, Shedding: p, SampleFraction: 0.3})
			r, cancel := startReader(sp)
			const clients, requests = 4, 15
			var mu sync.Mutex
			var accepted, shed int64
			var wg sync.WaitGroup
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range requests {
						res := post(t, s, lines(1+(c*7+i*3)%12, fmt.Sprintf("c%d-%d-", c, i)))
						if res.code != 200 && res.code != 429 && res.code != 413 {
							t.Errorf("status %d: %+v", res.code, res.ans)
						}
						mu.Lock()
						accepted += res.ans.Accepted
						shed += res.ans.Shed
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			st := s.Stats()
			if got := int64(len(r.values())); got != accepted || st.Handed != accepted || st.Accepted != accepted {
				t.Fatalf("answers accepted %d, pipeline got %d, stats %+v", accepted, got, st)
			}
			if st.Records != st.Accepted+st.ShedRateLimit+st.ShedBackpressure+st.NotAdmitted {
				t.Fatalf("records unaccounted for: %+v", st)
			}
			if shed != st.ShedRateLimit+st.ShedBackpressure {
				t.Fatalf("answers shed %d, stats %+v", shed, st)
			}
			cancel()
			<-r.done
		})
	}
}

func TestGzipBodies(t *testing.T) {
	s, sp := newSource(t, Config{MaxBodyBytes: 4096})
	_, cancel := startReader(sp)
	defer cancel()
	gz := func(b string) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(b))
		zw.Close()
		return buf.String()
	}
	if res := post(t, s, gz(lines(5, "z")), "Content-Encoding", "gzip"); res.code != 200 || res.ans.Accepted != 5 {
		t.Fatalf("gzip: %+v", res)
	}
	// Small on the wire, too large inflated.
	if res := post(t, s, gz(strings.Repeat(" ", 10000)+"{}"), "Content-Encoding", "gzip"); res.code != 413 {
		t.Fatalf("gzip bomb: %+v", res)
	}
	if res := post(t, s, "not gzip", "Content-Encoding", "gzip"); res.code != 400 {
		t.Fatalf("bad gzip: %+v", res)
	}
	if res := post(t, s, "{}", "Content-Encoding", "br"); res.code != 400 {
		t.Fatalf("brotli: %+v", res)
	}
}

// fakeAuthorizer maps tokens to verdicts.
type fakeAuthorizer map[string]Verdict

func (f fakeAuthorizer) AuthorizeIngest(token, host string) (string, Verdict) {
	if host != "127.0.0.1" {
		return "", Denied
	}
	v, ok := f[token]
	if !ok {
		return "", UnknownToken
	}
	return "User:" + token, v
}

func TestAuthorizerVerdicts(t *testing.T) {
	if _, err := NewSource(Config{Addr: "0.0.0.0:0", Authorizer: fakeAuthorizer{}}); err != nil {
		t.Fatalf("non-loopback with an authorizer refused: %v", err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	cfg := Config{Addr: "127.0.0.1:0", Token: "static", Authorizer: fakeAuthorizer{"ok": Allowed, "old": ExpiredToken, "no": Denied}}
	cfg.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sp, err := s.Splits(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r, cancel := startReader(sp[0])
	defer cancel()
	for _, c := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"Authorization", "Bearer ok"}, 200},
		{[]string{"Authorization", "Bearer static"}, 200},
		{[]string{"Authorization", "Bearer no"}, 403},
		{[]string{"Authorization", "Bearer old"}, 401},
		{[]string{"Authorization", "Bearer what"}, 401},
		{[]string{"Authorization", "Basic b2s="}, 401},
		{nil, 401},
	} {
		if res := post(t, s, lines(1, "x"), c.hdr...); res.code != c.want {
			t.Errorf("header %v: %+v, want %d", c.hdr, res, c.want)
		}
	}
	// Many refusals: all counted, few logged.
	for range 20 {
		post(t, s, lines(1, "x"), "Authorization", "Bearer what")
	}
	waitFor(t, "2 records read", func() bool { return len(r.values()) == 2 })
	if st := s.Stats(); st.Unauthorized != 24 || st.Forbidden != 1 || st.Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
	mu.Lock()
	n := strings.Count(logs.String(), "refused a request")
	mu.Unlock()
	if n < 3 || n > 8 {
		t.Fatalf("%d log lines for 25 refusals, want a few (rate-limited)", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRejectLargerThanBufferCountsBackpressure: with no rate limit, a
// request larger than the buffer is refused (413) because of the buffer,
// so its records are shed for backpressure, not for a rate limit that
// does not exist.
func TestRejectLargerThanBufferCountsBackpressure(t *testing.T) {
	s, _ := newSource(t, Config{BufferRecords: 2, Shedding: Reject})
	if res := post(t, s, lines(3, "a")); res.code != 413 || res.ans.Shed != 3 {
		t.Fatalf("larger than the buffer: %+v", res)
	}
	if st := s.Stats(); st.ShedRateLimit != 0 || st.ShedBackpressure != 3 {
		t.Fatalf("stats %+v: want the 3 records shed for backpressure", st)
	}
}

// TestMaxRequestsBoundsRequestsInFlight: requests held by Block (each
// holding its body) are bounded: one more than MaxRequests is answered
// 503 with Retry-After at once instead of being held too.
func TestMaxRequestsBoundsRequestsInFlight(t *testing.T) {
	s, sp := newSource(t, Config{BufferRecords: 1, MaxRequests: 1, BlockTimeout: time.Minute})
	first := postAsync(t, s, lines(2, "a")) // 1 admitted, then held for room
	waitFor(t, "a held", func() bool { return s.Stats().Accepted == 1 })
	res := post(t, s, lines(1, "b"))
	if res.code != 503 || res.retry != "1" || res.ans.Accepted != 0 {
		t.Fatalf("over MaxRequests: %+v", res)
	}
	if got := readN(t, sp, 2); len(got) != 2 {
		t.Fatalf("read %v", got)
	}
	if res := <-first; res.code != 200 || res.ans.Accepted != 2 {
		t.Fatalf("first: %+v", res)
	}
	waitFor(t, "the first request's slot", func() bool { return len(s.inflight) == 0 })
	third := postAsync(t, s, lines(1, "c"))
	if got := readN(t, sp, 1); len(got) != 1 {
		t.Fatalf("read %v", got)
	}
	if res := <-third; res.code != 200 || res.ans.Accepted != 1 {
		t.Fatalf("after the slot was freed: %+v", res)
	}
	if st := s.Stats(); st.Overloaded != 1 || st.Records != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBlockTimeoutSaysWhenToRetry: a block request that the full buffer
// (backpressure) or the rate limit kept out until BlockTimeout is a 503
// with Retry-After, like reject's 429, so clients back off.
func TestBlockTimeoutSaysWhenToRetry(t *testing.T) {
	s, _ := newSource(t, Config{BufferRecords: 2, BlockTimeout: 20 * time.Millisecond, AckTimeout: 20 * time.Millisecond})
	if res := post(t, s, lines(5, "a")); res.code != 503 || res.retry != "1" { // nobody reads
		t.Fatalf("full buffer: %+v", res)
	}
	// A bucket of 1 that refills once every ~3 hours.
	s2, sp2 := newSource(t, Config{Rate: 0.0001, Burst: 1, BlockTimeout: 20 * time.Millisecond})
	r, cancel := startReader(sp2)
	defer cancel()
	res := post(t, s2, lines(2, "b"))
	if res.code != 503 || res.ans.Accepted != 1 {
		t.Fatalf("over the rate: %+v", res)
	}
	if sec, err := strconv.Atoi(res.retry); err != nil || sec < 3600 {
		t.Fatalf("over the rate: Retry-After %q, want the hours until a token", res.retry)
	}
	if got := r.values(); len(got) != 1 {
		t.Fatalf("pipeline got %v", got)
	}
}

// TestStoppedSaysWhenToRetry: a request after Stop is answered 503 with
// Retry-After, as every 503 of the source is.
func TestStoppedSaysWhenToRetry(t *testing.T) {
	for _, p := range []Policy{Block, Reject} {
		s, _ := newSource(t, Config{Shedding: p})
		s.Stop()
		if res := post(t, s, lines(2, "late")); res.code != 503 || res.retry == "" {
			t.Errorf("%v: after Stop: %d, Retry-After %q; want 503 with Retry-After", p, res.code, res.retry)
		}
	}
}

// TestRunEndsAndRestarts: when the last split of a run closes (the job
// ended or failed) the requests not acknowledged fail with 503 and
// Retry-After, and the records still buffered go with them; a job
// restarted in-process asks for splits again and the source serves again
// on the same address, without the failed run's records.
func TestRunEndsAndRestarts(t *testing.T) {
	s, sp := newSource(t, Config{Delivery: ExactlyOnce})
	addr := s.Addr()
	handed := postAsync(t, s, lines(3, "a"))
	readN(t, sp, 3) // handed over, no checkpoint covers them
	buffered := postAsync(t, s, lines(2, "b"))
	waitFor(t, "the second request's records", func() bool { return s.Stats().Accepted == 5 })
	if err := sp.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan response{"handed": handed, "buffered": buffered} {
		if res := <-ch; res.code != 503 || res.retry == "" || res.ans.Accepted != 0 {
			t.Errorf("%s request at the end of the run: %+v, want 503 with Retry-After and nothing accepted", name, res)
		}
	}
	splits, err := s.Splits(context.Background(), 1)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	sp = splits[0]
	if s.Addr() != addr {
		t.Errorf("second run listens on %s, want %s again", s.Addr(), addr)
	}
	ch := postAsync(t, s, lines(2, "c"))
	if got := readN(t, sp, 2); !slices.Equal(got, []string{`{"id":"c0"}`, `{"id":"c1"}`}) {
		t.Errorf("second run read %q, want only the new request's records", got)
	}
	if err := sp.(stream.PositionCommitter).CommitPosition(context.Background(), sp.Position()); err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.code != 200 || res.ans.Accepted != 2 {
		t.Errorf("second run: %+v, want 200 with 2 accepted", res)
	}
}

// TestRestartPolicyServesAgain: a job over the source that fails and is
// restarted in-process (stream.WithRestartPolicy) serves requests again:
// the restart asks the same source for splits.
func TestRestartPolicyServesAgain(t *testing.T) {
	src, err := NewSource(Config{Addr: "127.0.0.1:0", Delivery: ExactlyOnce, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if err := src.Listen(); err != nil {
		t.Fatal(err)
	}
	env := stream.New(stream.WithParallelism(1), stream.WithCheckpointing(t.TempDir(), 5*time.Millisecond),
		stream.WithRestartPolicy(3, time.Millisecond), stream.WithLogger(slog.New(slog.DiscardHandler)))
	var failed sync.Once
	vals := stream.Map(stream.FromSource(env, "http", stream.Source[connector.Message](src), stream.WatermarkStrategy[connector.Message]{}),
		func(m connector.Message) string {
			if strings.Contains(string(m.Value), "boom") {
				failed.Do(func() { panic("boom") })
			}
			return string(m.Value)
		})
	out := stream.Collect(vals)
	done := make(chan error, 1)
	go func() { done <- env.Execute(context.Background()) }()
	if res := post(t, src, `{"id":"boom"}`); res.code != 503 {
		t.Fatalf("the request that failed the job: %+v, want 503", res)
	}
	// The restarted job takes requests again (a refused connection or a
	// 503 until it is up).
	waitFor(t, "the restarted job to take a request", func() bool {
		select {
		case err := <-done:
			t.Fatalf("job ended: %v", err)
		default:
		}
		r, err := nethttp.Post("http://"+src.Addr()+DefaultPath, "application/json", strings.NewReader(`{"id":"after"}`))
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	src.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out.Values(), `{"id":"after"}`) {
		t.Errorf("the restarted job got %q, want the request after the restart", out.Values())
	}
}
