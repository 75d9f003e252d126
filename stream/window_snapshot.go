package stream

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
	"github.com/sluicehq/sluice/window"
)

// winCodecs are the codecs of a window operator's keys and accumulators,
// needed only with checkpointing.
type winCodecs[K comparable, A any] struct {
	key codec.Codec[K]
	acc codec.Codec[A]
}

func newWinCodecs[K comparable, A any]() (*winCodecs[K, A], error) {
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("window key: %w", err)
	}
	ac, err := codec.For[A]()
	if err != nil {
		return nil, fmt.Errorf("window accumulator: %w", err)
	}
	return &winCodecs[K, A]{key: kc, acc: ac}, nil
}

// A window operator's snapshot is a key-grouped state file
// (checkpoint.StateWriter). Each key group's section is the operator's
// watermark (varint) followed by its open windows:
//
//	key | start varint | end varint | fired byte | accumulator
//
// The section is encoded on the processing goroutine (a copy of the
// state; its cost is proportional to the open windows, no I/O) and
// written to storage on another goroutine, so processing goes on while
// the file is written and synced.

// snapshot encodes the open windows and writes them asynchronously into
// checkpoint id, then acknowledges it.
func (o *winOp[K, T, A, O]) snapshot(chk *chkRun, id uint64) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	maxPar := chk.maxPar
	groups := make(map[int][]byte)
	for i := range o.slots {
		s := &o.slots[i]
		if !s.live {
			continue
		}
		kg := state.KeyGroup(o.hash(s.key), maxPar)
		b, ok := groups[kg]
		if !ok {
			b = binary.AppendVarint(b, o.wm)
		}
		e := o.entry(int32(i))
		b = o.codecs.key.Append(b, s.key)
		b = binary.AppendVarint(b, s.win.Start)
		b = binary.AppendVarint(b, s.win.End)
		if e.fired {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = o.codecs.acc.Append(b, e.acc)
		groups[kg] = b
	}
	kgs := make([]int, 0, len(groups))
	for kg := range groups {
		kgs = append(kgs, kg)
	}
	slices.Sort(kgs)
	chk.async.Add(1)
	o.snapWG.Add(1)
	go func() {
		defer chk.async.Done()
		defer o.snapWG.Done()
		p := chk.pendingFor(id)
		if p == nil {
			return // aborted meanwhile
		}
		path, err := writeWindowState(p, fmt.Sprintf("op%s-%d.window", task.Operator, task.Subtask), maxPar, kgs, groups)
		if err != nil {
			chk.decline(id, task, err)
			return
		}
		chk.ack(id, checkpoint.Ack{Task: task, Files: []string{path}})
	}()
}

func writeWindowState(p checkpoint.Pending, name string, maxPar int, kgs []int, groups map[int][]byte) (string, error) {
	w, err := p.Create(name)
	if err != nil {
		return "", err
	}
	sw := checkpoint.NewStateWriter(w, maxPar)
	for _, kg := range kgs {
		sec, err := sw.KeyGroup(kg)
		if err == nil {
			_, err = sec.Write(groups[kg])
		}
		if err != nil {
			w.Close()
			return "", err
		}
	}
	if err := sw.Close(); err != nil {
		w.Close()
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return w.Path(), nil
}

// restore re-opens the windows of the key groups this subtask owns from
// the state files of every subtask of the restored checkpoint.
func (o *winOp[K, T, A, O]) restore(chk *chkRun, files []string, r state.KeyGroupRange) error {
	restoredWm := int64(math.MaxInt64)
	found := false
	for _, path := range files {
		if strings.HasSuffix(path, ".winkv") {
			return fmt.Errorf("%s: the checkpoint holds window state of a state backend; restore it with the same backend (WithStateBackend, or state: {backend: pebble} in a pipeline)", path)
		}
		f, err := chk.restored.Open(path)
		if err != nil {
			return err
		}
		err = func() error {
			defer f.Close()
			sr, err := checkpoint.NewStateReader(f, f.Size())
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			for _, kg := range sr.KeyGroups() {
				if !r.Contains(kg) {
					continue
				}
				sec, _ := sr.KeyGroup(kg)
				b, err := io.ReadAll(sec)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				wm, err := o.restoreSection(b)
				if err != nil {
					return fmt.Errorf("%s key group %d: %w", path, kg, err)
				}
				found = true
				restoredWm = min(restoredWm, wm)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	if found {
		o.wm = restoredWm
	}
	return nil
}

func (o *winOp[K, T, A, O]) restoreSection(b []byte) (int64, error) {
	wm, n := binary.Varint(b)
	if n <= 0 {
		return 0, fmt.Errorf("%w: watermark", checkpoint.ErrCorrupt)
	}
	b = b[n:]
	for len(b) > 0 {
		k, n, err := o.codecs.key.Decode(b)
		if err != nil {
			return 0, err
		}
		b = b[n:]
		start, n1 := binary.Varint(b)
		if n1 <= 0 {
			return 0, fmt.Errorf("%w: window start", checkpoint.ErrCorrupt)
		}
		end, n2 := binary.Varint(b[n1:])
		if n2 <= 0 || len(b) < n1+n2+1 {
			return 0, fmt.Errorf("%w: window end", checkpoint.ErrCorrupt)
		}
		fired := b[n1+n2] == 1
		b = b[n1+n2+1:]
		acc, n3, err := o.codecs.acc.Decode(b)
		if err != nil {
			return 0, err
		}
		b = b[n3:]
		win := window.Window{Start: start, End: end}
		li := o.keyList(k)
		id := o.open(k, li, win)
		e := o.entry(id)
		e.acc = acc
		e.fired = fired
		s := &o.slots[id]
		s.gen++
		if fired {
			o.timers.push(timerEntry{t: window.CleanupTime(win, o.lateness), slot: id, gen: s.gen, cleanup: true})
		} else {
			o.timers.push(timerEntry{t: win.MaxTimestamp(), slot: id, gen: s.gen})
		}
	}
	return wm, nil
}
