package cluster

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are an instance's counters, read by Status and the Prometheus
// collector from other goroutines.
type metrics struct {
	app string

	mu          sync.Mutex
	taskRecords map[taskID]int64
	commits     int64
	aborts      int64
	commitTime  time.Duration
	lastCommit  time.Time
	rebalances  int64
	history     []RebalanceEvent
	restores    int64
	restoreRecs int64
	restoreB    int64
	restoreTime time.Duration
	lastRestore time.Duration
	// busy-time window for the autoscaling signal
	winStart   time.Time
	winBusy    time.Duration
	busyRatio  float64
	lagAtStart int64
	lagGrowth  float64 // records per second over the last window
}

func newMetrics(app string) *metrics {
	return &metrics{app: app, taskRecords: map[taskID]int64{}, winStart: time.Now()}
}

// RebalanceEvent is one change of this instance's tasks.
type RebalanceEvent struct {
	Time     time.Time `json:"time"`
	Assigned string    `json:"assigned,omitempty"`
	Revoked  string    `json:"revoked,omitempty"`
}

const historyLen = 50

func (m *metrics) rebalance(_ string, assigned, revoked map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rebalances++
	m.history = append(m.history, RebalanceEvent{Time: time.Now().UTC(), Assigned: fmtParts(assigned), Revoked: fmtParts(revoked)})
	if len(m.history) > historyLen {
		m.history = m.history[len(m.history)-historyLen:]
	}
}

func (m *metrics) records(id taskID, n int) {
	m.mu.Lock()
	m.taskRecords[id] += int64(n)
	m.mu.Unlock()
}

func (m *metrics) commit(ok bool, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.commits++
	} else {
		m.aborts++
	}
	m.commitTime += d
	m.lastCommit = time.Now()
}

func (m *metrics) restored(_ taskID, recs, bytes int64, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restores++
	m.restoreRecs += recs
	m.restoreB += bytes
	m.restoreTime += d
	m.lastRestore = d
}

// autoscaleWindow is the window over which busy time and lag growth are
// measured for the autoscaling signal.
const autoscaleWindow = 10 * time.Second

func (m *metrics) busy(d time.Duration) {
	m.mu.Lock()
	m.winBusy += d
	m.mu.Unlock()
}

// sample closes the busy-time window when it is over, given the
// instance's current total lag.
func (m *metrics) sample(lag int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el := time.Since(m.winStart)
	if el < autoscaleWindow {
		return
	}
	m.busyRatio = math.Min(1, m.winBusy.Seconds()/el.Seconds())
	m.lagGrowth = float64(lag-m.lagAtStart) / el.Seconds()
	m.lagAtStart = lag
	m.winBusy = 0
	m.winStart = time.Now()
}

// TargetUtilization is the busy ratio the autoscaling signal aims at.
const TargetUtilization = 0.7

// Recommend is the autoscaling model: the instances needed so that each
// is busy TargetUtilization of the time, from this instance's busy ratio
// (the load is spread evenly by the assignor), one more when the lag
// grew over the last window while busy above the target, never more than
// the tasks of the widest sub-topology (more instances would idle) and
// never fewer than one.
func Recommend(members int, busyRatio, lagGrowth float64, maxTasks int) int {
	if members < 1 {
		members = 1
	}
	n := int(math.Ceil(float64(members) * busyRatio / TargetUtilization))
	if lagGrowth > 0 && busyRatio > TargetUtilization && n <= members {
		n = members + 1
	}
	if maxTasks > 0 && n > maxTasks {
		n = maxTasks
	}
	return max(n, 1)
}

