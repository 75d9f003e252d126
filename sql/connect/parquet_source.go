package connect

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	pq "github.com/parquet-go/parquet-go"
	"github.com/sluicehq/sluice/row"
	"github.com/sluicehq/sluice/sql/exec"
	"github.com/sluicehq/sluice/sql/types"
	"github.com/sluicehq/sluice/stream"
)

// parquetSource reads the Parquet files of a path (a file or the visible
// files of a directory, in name order), each table column from the file
// column of its name, read by the column's storage as connector/parquet
// writes it.
type parquetSource struct {
	path string
	cols []Column
}

func openParquetSource(t SourceTable) (stream.Source[exec.Change], Info, error) {
	if err := noMetadata(t.Columns); err != nil {
		return nil, Info{}, err
	}
	for _, c := range t.Columns {
		switch c.Type.Storage() {
		case row.KindBool, row.KindInt, row.KindFloat, row.KindString, row.KindTimestamp, row.KindJSON:
		default:
			return nil, Info{}, fmt.Errorf("column %s: %s cannot be read from Parquet", c.Name, c.Type)
		}
	}
	s := &parquetSource{path: t.Options["path"], cols: t.Columns}
	if _, err := s.files(); err != nil {
		return nil, Info{}, err
	}
	return s, Info{Bounded: true, Description: "parquet files at " + s.path}, nil
}

func (s *parquetSource) files() ([]string, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("option 'path' = '%s': %w", s.path, err)
	}
	if !st.IsDir() {
		return []string{s.path}, nil
	}
	ents, err := os.ReadDir(s.path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") || !e.Type().IsRegular() {
			continue
		}
		out = append(out, filepath.Join(s.path, n))
	}
	sort.Strings(out)
	return out, nil
}

// Splits implements stream.Source: split i of n reads files i, i+n, ...
func (s *parquetSource) Splits(_ context.Context, parallelism int) ([]stream.Split[exec.Change], error) {
	files, err := s.files()
	if err != nil {
		return nil, err
	}
	n := max(1, min(parallelism, len(files)))
	out := make([]stream.Split[exec.Change], n)
	for i := range out {
		sp := &parquetSplit{src: s, id: fmt.Sprintf("%s#%d", s.path, i)}
		for j := i; j < len(files); j += n {
			sp.files = append(sp.files, files[j])
		}
		out[i] = sp
	}
	return out, nil
}

type parquetSplit struct {
	src   *parquetSource
	id    string
	files []string
	file  int   // index in files
	row   int64 // next row of the file

	f     *os.File
	r     *pq.Reader
	leafs []int // per column: the file's leaf column, -1 when absent
	buf   []pq.Row
	arena row.Arena
}

func (s *parquetSplit) ID() string { return s.id }

func (s *parquetSplit) open() error {
	name := s.files[s.file]
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	r := pq.NewReader(pf)
	if s.row > 0 {
		if err := r.SeekToRow(s.row); err != nil {
			f.Close()
			return fmt.Errorf("%s: seek to row %d: %w", name, s.row, err)
		}
	}
	s.leafs = make([]int, len(s.src.cols))
	for i, c := range s.src.cols {
		s.leafs[i] = -1
		if leaf, ok := r.Schema().Lookup(c.Name); ok {
			s.leafs[i] = leaf.ColumnIndex
		}
	}
	s.f, s.r = f, r
	return nil
}

func (s *parquetSplit) closeFile() {
	if s.f != nil {
		s.r.Close()
		s.f.Close()
		s.f, s.r = nil, nil
	}
}

func (s *parquetSplit) Read(_ context.Context, dst []exec.Change) (int, error) {
	for s.file < len(s.files) {
		if s.r == nil {
			if err := s.open(); err != nil {
				return 0, fmt.Errorf("parquet split %s: %w", s.id, err)
			}
		}
		if cap(s.buf) < len(dst) {
			s.buf = make([]pq.Row, len(dst))
		}
		buf := s.buf[:len(dst)]
		n, err := s.r.ReadRows(buf)
		for i := 0; i < n; i++ {
			vals, cerr := s.convert(buf[i])
			if cerr != nil {
				return i, fmt.Errorf("parquet %s row %d: %w", s.files[s.file], s.row, cerr)
			}
			dst[i] = exec.Change{Op: exec.Insert, Vals: vals}
			s.row++
		}
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("parquet %s: %w", s.files[s.file], err)
		}
		if n > 0 {
			return n, nil
		}
		s.closeFile()
		s.file++
		s.row = 0
	}
	return 0, io.EOF
}

func (s *parquetSplit) convert(r pq.Row) ([]row.Value, error) {
	vals := s.arena.Values(len(s.src.cols))
	for i, c := range s.src.cols {
		leaf := s.leafs[i]
		if leaf < 0 {
			continue
		}
		var v pq.Value
		found := false
		for _, x := range r {
			if x.Column() == leaf {
				v, found = x, true
				break
			}
		}
		if !found || v.IsNull() {
			continue
		}
		x, err := parquetValue(v, c.Type, &s.arena)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		vals[i] = x
	}
	return vals, nil
}

func parquetValue(v pq.Value, t types.Type, a *row.Arena) (row.Value, error) {
	var n int64
	isInt := true
	switch v.Kind() {
	case pq.Boolean:
		if t.Kind == types.Boolean {
			return row.Bool(v.Boolean()), nil
		}
		isInt = false
	case pq.Int32:
		n = int64(v.Int32())
	case pq.Int64:
		n = v.Int64()
	case pq.Float:
		if t.Kind == types.Float || t.Kind == types.Double {
			return row.Float(float64(v.Float())), nil
		}
		isInt = false
	case pq.Double:
		if t.Kind == types.Float || t.Kind == types.Double {
			return row.Float(v.Double()), nil
		}
		isInt = false
	case pq.ByteArray, pq.FixedLenByteArray:
		b := v.ByteArray()
		switch t.Storage() {
		case row.KindString:
			return row.String(a.String(b)), nil
		case row.KindJSON:
			if !validJSON(string(b)) {
				return row.Value{}, fmt.Errorf("not JSON text")
			}
			return row.JSON(string(b)), nil
		}
		return parseText(string(b), t)
	default:
		isInt = false
	}
	if !isInt {
		return row.Value{}, fmt.Errorf("a Parquet %s cannot be read as %s", v.Kind(), t)
	}
	switch t.Storage() {
	case row.KindInt:
		return checkRange(n, t)
	case row.KindTimestamp:
		return row.Timestamp(n), nil
	case row.KindFloat:
		return row.Float(float64(n)), nil
	}
	return row.Value{}, fmt.Errorf("a Parquet integer cannot be read as %s", t)
}

// Position is the file index and the next row in it, 16 bytes.
func (s *parquetSplit) Position() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(s.file))
	return binary.BigEndian.AppendUint64(b, uint64(s.row))
}

func (s *parquetSplit) Seek(pos []byte) error {
	if len(pos) != 16 {
		return fmt.Errorf("parquet split %s: position of %d bytes, want 16", s.id, len(pos))
	}
	file, r := int64(binary.BigEndian.Uint64(pos)), int64(binary.BigEndian.Uint64(pos[8:]))
	if file < 0 || file > int64(len(s.files)) || r < 0 {
		return fmt.Errorf("parquet split %s: position (%d, %d) out of range", s.id, file, r)
	}
	s.closeFile()
	s.file, s.row = int(file), r
	return nil
}

// Close releases the open file.
func (s *parquetSplit) Close() error {
	s.closeFile()
	return nil
}
