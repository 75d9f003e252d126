package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/sluicehq/sluice/observe"
	"github.com/sluicehq/sluice/stream"
)

// JobRegistry is where commands register their running stream jobs so
// that the JSON API, the dashboard and /metrics show them. Register fails
// for an invalid or duplicate id; the returned function removes the job.
// *observe.Observer implements it.
type JobRegistry interface {
	Register(id string, job observe.Job, opts ...observe.JobOption) (unregister func(), err error)
}

// maxEventStreams bounds concurrent /api/v1/events clients.
const maxEventStreams = 64

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// Info is the body of /api/v1/info: which parts of the API this server
// has, so that the dashboard shows only the pages it can fill.
type Info struct {
	// Jobs is true when the server has the overview, topics, groups and
	// jobs endpoints and their events (Config.Observer).
	Jobs bool `json:"jobs"`
	// Cluster is true when the server has /api/v1/cluster (Config.Cluster).
	Cluster bool `json:"cluster"`
}

// JobSummary is a job in the /api/v1/jobs list: its status and job-level
// figures without the per-vertex detail.
type JobSummary struct {
	ID               string    `json:"id"`
	Status           string    `json:"status"`
	Error            string    `json:"error,omitempty"`
	Started          time.Time `json:"started"`
	RecordsInPerSec  float64   `json:"records_in_per_sec"`
	RecordsOutPerSec float64   `json:"records_out_per_sec"`
	RecordsIn        int64     `json:"records_in"`
	RecordsOut       int64     `json:"records_out"`
	observe.Watermark
	Backpressure         string                   `json:"backpressure"`
	Vertices             int                      `json:"vertices"`
	CheckpointsAvailable bool                     `json:"checkpoints_available"`
	LastCheckpoint       *observe.CheckpointStats `json:"last_checkpoint,omitempty"`
}

func summarize(j observe.JobStatus) JobSummary {
	return JobSummary{
		ID: j.ID, Status: j.Status, Error: j.Error, Started: j.Started,
		RecordsInPerSec: j.RecordsInPerSec, RecordsOutPerSec: j.RecordsOutPerSec, RecordsIn: j.RecordsIn, RecordsOut: j.RecordsOut,
		Watermark: j.Watermark, Backpressure: j.Backpressure, Vertices: len(j.Vertices),
		CheckpointsAvailable: j.CheckpointsAvailable, LastCheckpoint: j.LastCheckpoint,
	}
}

