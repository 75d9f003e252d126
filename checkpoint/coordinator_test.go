package checkpoint

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// script drives a coordinator through steps and records the actions it
// returns, one line per action, so that whole interactions read as a
// table.
type step struct {
	at   time.Duration // since t0
	do   string        // tick | ack T ID | decline T ID | finish T | now
	want string        // the actions, "trigger 1; complete 1 [a#0 b#0]"
}

func runScript(t *testing.T, cfg CoordinatorConfig, steps []step) *Coordinator {
	t.Helper()
	c := NewCoordinator(cfg)
	t0 := time.Unix(1000, 0)
	for i, s := range steps {
		now := t0.Add(s.at)
		f := strings.Fields(s.do)
		var acts []Action
		switch f[0] {
		case "tick":
			acts = c.Tick(now)
		case "ack":
			var id ID
			fmt.Sscan(f[2], &id)
			var err error
			acts, err = c.Ack(now, id, Ack{Task: task(f[1])})
			if err != nil {
				acts = []Action{{Kind: 0, Err: err}}
			}
		case "decline":
			var id ID
			fmt.Sscan(f[2], &id)
			acts = c.Decline(now, id, task(f[1]), errors.New("disk full"))
		case "finish":
			acts = c.Finished(now, task(f[1]))
		case "now":
			a, err := c.TriggerNow(now)
			if err != nil {
				acts = []Action{{Err: err}}
			} else {
				acts = []Action{a}
			}
		default:
			t.Fatalf("step %d: unknown %q", i, s.do)
		}
		if got := format(acts); got != s.want {
			t.Fatalf("step %d (%s at %s): got %q, want %q", i, s.do, s.at, got, s.want)
		}
	}
	return c
}

func task(s string) TaskID {
	name, sub, _ := strings.Cut(s, "#")
	var n int
	fmt.Sscan(sub, &n)
	return TaskID{Operator: name, Subtask: n}
}

func format(acts []Action) string {
	var parts []string
	for _, a := range acts {
		switch a.Kind {
		case ActionTrigger:
			s := fmt.Sprintf("trigger %d", a.ID)
			if a.Savepoint {
				s += " savepoint"
			}
			parts = append(parts, s)
		case ActionComplete:
			var ts []string
			for _, k := range a.Acks {
				ts = append(ts, k.Task.String())
			}
			parts = append(parts, fmt.Sprintf("complete %d [%s]", a.ID, strings.Join(ts, " ")))
		case ActionAbort:
			reason := "declined"
			if errors.Is(a.Err, ErrTimeout) {
				reason = "timeout"
			}
			parts = append(parts, fmt.Sprintf("abort %d %s", a.ID, reason))
		default:
			switch {
			case errors.Is(a.Err, ErrInFlight):
				parts = append(parts, "error in-flight")
			default:
				parts = append(parts, "error "+a.Err.Error())
			}
		}
	}
	return strings.Join(parts, "; ")
}

