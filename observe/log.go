package observe

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/logstore"
)

// TopicStatus describes one topic of the log.
type TopicStatus struct {
	Name     string `json:"name"`
	Internal bool   `json:"internal"`
	// Records is the number of offsets retained (latest - earliest, summed).
	Records       int64             `json:"records"`
	Bytes         int64             `json:"bytes"`
	Segments      int               `json:"segments"`
	RecordsPerSec float64           `json:"records_per_sec"`
	BytesPerSec   float64           `json:"bytes_per_sec"`
	Partitions    []PartitionStatus `json:"partitions"`
}

// PartitionStatus describes one partition: offsets, size and append rates.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	// EarliestOffset is the log start offset, LatestOffset the high watermark
	// (the next offset to be written).
	EarliestOffset  int64   `json:"earliest_offset"`
	LatestOffset    int64   `json:"latest_offset"`
	LastStable      int64   `json:"last_stable_offset"`
	Segments        int     `json:"segments"`
	Bytes           int64   `json:"bytes"`
	AppendedRecords int64   `json:"appended_records"`
	AppendedBytes   int64   `json:"appended_bytes"`
	RecordsPerSec   float64 `json:"records_per_sec"`
	BytesPerSec     float64 `json:"bytes_per_sec"`
	// Groups lists the consumer groups that committed an offset here.
	Groups []PartitionGroupLag `json:"groups"`
}

// PartitionGroupLag is one group's position in a partition.
type PartitionGroupLag struct {
	Group     string `json:"group"`
	Committed int64  `json:"committed_offset"`
	Lag       int64  `json:"lag"`
}

// GroupStatus is a consumer group's committed offsets and lag, and, from
// the group coordinator (Observer.SetGroupSource), its state and live
// members with their assigned partitions. A group known only by its
// committed offsets is Empty.
type GroupStatus struct {
	Name         string           `json:"name"`
	State        string           `json:"state"`
	ProtocolType string           `json:"protocol_type,omitempty"`
	Protocol     string           `json:"protocol,omitempty"`
	Generation   int32            `json:"generation,omitempty"`
	TotalLag     int64            `json:"total_lag"`
	Partitions   []GroupPartition `json:"partitions"`
	Members      []GroupMember    `json:"members"`
}

// GroupPartition is a group's committed offset in one partition and its
// lag behind the partition's high watermark (0 when the partition is gone
// or the commit is ahead).
type GroupPartition struct {
	Topic        string `json:"topic"`
	Partition    int32  `json:"partition"`
	Committed    int64  `json:"committed_offset"`
	LatestOffset int64  `json:"latest_offset"`
	Lag          int64  `json:"lag"`
	// CommitTime is the commit's time in ms since the epoch.
	CommitTime int64 `json:"commit_time_ms"`
	// Known is false when the topic or partition no longer exists.
	Known bool `json:"known"`
	// Member is the id of the live member the partition is assigned to, ""
	// when none.
	Member string `json:"member,omitempty"`
}

type partSample struct {
	at      time.Time
	records int64
	bytes   int64
}

// lag is how far committed is behind the high watermark hw.
func lag(committed, hw int64) int64 {
	if committed < 0 || committed >= hw {
		return 0
	}
	return hw - committed
}

func (o *Observer) sampleTopicsLocked(now time.Time) []TopicStatus {
	l := o.opts.Log
	if l == nil {
		return nil
	}
	seen := make(map[logstore.TopicPartition]partSample, len(o.topics))
	var out []TopicStatus
	for _, name := range l.Topics() {
		t, err := l.Topic(name)
		if err != nil {
			continue // deleted since Topics()
		}
		ts := TopicStatus{Name: name, Internal: strings.HasPrefix(name, "__")}
		for p := range t.NumPartitions() {
			part, err := t.Partition(p)
			if err != nil {
				continue
			}
			st := part.Stats()
			tp := logstore.TopicPartition{Topic: name, Partition: p}
			ps := PartitionStatus{
				Partition: p, EarliestOffset: st.LogStartOffset, LatestOffset: st.HighWatermark, LastStable: st.LastStable,
				Segments: st.Segments, Bytes: st.Bytes, AppendedRecords: st.AppendedRecords, AppendedBytes: st.AppendedBytes,
				Groups: []PartitionGroupLag{},
			}
			if prev, ok := o.topics[tp]; ok {
				dt := now.Sub(prev.at)
				ps.RecordsPerSec = rate(prev.records, st.AppendedRecords, dt)
				ps.BytesPerSec = rate(prev.bytes, st.AppendedBytes, dt)
			}
			seen[tp] = partSample{at: now, records: st.AppendedRecords, bytes: st.AppendedBytes}
			ts.Records += st.HighWatermark - st.LogStartOffset
			ts.Bytes += st.Bytes
			ts.Segments += st.Segments
			ts.RecordsPerSec += ps.RecordsPerSec
			ts.BytesPerSec += ps.BytesPerSec
			ts.Partitions = append(ts.Partitions, ps)
		}
		out = append(out, ts)
	}
	o.topics = seen
	return out
}

// sampleGroupsLocked reads the committed offsets of every group, computes
// lag against the topics just sampled and fills each partition's Groups.
func (o *Observer) sampleGroupsLocked(topics []TopicStatus) []GroupStatus {
	s := o.opts.Offsets
	if s == nil && o.opts.Groups == nil {
		return nil
	}
	parts := make(map[logstore.TopicPartition]*PartitionStatus)
	for i := range topics {
		for j := range topics[i].Partitions {
			p := &topics[i].Partitions[j]
			parts[logstore.TopicPartition{Topic: topics[i].Name, Partition: p.Partition}] = p
		}
	}
	var out []GroupStatus
	var stored []string
	if s != nil {
		stored = s.Groups()
	}
	for _, g := range stored {
		offs := s.Fetch(g)
		gs := GroupStatus{Name: g}
		for tp, c := range offs {
			gp := GroupPartition{Topic: tp.Topic, Partition: tp.Partition, Committed: c.Offset, CommitTime: c.CommitTime}
			if p, ok := parts[tp]; ok {
				gp.Known = true
				gp.LatestOffset = p.LatestOffset
				gp.Lag = lag(c.Offset, p.LatestOffset)
				p.Groups = append(p.Groups, PartitionGroupLag{Group: g, Committed: c.Offset, Lag: gp.Lag})
			}
			gs.TotalLag += gp.Lag
			gs.Partitions = append(gs.Partitions, gp)
		}
		sortGroupPartitions(gs.Partitions)
		out = append(out, gs)
	}
	return o.mergeLiveGroupsLocked(out)
}

func sortGroupPartitions(ps []GroupPartition) {
	slices.SortFunc(ps, func(a, b GroupPartition) int {
		if c := cmp.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}