// TopicSummary is a topic in the /api/v1/topics list.
type TopicSummary struct {
	Name          string  `json:"name"`
	Internal      bool    `json:"internal"`
	Partitions    int     `json:"partitions"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Segments      int     `json:"segments"`
	RecordsPerSec float64 `json:"records_per_sec"`
	BytesPerSec   float64 `json:"bytes_per_sec"`
	// EarliestOffsets and LatestOffsets are per partition, by index.
	EarliestOffsets []int64 `json:"earliest_offsets"`
	LatestOffsets   []int64 `json:"latest_offsets"`
}

func summarizeTopic(t observe.TopicStatus) TopicSummary {
	s := TopicSummary{Name: t.Name, Internal: t.Internal, Partitions: len(t.Partitions), Records: t.Records, Bytes: t.Bytes,
		Segments: t.Segments, RecordsPerSec: t.RecordsPerSec, BytesPerSec: t.BytesPerSec,
		EarliestOffsets: make([]int64, 0, len(t.Partitions)), LatestOffsets: make([]int64, 0, len(t.Partitions))}
	for _, p := range t.Partitions {
		s.EarliestOffsets = append(s.EarliestOffsets, p.EarliestOffset)
		s.LatestOffsets = append(s.LatestOffsets, p.LatestOffset)
	}
	return s
}

// Overview is the body of /api/v1/overview and of each server-sent event.
type Overview struct {
	Time   time.Time      `json:"time"`
	Seq    int            `json:"seq"`
	Topics []TopicSummary `json:"topics"`
	Groups []GroupSummary `json:"groups"`
	Jobs   []JobSummary   `json:"jobs"`
}

// GroupSummary is a group in the /api/v1/groups list.
type GroupSummary struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Members    int    `json:"members"`
	Partitions int    `json:"partitions"`
	TotalLag   int64  `json:"total_lag"`
}

func summarizeGroup(g observe.GroupStatus) GroupSummary {
	return GroupSummary{Name: g.Name, State: g.State, Members: len(g.Members), Partitions: len(g.Partitions), TotalLag: g.TotalLag}
}

func overview(s *observe.Snapshot) Overview {
	ov := Overview{Time: s.Time, Seq: s.Seq, Topics: []TopicSummary{}, Groups: []GroupSummary{}, Jobs: []JobSummary{}}
	for _, t := range s.Topics {
		ov.Topics = append(ov.Topics, summarizeTopic(t))
	}
	for _, g := range s.Groups {
		ov.Groups = append(ov.Groups, summarizeGroup(g))
	}
	for _, j := range s.Jobs {
		ov.Jobs = append(ov.Jobs, summarize(j))
	}
	return ov
}

// JobGraph is the body of /api/v1/jobs/{id}/graph: the vertices with live
// figures and the edges with their exchange kind.
type JobGraph struct {
	ID       string           `json:"id"`
	Status   string           `json:"status"`
	Time     time.Time        `json:"time"`
	Vertices []observe.Vertex `json:"vertices"`
	Edges    []observe.Edge   `json:"edges"`
	Inferred bool             `json:"inferred"`
}

// JobPlan is the body of /api/v1/jobs/{id}/plan: the physical plan the
// job runs (operators, parallelism, chains, exchanges) and the same as
// the text EXPLAIN prints.
type JobPlan struct {
	ID   string      `json:"id"`
	Plan stream.Plan `json:"plan"`
	Text string      `json:"text"`
}

// Checkpoints is the body of /api/v1/jobs/{id}/checkpoints.
type Checkpoints struct {
	Available   bool                      `json:"available"`
	Reason      string                    `json:"reason,omitempty"`
	Checkpoints []observe.CheckpointStats `json:"checkpoints"`
}

// JobEvent is the body of a per-job server-sent event.
type JobEvent struct {
	Time  time.Time            `json:"time"`
	Seq   int                  `json:"seq"`
	Job   observe.JobStatus    `json:"job"`
	Point observe.HistoryPoint `json:"point"`
}

// The resources Config.Visible is asked about.
const (
	ResourceTopic = "topic"
	ResourceGroup = "group"
)

// visible reports whether the request's principal may see the topic or
// group: always for the super token and without a token or a Visible hook.
func (s *Server) visible(r *http.Request, kind, name string) bool {
	return !s.filtersVisibility(r) || s.cfg.Visible(PrincipalFrom(r.Context()), r, kind, name)
}

// visibleOverview is the overview with only the topics and groups the
// request's principal may see (Kafka's Metadata and ListGroups hide the
// others the same way), each group summed over the topics it may see
// (visibleGroup).
func (s *Server) visibleOverview(r *http.Request, snap *observe.Snapshot) Overview {
	ov := overview(snap)
	ov.Topics = slices.DeleteFunc(ov.Topics, func(t TopicSummary) bool { return !s.visible(r, ResourceTopic, t.Name) })
	ov.Groups = ov.Groups[:0]
	seeTopic := s.visibleMemo(r, ResourceTopic)
	for _, g := range snap.Groups {
		if s.visible(r, ResourceGroup, g.Name) {
			ov.Groups = append(ov.Groups, summarizeGroup(s.visibleGroupBy(r, g, seeTopic)))
		}
	}
	if !s.jobsVisible(r) {
		ov.Jobs = []JobSummary{}
	}
	return ov
}

// filtersVisibility reports whether the request's principal sees only
// what the Visible hook lets it (not the super token, nor a server
// without tokens).
func (s *Server) filtersVisibility(r *http.Request) bool {
	return s.cfg.Visible != nil && PrincipalFrom(r.Context()) != "" && !staticToken(r.Context())
}

// visibleTopic is t with, in each partition, only the groups the
// request's principal may see: a topic two tenants read must not name one
// tenant's groups to the other. t (the snapshot's) is not changed.
func (s *Server) visibleTopic(r *http.Request, t observe.TopicStatus) observe.TopicStatus {
	if !s.filtersVisibility(r) {
		return t
	}
	see := s.visibleMemo(r, ResourceGroup)
	t.Partitions = slices.Clone(t.Partitions)
	for i := range t.Partitions {
		p := &t.Partitions[i]
		p.Groups = slices.DeleteFunc(slices.Clone(p.Groups), func(g observe.PartitionGroupLag) bool { return !see(g.Group) })
	}
	return t
}

// visibleGroup is g without the topics the request's principal may not
// see: their committed partitions (and lag) and the members'
// subscriptions and assignments of them are left out, as Kafka's
// OffsetFetch of a whole group leaves out the topics the principal may
// not read. g (the snapshot's) is not changed.
func (s *Server) visibleGroup(r *http.Request, g observe.GroupStatus) observe.GroupStatus {
	return s.visibleGroupBy(r, g, s.visibleMemo(r, ResourceTopic))
}

// visibleGroupBy is visibleGroup with see telling the visible topics.
func (s *Server) visibleGroupBy(r *http.Request, g observe.GroupStatus, see func(topic string) bool) observe.GroupStatus {
	if !s.filtersVisibility(r) {
		return g
	}
	g.Partitions = slices.DeleteFunc(slices.Clone(g.Partitions), func(p observe.GroupPartition) bool { return !see(p.Topic) })
	g.TotalLag = 0
	for _, p := range g.Partitions {
		g.TotalLag += p.Lag
	}
	g.Members = slices.Clone(g.Members)
	for i := range g.Members {
		m := &g.Members[i]
		m.Subscription = slices.DeleteFunc(slices.Clone(m.Subscription), func(t string) bool { return !see(t) })
		m.Assignment = slices.DeleteFunc(slices.Clone(m.Assignment), func(a observe.MemberAssignment) bool { return !see(a.Topic) })
	}
	return g
}

// visibleMemo is visible for one kind of resource, asking the hook once
// per name.
func (s *Server) visibleMemo(r *http.Request, kind string) func(name string) bool {
	seen := map[string]bool{}
	return func(name string) bool {
		ok, done := seen[name]
		if !done {
			ok = s.visible(r, kind, name)
			seen[name] = ok
		}
		return ok
	}
}

// jobsVisible reports whether the request's principal may see the jobs:
// whether the Authorize hook lets it GET /api/v1/jobs (always for the
// super token, and without a token or a hook).
func (s *Server) jobsVisible(r *http.Request) bool {
	p := PrincipalFrom(r.Context())
	if s.cfg.Authorize == nil || p == "" || staticToken(r.Context()) {
		return true
	}
	jr := r.Clone(r.Context())
	jr.Method, jr.URL.Path, jr.URL.RawPath, jr.URL.RawQuery = http.MethodGet, "/api/v1/jobs", "", ""
	return s.cfg.Authorize(p, jr)
}

func (s *Server) registerAPI(o *observe.Observer) {
	m := s.Mux
	m.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.visibleOverview(r, o.Snapshot()))
	})
	m.HandleFunc("GET /api/v1/topics", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.visibleOverview(r, o.Snapshot()).Topics)
	})
	m.HandleFunc("GET /api/v1/topics/{topic}", func(w http.ResponseWriter, r *http.Request) {
		if !s.visible(r, ResourceTopic, r.PathValue("topic")) {
			s.refused(r, "forbidden", PrincipalFrom(r.Context()))
			writeError(w, http.StatusForbidden, "%s may not describe topic %q", PrincipalFrom(r.Context()), r.PathValue("topic"))
			return
		}
		t, err := o.Snapshot().Topic(r.PathValue("topic"))
		if err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, s.visibleTopic(r, t))
	})
	m.HandleFunc("GET /api/v1/groups", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.visibleOverview(r, o.Snapshot()).Groups)
	})
	m.HandleFunc("GET /api/v1/groups/{group}", func(w http.ResponseWriter, r *http.Request) {
		if !s.visible(r, ResourceGroup, r.PathValue("group")) {
			s.refused(r, "forbidden", PrincipalFrom(r.Context()))
			writeError(w, http.StatusForbidden, "%s may not describe group %q", PrincipalFrom(r.Context()), r.PathValue("group"))
			return
		}
		g, ok := o.Snapshot().Group(r.PathValue("group"))
		if !ok {
			writeError(w, http.StatusNotFound, "group %q: unknown group", r.PathValue("group"))
			return
		}
		writeJSON(w, http.StatusOK, s.visibleGroup(r, g))
	})
	m.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, overview(o.Snapshot()).Jobs)
	})
	job := func(w http.ResponseWriter, r *http.Request) (observe.JobStatus, *observe.Snapshot, bool) {
		snap := o.Snapshot()
		j, err := snap.Job(r.PathValue("job"))
		if err != nil && errors.Is(err, observe.ErrUnknownJob) {
			// Registered since the last sample?
			snap = o.Sample()
			j, err = snap.Job(r.PathValue("job"))
		}
		if err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return j, snap, false
		}
		return j, snap, true
	}
	m.HandleFunc("GET /api/v1/jobs/{job}", func(w http.ResponseWriter, r *http.Request) {
		if j, _, ok := job(w, r); ok {
			writeJSON(w, http.StatusOK, j)
		}
	})
	m.HandleFunc("GET /api/v1/jobs/{job}/graph", func(w http.ResponseWriter, r *http.Request) {
		if j, snap, ok := job(w, r); ok {
			writeJSON(w, http.StatusOK, JobGraph{ID: j.ID, Status: j.Status, Time: snap.Time, Vertices: j.Vertices, Edges: j.Graph.Edges, Inferred: j.Graph.Inferred})
		}
	})
	m.HandleFunc("GET /api/v1/jobs/{job}/plan", func(w http.ResponseWriter, r *http.Request) {
		j, _, ok := job(w, r)
		if !ok {
			return
		}
		if j.Plan == nil {
			writeError(w, http.StatusNotFound, "job %q does not report its plan (it was registered as an observe.Job without a Plan method)", j.ID)
			return
		}
		writeJSON(w, http.StatusOK, JobPlan{ID: j.ID, Plan: *j.Plan, Text: j.Plan.Text()})
	})
	m.HandleFunc("GET /api/v1/jobs/{job}/checkpoints", func(w http.ResponseWriter, r *http.Request) {
		j, _, ok := job(w, r)
		if !ok {
			return
		}
		c := Checkpoints{Available: j.CheckpointsAvailable, Checkpoints: j.Checkpoints}
		if c.Checkpoints == nil {
			c.Checkpoints = []observe.CheckpointStats{}
		}
		if !c.Available {
			c.Reason = "the job reports no checkpoints: checkpointing is off or none has completed yet"
		}
		writeJSON(w, http.StatusOK, c)
	})
	m.HandleFunc("GET /api/v1/jobs/{job}/history", func(w http.ResponseWriter, r *http.Request) {
		h, err := o.History(r.PathValue("job"))
		if err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return
		}
		if h == nil {
			h = []observe.HistoryPoint{}
		}
		writeJSON(w, http.StatusOK, h)
	})
	m.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) { s.events(w, r, o, "") })
	m.HandleFunc("GET /api/v1/jobs/{job}/events", func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := job(w, r); ok {
			s.events(w, r, o, r.PathValue("job"))
		}
	})
}
