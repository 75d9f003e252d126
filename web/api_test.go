package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/logstore"
	"github.com/sluicehq/sluice/observe"
)

func TestAPI(t *testing.T) {
	l := openLog(t)
	offs, err := logstore.OpenOffsetStore(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if err := offs.Commit(context.Background(), "billing", map[logstore.TopicPartition]logstore.CommittedOffset{
		{Topic: "clicks", Partition: 1}: {Offset: 2, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	o := observe.New(observe.Options{Log: l, Offsets: offs})
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "tok", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := s.Jobs().Register("squares", startJob(t, false), observe.WithGraph(jobGraph))
	if err != nil {
		t.Fatal(err)
	}
	defer un()
	base := serve(t, s)
	o.Sample()
	waitFor(t, "records through the job", 30*time.Second, func() bool {
		js, _ := o.Sample().Job("squares")
		return js.RecordsOut > 0
	})

	var ov Overview
	if code := getJSON(t, base+"/api/v1/overview", "tok", &ov); code != 200 || len(ov.Jobs) != 1 || ov.Jobs[0].ID != "squares" || ov.Jobs[0].Vertices != 5 {
		t.Fatalf("overview %d %+v", code, ov)
	}
	var topics []TopicSummary
	getJSON(t, base+"/api/v1/topics", "tok", &topics)
	var clicks *TopicSummary
	for i := range topics {
		if topics[i].Name == "clicks" {
			clicks = &topics[i]
		}
	}
	if clicks == nil || clicks.Partitions != 2 || clicks.LatestOffsets[0] != 5 || clicks.LatestOffsets[1] != 8 || clicks.Records != 13 {
		t.Fatalf("topics %+v", topics)
	}
	var topic observe.TopicStatus
	if code := getJSON(t, base+"/api/v1/topics/clicks", "tok", &topic); code != 200 || topic.Partitions[1].Groups[0].Lag != 6 {
		t.Fatalf("topic %d %+v", code, topic)
	}
	var group observe.GroupStatus
	if code := getJSON(t, base+"/api/v1/groups/billing", "tok", &group); code != 200 || group.TotalLag != 6 {
		t.Fatalf("group %d %+v", code, group)
	}
	var graph JobGraph
	if code := getJSON(t, base+"/api/v1/jobs/squares/graph", "tok", &graph); code != 200 || len(graph.Vertices) != 5 || len(graph.Edges) != 4 || graph.Inferred {
		t.Fatalf("graph %d %+v", code, graph)
	}
	for _, v := range graph.Vertices {
		if v.Backpressure == "" || v.Parallelism < 1 {
			t.Fatalf("vertex %+v", v)
		}
	}
	var job observe.JobStatus
	if code := getJSON(t, base+"/api/v1/jobs/squares", "tok", &job); code != 200 || job.Status != observe.JobRunning || job.RecordsIn == 0 {
		t.Fatalf("job %d %+v", code, job)
	}
	// The plan: the job's own (registered with WithGraph, it still
	// reports its plan), the same graph, and its text.
	var plan JobPlan
	if code := getJSON(t, base+"/api/v1/jobs/squares/plan", "tok", &plan); code != 200 || len(plan.Plan.Nodes) != 5 || len(plan.Plan.Edges) != 4 || !plan.Plan.Resolved ||
		!strings.Contains(plan.Text, `+- rebalance: #1 map "square" parallelism=2`) {
		t.Fatalf("plan %d %+v\n%s", code, plan, plan.Text)
	}
	if g := observe.GraphOf(plan.Plan); len(g.Edges) != len(jobGraph.Edges) {
		t.Fatalf("graph of the plan %+v, want %+v", g, jobGraph)
	} else {
		for i, e := range jobGraph.Edges {
			if g.Edges[i] != e {
				t.Errorf("edge %d of the plan %+v, want %+v", i, g.Edges[i], e)
			}
		}
	}
	if job.Plan == nil || len(job.Plan.Nodes) != 5 {
		t.Fatalf("job status without its plan: %+v", job.Plan)
	}
	var ck Checkpoints
	if code := getJSON(t, base+"/api/v1/jobs/squares/checkpoints", "tok", &ck); code != 200 || ck.Available || ck.Reason == "" || ck.Checkpoints == nil {
		t.Fatalf("checkpoints %d %+v", code, ck)
	}
	var hist []observe.HistoryPoint
	if code := getJSON(t, base+"/api/v1/jobs/squares/history", "tok", &hist); code != 200 || len(hist) == 0 {
		t.Fatalf("history %d %+v", code, hist)
	}

	// Bad input: JSON 404s, 401 without the token, public static files.
	for _, path := range []string{"/api/v1/jobs/nope", "/api/v1/jobs/nope/graph", "/api/v1/jobs/nope/plan", "/api/v1/jobs/nope/checkpoints",
		"/api/v1/jobs/nope/history", "/api/v1/jobs/nope/events", "/api/v1/topics/nope", "/api/v1/groups/nope", "/api/v1/nothing", "/api/v2/jobs"} {
		var e apiError
		if code := getJSON(t, base+path, "tok", &e); code != 404 || e.Error == "" {
			t.Errorf("GET %s: %d %+v, want 404 with a JSON error", path, code, e)
		}
	}
	var e apiError
	if code := getJSON(t, base+"/api/v1/jobs", "", &e); code != 401 || !strings.Contains(e.Error, "token") {
		t.Errorf("no token: %d %+v", code, e)
	}
	for _, path := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		if code := getJSON(t, base+path, "", nil); code != 200 {
			t.Errorf("GET %s without token: %d", path, code)
		}
	}
	if code := getJSON(t, base+"/assets/nope.js", "", nil); code != 404 {
		t.Errorf("missing asset: %d", code)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/jobs", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != 404 {
		t.Errorf("POST: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// readEvent reads one server-sent event.
func readEvent(t *testing.T, r *bufio.Reader) (name string, data []byte) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):]...)
		}
	}
}

