package mysqlcdc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/connector"
)

// sourceMeta is the "source" object of a change message.
type sourceMeta struct {
	file     string
	pos      uint32
	gtid     string
	serverID uint32
	tsMs     int64 // the transaction's time (event time)
	snapshot bool  // an "r" row of the snapshot
}

// rowImage is one row rendered: a JSON token per column.
type rowImage [][]byte

// render renders a row as the client or the binlog gives it.
func render(t *table, vals []any, scratch []byte) (rowImage, []byte, error) {
	if len(vals) != len(t.cols) {
		return nil, scratch, fmt.Errorf("table %s: a row of %d columns, the schema has %d", t.id(), len(vals), len(t.cols))
	}
	img := make(rowImage, len(vals))
	scratch = scratch[:0]
	ends := make([]int, len(vals))
	for i, v := range vals {
		var err error
		if scratch, err = appendValue(scratch, &t.cols[i], v); err != nil {
			return nil, scratch, fmt.Errorf("table %s: %w", t.id(), err)
		}
		ends[i] = len(scratch)
	}
	buf := append([]byte(nil), scratch...)
	start := 0
	for i, e := range ends {
		img[i] = buf[start:e:e]
		start = e
	}
	return img, scratch, nil
}

func (img rowImage) key(t *table) []json.RawMessage {
	k := make([]json.RawMessage, len(t.pk))
	for i, c := range t.pk {
		k[i] = json.RawMessage(img[c])
	}
	return k
}

func appendObject(dst []byte, t *table, img rowImage, cols []int) []byte {
	if img == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	if cols == nil {
		for i := range img {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, t.cols[i].name)
			dst = append(dst, ':')
			dst = append(dst, img[i]...)
		}
	} else {
		for i, c := range cols {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, t.cols[c].name)
			dst = append(dst, ':')
			dst = append(dst, img[c]...)
		}
	}
	return append(dst, '}')
}

// message builds a change message: the key is the primary key (of after,
// or of before for deletes) as a JSON object, the value the envelope.
func message(t *table, op byte, before, after rowImage, src sourceMeta) connector.Message {
	keyImg := after
	if keyImg == nil {
		keyImg = before
	}
	key := appendObject(make([]byte, 0, 32), t, keyImg, t.pk)
	v := make([]byte, 0, 256)
	v = append(v, `{"op":"`...)
	v = append(v, op)
	v = append(v, `","before":`...)
	v = appendObject(v, t, before, nil)
	v = append(v, `,"after":`...)
	v = appendObject(v, t, after, nil)
	v = append(v, `,"source":{"connector":"mysql","db":`...)
	v = appendString(v, t.db)
	v = append(v, `,"table":`...)
	v = appendString(v, t.name)
	v = append(v, `,"file":`...)
	v = appendString(v, src.file)
	v = append(v, `,"pos":`...)
	v = strconv.AppendUint(v, uint64(src.pos), 10)
	v = append(v, `,"gtid":`...)
	if src.gtid == "" {
		v = append(v, "null"...)
	} else {
		v = appendString(v, src.gtid)
	}
	v = append(v, `,"server_id":`...)
	v = strconv.AppendUint(v, uint64(src.serverID), 10)
	v = append(v, `,"ts_ms":`...)
	v = strconv.AppendInt(v, src.tsMs, 10)
	if src.snapshot {
		v = append(v, `,"snapshot":true`...)
	}
	v = append(v, `},"ts_ms":`...)
	v = strconv.AppendInt(v, time.Now().UnixMilli(), 10)
	v = append(v, '}')
	return connector.Message{Key: key, Value: v, Timestamp: src.tsMs, Origin: t.id(), Offset: -1}
}
