//go:build linux

package logstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteVectorsManyBuffers: more buffers than one writev(2) takes
// (IOV_MAX), of varied sizes including empty ones, land in the file in
// order, as their concatenation.
func TestWriteVectorsManyBuffers(t *testing.T) {
	name := filepath.Join(t.TempDir(), "v")
	f, err := OSFS{}.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bufs [][]byte
	var want []byte
	for i := 0; i < 3*maxIOV+17; i++ {
		b := bytes.Repeat([]byte{byte(i)}, i%37) // every 37th is empty
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	if _, ok := f.(vectorWriter); !ok {
		t.Fatal("the OS file does not write vectors")
	}
	n, err := writeVectors(f, bufs)
	if err != nil || n != len(want) {
		t.Fatalf("wrote %d of %d bytes: %v", n, len(want), err)
	}
	if n, err := writeVectors(f, [][]byte{nil, {}}); n != 0 || err != nil {
		t.Fatalf("writing only empty buffers: %d, %v", n, err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes that differ from the %d written", len(got), len(want))
	}
}
