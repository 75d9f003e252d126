package pgcdc

import (
	"github.com/jackc/pglogrepl"
)

// relation is a table's shape as the snapshot query or the latest
// pgoutput Relation message describes it.
type relation struct {
	table tableName
	cols  []column
	// idx is the table's index in Config.Tables, -1 when it is not a
	// captured table (a publication may have more).
	idx int
	// keys are the positions in cols of the key columns, in key order.
	keys []int
	// origin is the records' connector.Message.Origin (stream only).
	origin string
}

type column struct {
	name string
	oid  uint32
}

// value is one column of a tuple: absent (a TOASTed value pgoutput did
// not send because it did not change), null, or text.
type value struct {
	present bool
	null    bool
	text    []byte
}

// source is what the "source" object of a record says.
type source struct {
	db       string
	lsn      pglogrepl.LSN
	txid     uint32 // 0: none (snapshot reads)
	tsMs     int64
	snapshot bool
}

// op codes of the records.
const (
	opCreate = 'c'
	opUpdate = 'u'
	opDelete = 'd'
	opRead   = 'r'
)

// encoder builds the records' JSON, reusing its buffers.
type encoder struct {
	buf []byte
}

// record returns the key and value of a change. before and after are
// nil when absent; keyOnly says before holds only the key columns (its
// other columns are not to be written). The returned slices are fresh:
// one allocation holds both, each capped at its own length.
func (e *encoder) record(op byte, rel *relation, before []value, keyOnly bool, after []value, src source, nowMs int64) (key, val []byte) {
	keyFrom := after
	if keyFrom == nil {
		keyFrom = before
	}
	b := e.buf[:0]
	b = append(b, '{')
	for i, k := range rel.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, rel.cols[k].name)
		b = append(b, ':')
		b = appendCol(b, rel.cols[k].oid, keyFrom, k)
	}
	b = append(b, '}')
	nk := len(b)

	b = append(b, `{"op":"`...)
	b = append(b, op)
	b = append(b, `","before":`...)
	if before == nil {
		b = append(b, "null"...)
	} else {
		b = appendTuple(b, rel, before, keyOnly)
	}
	b = append(b, `,"after":`...)
	if after == nil {
		b = append(b, "null"...)
	} else {
		b = appendTuple(b, rel, after, false)
	}
	b = append(b, `,"source":{"connector":"postgres","db":`...)
	b = appendQuoted(b, src.db)
	b = append(b, `,"schema":`...)
	b = appendQuoted(b, rel.table.schema)
	b = append(b, `,"table":`...)
	b = appendQuoted(b, rel.table.name)
	b = append(b, `,"lsn":`...)
	b = appendUint(b, uint64(src.lsn))
	b = append(b, `,"txid":`...)
	if src.txid == 0 {
		b = append(b, "null"...)
	} else {
		b = appendUint(b, uint64(src.txid))
	}
	b = append(b, `,"ts_ms":`...)
	b = appendUint(b, uint64(src.tsMs))
	if src.snapshot {
		b = append(b, `,"snapshot":true`...)
	}
	b = append(b, `},"ts_ms":`...)
	b = appendUint(b, uint64(nowMs))
	b = append(b, '}')
	out := make([]byte, len(b))
	copy(out, b)
	e.buf = b
	return out[:nk:nk], out[nk:]
}

func appendCol(b []byte, oid uint32, t []value, i int) []byte {
	if i >= len(t) || !t[i].present || t[i].null {
		return append(b, "null"...)
	}
	return appendValue(b, oid, t[i].text)
}

// appendTuple writes a tuple as a JSON object: every column (only the key
// columns with keyOnly), columns absent from the tuple (unchanged TOASTed
// values) left out.
func appendTuple(b []byte, rel *relation, t []value, keyOnly bool) []byte {
	b = append(b, '{')
	first := true
	put := func(i int) {
		if i >= len(t) || !t[i].present {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendQuoted(b, rel.cols[i].name)
		b = append(b, ':')
		b = appendCol(b, rel.cols[i].oid, t, i)
	}
	if keyOnly {
		for _, k := range rel.keys {
			put(k)
		}
	} else {
		for i := range rel.cols {
			put(i)
		}
	}
	return append(b, '}')
}

// keyText returns the text of t's key columns (nil entries for nulls).
func keyText(rel *relation, t []value) []*string {
	out := make([]*string, len(rel.keys))
	for i, k := range rel.keys {
		if k < len(t) && t[k].present && !t[k].null {
			s := string(t[k].text)
			out[i] = &s
		}
	}
	return out
}

// sameKey reports whether two tuples have equal key columns (as text).
func sameKey(rel *relation, a, b []value) bool {
	for _, k := range rel.keys {
		if k >= len(a) || k >= len(b) {
			return false
		}
		x, y := a[k], b[k]
		if x.present != y.present || x.null != y.null || string(x.text) != string(y.text) {
			return false
		}
	}
	return true
}