func TestEventsFollowSamplesAndEndAtShutdown(t *testing.T) {
	o := observe.New(observe.Options{Log: openLog(t)})
	s, err := New(Config{Addr: "127.0.0.1:0", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := o.Register("squares", startJob(t, false))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	for _, path := range []string{"/api/v1/events", "/api/v1/jobs/squares/events"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("%s: content type %q", path, ct)
		}
		r := bufio.NewReader(resp.Body)
		seq := 0
		for i := range 3 {
			if i > 0 {
				o.Sample()
			}
			name, data := readEvent(t, r)
			var ev struct {
				Seq int `json:"seq"`
			}
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatalf("%s: %v in %s", path, err, data)
			}
			if (path == "/api/v1/events") != (name == "overview") || ev.Seq <= seq {
				t.Fatalf("%s: event %s seq %d after %d", path, name, ev.Seq, seq)
			}
			seq = ev.Seq
		}
		resp.Body.Close()
	}

	// A job's stream says "gone" when the job is unregistered.
	resp, err := http.Get(base + "/api/v1/jobs/squares/events")
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	readEvent(t, r)
	un()
	o.Sample()
	if name, _ := readEvent(t, r); name != "gone" {
		t.Fatalf("after unregister: event %q", name)
	}
	resp.Body.Close()

	// An open stream does not hold up shutdown (Serve would fail with its
	// shutdown deadline exceeded).
	resp, err = http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readEvent(t, bufio.NewReader(resp.Body))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An event stream outlives the server's read and write timeouts.
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	o := observe.New(observe.Options{})
	s, err := New(Config{Addr: "127.0.0.1:0", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.ReadTimeout = 50 * time.Millisecond
	s.srv.WriteTimeout = 50 * time.Millisecond
	base := serve(t, s)
	resp, err := http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	readEvent(t, r)
	time.Sleep(300 * time.Millisecond) // let both timeouts pass: not synchronisation
	o.Sample()
	if name, _ := readEvent(t, r); name != "overview" {
		t.Fatalf("event %q after the timeouts", name)
	}
}

func TestEventStreamLimit(t *testing.T) {
	o := observe.New(observe.Options{})
	s, err := New(Config{Addr: "127.0.0.1:0", Observer: o}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.streams = make(chan struct{}, 1) // a limit of one stream
	base := serve(t, s)
	resp, err := http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	readEvent(t, bufio.NewReader(resp.Body))
	var e apiError
	if code := getJSON(t, base+"/api/v1/events", "", &e); code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "too many") {
		t.Fatalf("second stream: %d %+v", code, e)
	}
	resp.Body.Close()
	waitFor(t, "the first stream's slot to free", 10*time.Second, func() bool {
		r, err := http.Get(base + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
}
