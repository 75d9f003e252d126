package rabbitmq

import (
	"encoding/binary"
	"fmt"

	"github.com/sluicehq/sluice/stream"
)

// position is a source split's checkpointed position: the number of
// messages it handed to the pipeline (seq) and, under Dedup, the message
// ids of the messages it had handed over (or had been restored with) whose
// acknowledgement the broker had not yet confirmed when the barrier
// passed. Those are the messages the broker may deliver again although
// the checkpoint covers them.
type position struct {
	seq uint64
	ids []string
}

const positionVersion = 1

// maxIDLen is the longest AMQP short string, the type of message-id.
const maxIDLen = 255

func (p position) encode() []byte {
	n := 1 + binary.MaxVarintLen64*2
	for _, id := range p.ids {
		n += 1 + len(id)
	}
	b := make([]byte, 0, n)
	b = append(b, positionVersion)
	b = binary.AppendUvarint(b, p.seq)
	b = binary.AppendUvarint(b, uint64(len(p.ids)))
	for _, id := range p.ids {
		b = append(b, byte(len(id)))
		b = append(b, id...)
	}
	return b
}

func decodePosition(b []byte) (position, error) {
	bad := func(what string) (position, error) {
		return position{}, fmt.Errorf("%w: rabbitmq position: %s", stream.ErrBadPosition, what)
	}
	if len(b) == 0 || b[0] != positionVersion {
		return bad("unknown version")
	}
	b = b[1:]
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return bad("truncated sequence")
	}
	b = b[n:]
	cnt, n := binary.Uvarint(b)
	if n <= 0 || cnt > uint64(len(b)) {
		return bad("bad id count")
	}
	b = b[n:]
	p := position{seq: seq}
	if cnt > 0 {
		p.ids = make([]string, 0, cnt)
	}
	for range cnt {
		if len(b) == 0 || int(b[0]) > len(b)-1 {
			return bad("truncated message id")
		}
		l := int(b[0])
		p.ids = append(p.ids, string(b[1:1+l]))
		b = b[1+l:]
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return p, nil
}
