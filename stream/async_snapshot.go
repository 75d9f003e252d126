package stream

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/checkpoint"
)

// An AsyncMap snapshot is one file per subtask, "op<id>-<sub>.async":
//
//	version byte (1), uvarint count, then per record in queue order:
//	varint event time, the record encoded by the state codec
//
// It holds every record of the queue not emitted yet, answered or not;
// all of them are called again after a restore.

const asyncSnapVersion = 1

func checkpointAck(n *node, sub int) checkpoint.Ack {
	return checkpoint.Ack{Task: checkpoint.TaskID{Operator: opKey(n), Subtask: sub}}
}

// snapshot encodes the queue on the task goroutine and writes it on
// another, then acknowledges checkpoint id.
func (o *asyncOp[In, Out]) snapshot(chk *chkRun, id uint64) {
	task := checkpoint.TaskID{Operator: opKey(o.node), Subtask: o.sub}
	b := []byte{asyncSnapVersion}
	b = binary.AppendUvarint(b, uint64(o.queued))
	n := 0
	for _, s := range o.segs {
		for _, e := range s.recs {
			if e.emitted {
				continue
			}
			b = binary.AppendVarint(b, e.ts)
			b = o.codec.Append(b, e.in)
			n++
		}
	}
	if n != o.queued {
		chk.decline(id, task, fmt.Errorf("async operator %q: %d records queued but %d found", o.name, o.queued, n))
		return
	}
	chk.async.Add(1)
	o.snapWG.Add(1)
	go func() {
		defer chk.async.Done()
		defer o.snapWG.Done()
		p := chk.pendingFor(id)
		if p == nil {
			return
		}
		w, err := p.Create(fmt.Sprintf("op%s-%d.async", task.Operator, task.Subtask))
		if err == nil {
			if _, err = w.Write(b); err != nil {
				w.Close()
			} else {
				err = w.Close()
			}
		}
		if err != nil {
			chk.decline(id, task, err)
			return
		}
		chk.ack(id, checkpoint.Ack{Task: task, Files: []string{w.Path()}})
	}()
}

// restore reads the records that subtask sub (of n.par) takes over from
// the restored checkpoint: those of the old subtasks s with s % par ==
// sub, in their order.
func (o *asyncOp[In, Out]) restore(chk *chkRun, n *node, sub int) ([]asyncEntry[In, Out], error) {
	var out []asyncEntry[In, Out]
	for _, t := range chk.restored.Manifest.Tasks {
		if t.Task.Operator != opKey(n) || t.Task.Subtask%n.par != sub {
			continue
		}
		for _, path := range t.Files {
			if !strings.HasSuffix(path, ".async") {
				continue
			}
			es, err := o.readSnapshot(chk.restored, path)
			if err != nil {
				return nil, fmt.Errorf("restore %s: %w", path, err)
			}
			out = append(out, es...)
		}
	}
	return out, nil
}

func (o *asyncOp[In, Out]) readSnapshot(c *checkpoint.Checkpoint, path string) ([]asyncEntry[In, Out], error) {
	f, err := c.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return decodeAsyncSnapshot[In, Out](b, o.codec.Decode)
}

// decodeAsyncSnapshot decodes a snapshot file's bytes.
func decodeAsyncSnapshot[In, Out any](b []byte, dec func([]byte) (In, int, error)) ([]asyncEntry[In, Out], error) {
	if len(b) == 0 || b[0] != asyncSnapVersion {
		return nil, fmt.Errorf("%w: async snapshot version", checkpoint.ErrCorrupt)
	}
	b = b[1:]
	cnt, k := binary.Uvarint(b)
	if k <= 0 || cnt > uint64(len(b)) {
		return nil, fmt.Errorf("%w: async snapshot count", checkpoint.ErrCorrupt)
	}
	b = b[k:]
	out := make([]asyncEntry[In, Out], 0, cnt)
	for range cnt {
		ts, k := binary.Varint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: async snapshot time", checkpoint.ErrCorrupt)
		}
		b = b[k:]
		v, m, err := dec(b)
		if err != nil {
			return nil, fmt.Errorf("%w: async snapshot record: %w", checkpoint.ErrCorrupt, err)
		}
		if m < 0 || m > len(b) {
			return nil, fmt.Errorf("%w: async snapshot record length", checkpoint.ErrCorrupt)
		}
		b = b[m:]
		out = append(out, asyncEntry[In, Out]{in: v, ts: ts})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the async snapshot", checkpoint.ErrCorrupt, len(b))
	}
	return out, nil
}
