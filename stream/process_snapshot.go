package stream

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/checkpoint"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/codec"
)

// A KeyedProcess snapshot is a key-grouped state file whose sections hold,
// per key group: the memory backend's tables (state.Memory.AppendKeyGroup,
// length-prefixed), then the event-time and the processing-time timers
// (count, then key and time each), then the operator's watermark (varint;
// absent from checkpoints written before it was kept). Every key group of
// the subtask has a section. Encoding runs on the processing goroutine;
// writing on another.
//
// The watermark is restored (the lowest of the key groups read, as a
// window operator's) so that records the operator dropped as late before
// the checkpoint are still late when the restarted sources replay those
// that follow them, before their watermarks catch up: otherwise a
// restored interval join or deduplication would take them.

func (o *keyedProcessOp[K, T, R]) snapshot(chk *chkRun, id uint64) {
	if mem, ok := o.backend.(*state.Memory); ok && o.inc != nil {
		o.snapshotIncremental(chk, id, mem)
		return
	}
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	groups, err := o.encodeState()
	var write func(checkpoint.Pending, string) ([]string, error)
	if fs, ok := o.backend.(state.FileSnapshotter); ok && err == nil {
		write, err = fs.SnapshotFiles()
	}
	if err != nil {
		chk.decline(id, task, err)
		return
	}
	kgs := make([]int, 0, len(groups))
	for kg := range groups {
		kgs = append(kgs, kg)
	}
	slices.Sort(kgs)
	maxPar := chk.maxPar
	chk.async.Add(1)
	o.snapWG.Add(1)
	go func() {
		defer chk.async.Done()
		defer o.snapWG.Done()
		writeOperatorSnapshot(chk, id, task, "keyed", maxPar, kgs, groups, write)
	}()
}

func (o *keyedProcessOp[K, T, R]) encodeState() (map[int][]byte, error) {
	kc, err := codec.For[K]()
	if err != nil {
		return nil, fmt.Errorf("keyed process key: %w", err)
	}
	r := o.backend.KeyGroups()
	timers := func(s *timerService[K]) map[int][]timerKey[K] {
		out := map[int][]timerKey[K]{}
		for tk := range s.set {
			kg := state.KeyGroup(o.hash(tk.key), int(o.maxPar))
			out[kg] = append(out[kg], tk)
		}
		return out
	}
	ev, pr := timers(&o.ctx.event), timers(&o.ctx.proc)
	groups := map[int][]byte{}
	mem, _ := o.backend.(*state.Memory)
	for kg := r.Start; kg < r.End; kg++ {
		var tables []byte
		if mem != nil {
			var err error
			if tables, err = mem.AppendKeyGroup(nil, kg); err != nil {
				return nil, err
			}
		}
		b := codec.AppendBytes(nil, tables)
		for _, ts := range [][]timerKey[K]{ev[kg], pr[kg]} {
			b = binary.AppendUvarint(b, uint64(len(ts)))
			for _, tk := range ts {
				b = kc.Append(b, tk.key)
				b = binary.AppendVarint(b, tk.t)
			}
		}
		groups[kg] = binary.AppendVarint(b, o.ctx.wm)
	}
	return groups, nil
}

func (o *keyedProcessOp[K, T, R]) restore(chk *chkRun, files []string) error {
	kc, err := codec.For[K]()
	if err != nil {
		return fmt.Errorf("keyed process key: %w", err)
	}
	r := o.backend.KeyGroups()
	chainTimers := map[timerSetKey]map[string]struct{}{}
	wms := map[int]int64{}
	for _, path := range files {
		if isChainFile(path) {
			if err := o.restoreChain(chk, path, chainTimers, wms); err != nil {
				return err
			}
			continue
		}
		if !strings.HasSuffix(path, ".keyed") {
			continue // files of a FileSnapshotter backend
		}
		if err := readKeyGroups(chk, path, r, func(kg int, b []byte) error { return o.restoreSection(kc, kg, b, wms) }); err != nil {
			return err
		}
	}
	if len(wms) > 0 {
		wm := int64(math.MaxInt64)
		for _, w := range wms {
			wm = min(wm, w)
		}
		o.ctx.wm = wm
	}
	return o.restoreChainTimers(kc, chainTimers)
}

func (o *keyedProcessOp[K, T, R]) restoreSection(kc codec.Codec[K], kg int, b []byte, wms map[int]int64) error {
	tables, n, err := codec.DecodeBytes(b)
	if err != nil {
		return err
	}
	if mem, ok := o.backend.(*state.Memory); ok {
		if err := mem.RestoreKeyGroup(kg, tables); err != nil {
			return err
		}
	}
	b = b[n:]
	for _, s := range []*timerService[K]{&o.ctx.event, &o.ctx.proc} {
		cnt, n := binary.Uvarint(b)
		if n <= 0 || cnt > uint64(len(b)) {
			return fmt.Errorf("%w: timer count", checkpoint.ErrCorrupt)
		}
		b = b[n:]
		for range cnt {
			k, a, err := kc.Decode(b)
			if err != nil {
				return err
			}
			t, c := binary.Varint(b[a:])
			if c <= 0 {
				return fmt.Errorf("%w: timer time", checkpoint.ErrCorrupt)
			}
			b = b[a+c:]
			s.register(k, kg, t)
		}
	}
	if len(b) > 0 {
		wm, n := binary.Varint(b)
		if n <= 0 || n != len(b) {
			return fmt.Errorf("%w: keyed process watermark", checkpoint.ErrCorrupt)
		}
		wms[kg] = wm
	}
	return nil
}
