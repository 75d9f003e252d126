package checkpoint

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestStateFileProperty(t *testing.T) {
	for seed := range int64(50) {
		rnd := newRand(seed)
		maxPar := 1 + rnd.Intn(64)
		want := map[int][]byte{}
		var buf bytes.Buffer
		w := NewStateWriter(&buf, maxPar)
		for kg := range maxPar {
			if rnd.Intn(3) == 0 {
				continue
			}
			data := make([]byte, rnd.Intn(100))
			rnd.Read(data)
			sw, err := w.KeyGroup(kg)
			if err != nil {
				t.Fatal(err)
			}
			// Write in pieces to exercise section accounting.
			for len(data) > 0 {
				n := 1 + rnd.Intn(len(data))
				sw.Write(data[:n])
				want[kg] = append(want[kg], data[:n]...)
				data = data[n:]
			}
			if want[kg] == nil {
				want[kg] = []byte{}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := NewStateReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if r.MaxParallelism() != maxPar || r.Version() != FormatVersion || len(r.KeyGroups()) != len(want) {
			t.Fatalf("seed %d: header %d %d %v", seed, r.MaxParallelism(), r.Version(), r.KeyGroups())
		}
		for kg := range maxPar {
			sec, ok := r.KeyGroup(kg)
			exp, has := want[kg]
			if ok != has {
				t.Fatalf("seed %d: key group %d present=%v want %v", seed, kg, ok, has)
			}
			if ok {
				got, _ := io.ReadAll(sec)
				if !bytes.Equal(got, exp) {
					t.Fatalf("seed %d: key group %d bytes differ", seed, kg)
				}
			}
		}
	}
}

func TestStateFileErrors(t *testing.T) {
	var buf bytes.Buffer
	w := NewStateWriter(&buf, 4)
	if _, err := w.KeyGroup(4); err == nil {
		t.Fatal("key group out of range accepted")
	}
	w.KeyGroup(2)
	if _, err := w.KeyGroup(1); err == nil {
		t.Fatal("descending key group accepted")
	}
	w.Close()
	b := buf.Bytes()
	if _, err := NewStateReader(bytes.NewReader(b[:len(b)-1]), int64(len(b)-1)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
	bad := bytes.Clone(b)
	bad[5] = 9 // version 9
	if _, err := NewStateReader(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrVersion) {
		t.Fatalf("newer version: %v", err)
	}
}

func FuzzStateReader(f *testing.F) {
	var buf bytes.Buffer
	w := NewStateWriter(&buf, 8)
	s, _ := w.KeyGroup(1)
	s.Write([]byte("hello"))
	s, _ = w.KeyGroup(5)
	s.Write([]byte("world"))
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("SLST"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewStateReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, kg := range r.KeyGroups() {
			sec, ok := r.KeyGroup(kg)
			if !ok {
				t.Fatalf("listed key group %d has no section", kg)
			}
			if _, err := io.Copy(io.Discard, sec); err != nil {
				t.Fatalf("section %d: %v", kg, err)
			}
		}
	})
}