func TestCoordinatorScripts(t *testing.T) {
	tasks := []TaskID{{"src", 0}, {"sink", 0}, {"sink", 1}}
	cfg := CoordinatorConfig{Interval: time.Second, Timeout: 3 * time.Second, Tasks: tasks}
	cases := []struct {
		name  string
		cfg   CoordinatorConfig
		steps []step
	}{
		{"complete in order", cfg, []step{
			{0, "tick", ""},
			{500 * time.Millisecond, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{1100 * time.Millisecond, "ack src#0 1", ""},
			{1200 * time.Millisecond, "ack sink#1 1", ""},
			{1300 * time.Millisecond, "ack sink#0 1", "complete 1 [sink#0 sink#1 src#0]"},
			{1900 * time.Millisecond, "tick", ""},
			{2 * time.Second, "tick", "trigger 2"},
		}},
		{"at most one in flight", cfg, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{2 * time.Second, "tick", ""},
			{2500 * time.Millisecond, "now", "error in-flight"},
			{2600 * time.Millisecond, "ack src#0 1", ""},
			{2700 * time.Millisecond, "ack sink#0 1", ""},
			{2800 * time.Millisecond, "ack sink#1 1", "complete 1 [sink#0 sink#1 src#0]"},
			{2800 * time.Millisecond, "tick", "trigger 2"},
		}},
		{"timeout then next goes ahead", cfg, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{1500 * time.Millisecond, "ack src#0 1", ""},
			{3999 * time.Millisecond, "tick", ""},
			{4 * time.Second, "tick", "abort 1 timeout; trigger 2"},
			{4100 * time.Millisecond, "ack sink#0 1", ""}, // stale ack ignored
			{4200 * time.Millisecond, "ack src#0 2", ""},
			{4300 * time.Millisecond, "ack sink#0 2", ""},
			{4400 * time.Millisecond, "ack sink#1 2", "complete 2 [sink#0 sink#1 src#0]"},
		}},
		{"decline aborts", cfg, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{1100 * time.Millisecond, "decline sink#1 1", "abort 1 declined"},
			{1200 * time.Millisecond, "decline sink#1 1", ""},
			{2 * time.Second, "tick", "trigger 2"},
		}},
		{"min pause delays the next", CoordinatorConfig{Interval: time.Second, MinPause: 800 * time.Millisecond, Tasks: tasks[:1]}, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{1900 * time.Millisecond, "ack src#0 1", "complete 1 [src#0]"},
			{2 * time.Second, "tick", ""},
			{2700 * time.Millisecond, "tick", "trigger 2"},
		}},
		{"finished tasks count as acknowledged", cfg, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{1100 * time.Millisecond, "ack sink#0 1", ""},
			{1100 * time.Millisecond, "ack sink#1 1", ""},
			{1200 * time.Millisecond, "finish src#0", "complete 1 [sink#0 sink#1]"},
			{2 * time.Second, "tick", "trigger 2"},
			{2100 * time.Millisecond, "ack sink#0 2", ""},
			{2100 * time.Millisecond, "ack sink#1 2", "complete 2 [sink#0 sink#1]"},
		}},
		{"savepoint on demand", CoordinatorConfig{Tasks: tasks[:1], LastID: 41}, []step{
			{0, "tick", ""},
			{time.Hour, "tick", ""},
			{time.Hour, "now", "trigger 42 savepoint"},
			{time.Hour, "ack src#0 42", "complete 42 [src#0]"},
		}},
		{"unknown and duplicate acks are errors", cfg, []step{
			{0, "tick", ""},
			{time.Second, "tick", "trigger 1"},
			{time.Second, "ack nobody#0 1", "error checkpoint 1: ack from unknown task nobody#0"},
			{time.Second, "ack src#0 1", ""},
			{time.Second, "ack src#0 1", "error checkpoint 1: task src#0 acknowledged twice"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runScript(t, tc.cfg, tc.steps) })
	}
}

// TestCoordinatorRandom drives the coordinator with random events and
// checks its invariants: IDs strictly increase, at most one checkpoint is
// in flight, every trigger ends in exactly one completion or abort, and a
// completion carries an ack of every task that had not finished.
func TestCoordinatorRandom(t *testing.T) {
	for seed := range int64(20) {
		rnd := newRand(seed)
		tasks := []TaskID{{"a", 0}, {"a", 1}, {"b", 0}}
		c := NewCoordinator(CoordinatorConfig{Interval: 100 * time.Millisecond, Timeout: 350 * time.Millisecond, Tasks: tasks})
		now := time.Unix(0, 0)
		var open ID
		var last ID
		finished := map[TaskID]bool{}
		check := func(acts []Action) {
			for _, a := range acts {
				switch a.Kind {
				case ActionTrigger:
					if open != 0 {
						t.Fatalf("seed %d: trigger %d while %d in flight", seed, a.ID, open)
					}
					if a.ID <= last {
						t.Fatalf("seed %d: trigger %d after %d", seed, a.ID, last)
					}
					open, last = a.ID, a.ID
				case ActionComplete, ActionAbort:
					if a.ID != open {
						t.Fatalf("seed %d: %s %d while %d in flight", seed, a.Kind, a.ID, open)
					}
					if a.Kind == ActionComplete {
						got := map[TaskID]bool{}
						for _, k := range a.Acks {
							got[k.Task] = true
						}
						for _, tk := range tasks {
							if !got[tk] && !finished[tk] {
								t.Fatalf("seed %d: checkpoint %d completed without %s", seed, a.ID, tk)
							}
						}
					}
					open = 0
				}
			}
		}
		for range 2000 {
			now = now.Add(time.Duration(rnd.Intn(40)) * time.Millisecond)
			switch r := rnd.Intn(10); {
			case r < 4:
				check(c.Tick(now))
			case r < 9:
				if id, ok := c.InFlight(); ok {
					acts, err := c.Ack(now, id, Ack{Task: tasks[rnd.Intn(len(tasks))]})
					if err != nil && !strings.Contains(err.Error(), "twice") {
						t.Fatal(err)
					}
					check(acts)
				}
			default:
				if rnd.Intn(20) == 0 {
					tk := tasks[rnd.Intn(len(tasks))]
					finished[tk] = true
					check(c.Finished(now, tk))
				} else if id, ok := c.InFlight(); ok {
					check(c.Decline(now, id, tasks[0], errors.New("x")))
				}
			}
		}
		st := c.Stats()
		inflight := uint64(0)
		if open != 0 {
			inflight = 1
		}
		if st.Triggered != st.Completed+st.Aborted+inflight {
			t.Fatalf("seed %d: stats %+v do not add up", seed, st)
		}
	}
}