// Status is what GET /api/v1/cluster returns.
type Status struct {
	Application string `json:"application"`
	Instance    string `json:"instance"`
	ExactlyOnce bool   `json:"exactly_once"`
	Generation  int32  `json:"generation"`
	MemberID    string `json:"member_id"`
	// Members are the group's members as the coordinator describes them.
	Members []Member `json:"members"`
	// Topics are the sub-topologies' input topics, in order.
	Topics []string     `json:"topics"`
	Tasks  []TaskStatus `json:"tasks"`
	// Standbys are the tasks this instance keeps warm copies of.
	Standbys   []StandbyStatus  `json:"standbys,omitempty"`
	Commits    int64            `json:"commits"`
	Aborts     int64            `json:"aborts"`
	LastCommit time.Time        `json:"last_commit"`
	Rebalances int64            `json:"rebalances"`
	History    []RebalanceEvent `json:"rebalance_history"`
	Restores   int64            `json:"restores"`
	// RestoreRecords are the changelog records restores read (a task
	// that starts from a local snapshot reads only those written since).
	RestoreRecords int64   `json:"restore_records"`
	RestoreSecs    float64 `json:"restore_seconds"`
	BusyRatio      float64 `json:"busy_ratio"`
	LagGrowth      float64 `json:"lag_growth_per_second"`
	Recommended    int     `json:"recommended_instances"`
	Error          string  `json:"error,omitempty"`
}

// Member is one instance in the group.
type Member struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	Tasks      string `json:"tasks"`
}

