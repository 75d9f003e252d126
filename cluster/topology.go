package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topology is a pipeline cut into sub-topologies. SubTopologies[0] reads
// Source; each later one reads the repartition topic written by the one
// before it.
type Topology struct {
	// Source is the topic the first sub-topology reads.
	Source string
	// SourcePartitions, when > 0, creates Source with that many
	// partitions if it is missing (the ingest topic); otherwise a missing
	// source is an error.
	SourcePartitions int32
	SubTopologies    []SubTopology
	// Outputs are the sink topics; a missing one is created with the
	// source's partition count.
	Outputs []string
	// Watermarks: the first sub-topology's tasks derive watermarks from
	// the event times of the records they forward (bounded
	// out-of-orderness; a task whose partition forwarded nothing for
	// IdleTimeout is idle); the tasks of later sub-topologies pass their
	// input watermark on. MaxOutOfOrderness < 0 means no event time.
	MaxOutOfOrderness time.Duration
	IdleTimeout       time.Duration
	// Partitions is the partition count of the repartition and changelog
	// topics; 0: the source topic's.
	Partitions int32
}

// SubTopology is one part of the pipeline between key changes.
type SubTopology struct {
	// Name is the step that starts it (it names its internal topics).
	Name string
	// Stateful sub-topologies have a changelog topic.
	Stateful bool
	// NewTask creates the task for one partition of the sub-topology's
	// input.
	NewTask func(partition int32) Task
}

// Task processes one partition of a sub-topology's input. The instance
// calls a task from one goroutine at a time.
type Task interface {
	// Process handles one data record. Event time is r.Timestamp for
	// records of a repartition topic.
	Process(out Output, r *kgo.Record) error
	// Watermark tells the task that its input watermark advanced to wm
	// (milliseconds); it fires what wm completes.
	Watermark(out Output, wm int64) error
	// Flush writes the state changed since the last Flush to the
	// changelog (out.Changelog) before a commit.
	Flush(out Output) error
	// Commit says the last Flush is committed: the state as it is now is
	// what a restore would rebuild.
	Commit()
	// Abort rolls the state back to the last Commit (the transaction
	// aborted; the input is rewound to the committed offsets).
	Abort()
	// Restore applies one changelog record (a nil value deletes).
	Restore(key, value []byte) error
}

// Output is where a task writes, inside the instance's current
// transaction under exactly-once.
type Output interface {
	// Forward sends a record to the next sub-topology, partitioned by
	// key; ts is its event time.
	Forward(key, value []byte, ts int64)
	// Emit writes a record to the output topic number sink of
	// Topology.Outputs.
	Emit(sink int, key, value []byte, ts int64)
	// Changelog writes a state change of the task (a nil value deletes).
	Changelog(key, value []byte)
}

func (t *Topology) validate() error {
	if t.Source == "" {
		return errors.New("cluster: the topology has no source topic")
	}
	if len(t.SubTopologies) == 0 {
		return errors.New("cluster: the topology has no sub-topology")
	}
	for i, s := range t.SubTopologies {
		if s.NewTask == nil {
			return fmt.Errorf("cluster: sub-topology %d (%s) has no task factory", i, s.Name)
		}
		if s.Name == "" || !appIDRe.MatchString(s.Name) {
			return fmt.Errorf("cluster: sub-topology %d: name %q cannot name a topic", i, s.Name)
		}
		if i == 0 && s.Stateful {
			return errors.New("cluster: the first sub-topology must be stateless (it reads the source's partitioning)")
		}
	}
	return nil
}

// UndoFree is implemented by tasks that can run without keeping, for
// every key they change, its value at the last commit (Table.DisableUndo).
// The instance then rolls such a task back after an aborted transaction
// by starting it afresh from its local snapshot and changelog: aborts are
// rare, and the undo copy costs on every commit interval.
type UndoFree interface {
	DisableUndo()
}
