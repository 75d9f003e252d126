package stream

import (
	"encoding/binary"
	"fmt"
	"math"
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

// A window operator on the memory backend checkpoints incrementally: a
// chain of files holding the key's lists of windows changed since the
// previous checkpoint (window_incremental.go, chain.go).
//
// Checkpoints written before that hold one key-grouped state file per
// subtask (".window"), still restored here. Each key group's section is
// the operator's watermark (varint) followed by its open windows:
//
//	key | start varint | end varint | fired byte | accumulator

// snapshot encodes the windows changed since the previous snapshot and
// writes them asynchronously into checkpoint id, then acknowledges it.
func (o *winOp[K, T, A, O]) snapshot(chk *chkRun, id uint64) {
	if o.inc == nil {
		// Not reached: windowOp sets up incremental snapshots whenever
		// checkpointing is on.
		chk.decline(id, checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}, fmt.Errorf("window operator %q has no snapshot state", o.node.name))
		return
	}
	o.snapshotIncremental(chk, id)
}

// writeWindowState writes a key-grouped state file of sections by key
// group into the checkpoint's directory.
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
	chain := &winChainRestore{lists: map[int]map[string][]byte{}, wm: map[int]int64{}}
	for _, path := range files {
		if strings.HasSuffix(path, ".winkv") {
			return fmt.Errorf("%s: the checkpoint holds window state of a state backend; restore it with the same backend (WithStateBackend, or state: {backend: pebble} in a pipeline)", path)
		}
		if isChainFile(path) {
			if err := o.readChain(chk, path, r, chain); err != nil {
				return err
			}
			continue
		}
		if !strings.HasSuffix(path, ".window") {
			return fmt.Errorf("%s: not a window state file", path)
		}
		err := readKeyGroups(chk, path, r, func(kg int, b []byte) error {
			wm, err := o.restoreSection(b)
			if err != nil {
				return err
			}
			found = true
			restoredWm = min(restoredWm, wm)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := o.finishChain(chain); err != nil {
		return fmt.Errorf("window chain: %w", err)
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
		o.restoreWindow(k, window.Window{Start: start, End: end}, fired, acc)
	}
	return wm, nil
}

// writeOperatorSnapshot writes a keyed operator's sections (kgs, groups)
// as op<operator>-<subtask>.<ext> into checkpoint id, then the state
// backend's own files through write (nil when the backend has none), and
// acknowledges the checkpoint with both, or declines it. A checkpoint no
// longer pending, or a failed write of the sections, discards the
// backend's snapshot (write called with a nil Pending). It runs off the
// task's goroutine.
func writeOperatorSnapshot(chk *chkRun, id uint64, task checkpoint.TaskID, ext string, maxPar int, kgs []int, groups map[int][]byte, write func(checkpoint.Pending, string) ([]string, error)) {
	discard := func() {
		if write != nil {
			_, _ = write(nil, "")
		}
	}
	p := chk.pendingFor(id)
	if p == nil {
		discard()
		return
	}
	base := fmt.Sprintf("op%s-%d", task.Operator, task.Subtask)
	path, err := writeWindowState(p, base+"."+ext, maxPar, kgs, groups)
	files := []string{path}
	if err != nil {
		discard()
	} else if write != nil {
		var more []string
		more, err = write(p, base)
		files = append(files, more...)
	}
	if err != nil {
		chk.decline(id, task, err)
		return
	}
	chk.ack(id, checkpoint.Ack{Task: task, Files: files})
}