// TaskStatus is one task of this instance.
type TaskStatus struct {
	ID        string `json:"id"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Records   int64  `json:"records"`
	Lag       int64  `json:"lag"`
	Restored  bool   `json:"restored"`
}

// Status reports the instance and the group (members from the group
// coordinator).
func (in *Instance) Status(ctx context.Context) Status {
	s := Status{Application: in.cfg.ApplicationID, Instance: in.cfg.InstanceID, ExactlyOnce: in.cfg.ExactlyOnce, Topics: in.inputs}
	s.MemberID, s.Generation = in.groupMetadata()
	in.mu.Lock()
	var lag int64
	for _, id := range in.sortedTasks() {
		ts := in.tasks[id]
		s.Tasks = append(s.Tasks, TaskStatus{ID: id.String(), Topic: in.inputs[id.sub], Partition: id.part, Records: ts.processed, Lag: ts.lag, Restored: ts.restored})
		lag += ts.lag
	}
	in.mu.Unlock()
	s.Standbys = in.standbyStatus()
	m := in.metrics
	m.sample(lag)
	m.mu.Lock()
	s.Commits, s.Aborts, s.LastCommit = m.commits, m.aborts, m.lastCommit
	s.Rebalances = m.rebalances
	s.History = append([]RebalanceEvent(nil), m.history...)
	s.Restores, s.RestoreSecs, s.RestoreRecords = m.restores, m.restoreTime.Seconds(), m.restoreRecs
	s.BusyRatio, s.LagGrowth = m.busyRatio, m.lagGrowth
	m.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	gs, err := in.adm.DescribeGroups(dctx, in.cfg.ApplicationID)
	if err == nil {
		if g, ok := gs[in.cfg.ApplicationID]; ok && g.Err == nil {
			for _, mb := range g.Members {
				mm := Member{MemberID: mb.MemberID, ClientID: mb.ClientID, Host: mb.ClientHost}
				if mb.InstanceID != nil {
					mm.InstanceID = *mb.InstanceID
				}
				if a, ok := mb.Assigned.AsConsumer(); ok {
					parts := map[string][]int32{}
					for _, t := range a.Topics {
						parts[t.Topic] = t.Partitions
					}
					mm.Tasks = fmtParts(parts)
				}
				s.Members = append(s.Members, mm)
			}
			sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].InstanceID < s.Members[j].InstanceID })
		}
	} else {
		s.Error = "describing the group: " + err.Error()
	}
	maxTasks := 0
	for _, n := range in.parts {
		maxTasks = max(maxTasks, int(n))
	}
	s.Recommended = Recommend(max(1, len(s.Members)), s.BusyRatio, s.LagGrowth, maxTasks)
	return s
}

// Collector returns the instance's Prometheus metrics.
func (in *Instance) Collector() prometheus.Collector { return &collector{in: in} }

type collector struct{ in *Instance }

var (
	cdTasks       = prometheus.NewDesc("sluice_cluster_tasks", "Tasks this instance owns.", []string{"application", "instance"}, nil)
	cdRebalances  = prometheus.NewDesc("sluice_cluster_rebalances_total", "Changes of this instance's tasks (assignments and revocations).", []string{"application", "instance"}, nil)
	cdCommits     = prometheus.NewDesc("sluice_cluster_commits_total", "Transactions (or offset commits) closed, by result.", []string{"application", "instance", "result"}, nil)
	cdCommitSecs  = prometheus.NewDesc("sluice_cluster_commit_seconds_total", "Time spent committing.", []string{"application", "instance"}, nil)
	cdRestores    = prometheus.NewDesc("sluice_cluster_restores_total", "Task restores from changelogs.", []string{"application", "instance"}, nil)
	cdRestoreSecs = prometheus.NewDesc("sluice_cluster_restore_seconds_total", "Time spent restoring tasks.", []string{"application", "instance"}, nil)
	cdRestoreB    = prometheus.NewDesc("sluice_cluster_restore_bytes_total", "Changelog bytes (keys and values) read by restores.", []string{"application", "instance"}, nil)
	cdRestoreRecs = prometheus.NewDesc("sluice_cluster_restore_records_total", "Changelog records read by restores.", []string{"application", "instance"}, nil)
	cdTaskRecs    = prometheus.NewDesc("sluice_cluster_task_records_total", "Input records processed per task.", []string{"application", "task"}, nil)
	cdLag         = prometheus.NewDesc("sluice_cluster_lag_records", "Records of a task's input partition not processed yet.", []string{"application", "task"}, nil)
	cdBusy        = prometheus.NewDesc("sluice_cluster_busy_ratio", "Share of the last window this instance spent processing and committing.", []string{"application", "instance"}, nil)
	cdRecommended = prometheus.NewDesc("sluice_cluster_recommended_instances", "Instances the autoscaling model recommends for the application (see docs/cluster.md).", []string{"application"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cdTasks, cdRebalances, cdCommits, cdCommitSecs, cdRestores, cdRestoreSecs, cdRestoreB, cdRestoreRecs, cdTaskRecs, cdLag, cdBusy, cdRecommended} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	in := c.in
	st := in.Status(context.Background())
	app, inst := in.cfg.ApplicationID, in.cfg.InstanceID
	g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, l...)
	}
	g(cdTasks, prometheus.GaugeValue, float64(len(st.Tasks)), app, inst)
	g(cdRebalances, prometheus.CounterValue, float64(st.Rebalances), app, inst)
	g(cdCommits, prometheus.CounterValue, float64(st.Commits), app, inst, "committed")
	g(cdCommits, prometheus.CounterValue, float64(st.Aborts), app, inst, "aborted")
	in.metrics.mu.Lock()
	ct, rb, rr := in.metrics.commitTime, in.metrics.restoreB, in.metrics.restoreRecs
	in.metrics.mu.Unlock()
	g(cdCommitSecs, prometheus.CounterValue, ct.Seconds(), app, inst)
	g(cdRestores, prometheus.CounterValue, float64(st.Restores), app, inst)
	g(cdRestoreSecs, prometheus.CounterValue, st.RestoreSecs, app, inst)
	g(cdRestoreB, prometheus.CounterValue, float64(rb), app, inst)
	g(cdRestoreRecs, prometheus.CounterValue, float64(rr), app, inst)
	for _, t := range st.Tasks {
		g(cdTaskRecs, prometheus.CounterValue, float64(t.Records), app, t.ID)
		g(cdLag, prometheus.GaugeValue, float64(t.Lag), app, t.ID)
	}
	g(cdBusy, prometheus.GaugeValue, st.BusyRatio, app, inst)
	g(cdRecommended, prometheus.GaugeValue, float64(st.Recommended), app)
}

// Ready reports whether the instance is a member of its group (for
// /readyz): not before it joined, nor while it rejoins.
func (in *Instance) Ready() error {
	if m, gen := in.groupMetadata(); m == "" || gen < 0 {
		return fmt.Errorf("instance %s has not joined group %s yet", in.cfg.InstanceID, in.cfg.ApplicationID)
	}
	return nil
}
