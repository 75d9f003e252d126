package tier

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/sluicehq/sluice/objstore"
)

func sampleManifest() *manifest {
	return &manifest{Version: 7, Topic: "t", Partition: 2, RemoteEnd: 300, Segments: []remoteSegment{
		{Base: 0, End: 100, Size: 5000, ChunkBytes: 4096, ChunkCRCs: []uint32{1, 2}, UploadID: "a"},
		{Base: 100, End: 300, Size: 4096, ChunkBytes: 4096, ChunkCRCs: []uint32{3}, UploadID: "b"},
	}}
}

func TestManifestRoundTripAndDamage(t *testing.T) {
	b, err := encodeManifest(sampleManifest())
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(b)
	if err != nil || m.Version != 7 || len(m.Segments) != 2 || m.Segments[1].UploadID != "b" {
		t.Fatalf("round trip: %+v %v", m, err)
	}
	// Every truncation and every flipped byte is detected.
	for i := 0; i < len(b); i++ {
		if _, err := decodeManifest(b[:i]); err == nil {
			t.Fatalf("truncated at %d: accepted", i)
		}
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		if m2, err := decodeManifest(c); err == nil && m2.Version == 7 && m2.RemoteEnd == 300 && len(m2.Segments) == 2 && m2.Segments[0].Size == 5000 {
			// A flip in the header's hex digits' case could still parse;
			// anything that decodes must not be a silently altered body.
			if !bytes.Equal(c[bytes.IndexByte(c, '\n'):], b[bytes.IndexByte(b, '\n'):]) {
				t.Fatalf("byte %d flipped: accepted an altered body", i)
			}
		}
	}
}

// TestNewestGoodManifestWins: a torn newest version is skipped for the
// previous one, and kept: the next version goes above it, never over it.
func TestNewestGoodManifestWins(t *testing.T) {
	mem := objstore.NewMem()
	ctx := context.Background()
	good := sampleManifest()
	b, _ := encodeManifest(good)
	mem.Put(ctx, manifestKey("d", 7), bytes.NewReader(b), int64(len(b)))
	torn := b[:len(b)/2]
	mem.Put(ctx, manifestKey("d", 8), bytes.NewReader(torn), int64(len(torn)))
	tr := &Tier{store: mem, logger: quietLogger(), m: newMetrics(nil), stop: make(chan struct{}), base: context.Background()}
	tr.opts.OpTimeout = 1 << 40
	tr.storeUp.Store(true)
	ps := &partState{dir: "d"}
	m, err := tr.load(ps)
	if err != nil || m.RemoteEnd != good.RemoteEnd || len(m.Segments) != len(good.Segments) {
		t.Fatalf("loaded %+v, %v; want version 7's segments", m, err)
	}
	next := &manifest{Version: m.Version + 1, Topic: "t", Partition: 2, RemoteEnd: 300, Segments: good.Segments}
	if next.Version != 9 {
		t.Fatalf("next version %d, want 9: above the torn one", next.Version)
	}
	if err := tr.publish(ctx, ps, next); err != nil {
		t.Fatal(err)
	}
	if got, err := objstore.ReadAll(ctx, mem, manifestKey("d", 8)); err != nil || !bytes.Equal(got, torn) {
		t.Fatalf("the torn version was not kept: %q %v", got, err)
	}
	ps2 := &partState{dir: "d"}
	if m, err := tr.load(ps2); err != nil || m.Version != 9 || m.Based != 7 {
		t.Fatalf("after publishing above the torn version: %+v %v; want version 9 made from 7", m, err)
	}
	// Version 9 was made from 7, not from the torn 8: 8 may name segments
	// 9 lacks, and still holds orphans back.
	if !ps2.unreadable[8] {
		t.Fatal("the torn version is taken for superseded by a version not made from it")
	}
}

// TestSupersededDamagedVersionRecovers: a damaged version that a good one
// was made from (based_on) is superseded: everything it named is in the
// good one or was removed on purpose. It no longer blocks the removal of
// orphans (which needed an operator before), and it goes like any old
// version; no object the good version names is removed.
func TestSupersededDamagedVersionRecovers(t *testing.T) {
	mem := objstore.NewMem()
	ctx := context.Background()
	good := sampleManifest()
	good.Version, good.Based = 9, 8
	b, _ := encodeManifest(good)
	mem.Put(ctx, manifestKey("d", 9), bytes.NewReader(b), int64(len(b)))
	mem.Put(ctx, manifestKey("d", 8), bytes.NewReader(b[:len(b)/2]), int64(len(b)/2))
	named := good.Segments[0].keys("d")
	for _, k := range append([]string{"d/00000000000000000300-c.log"}, named...) {
		mem.Put(ctx, k, bytes.NewReader([]byte("x")), 1)
	}
	tr := &Tier{store: mem, logger: quietLogger(), m: newMetrics(nil), stop: make(chan struct{}), base: context.Background()}
	tr.opts.OpTimeout = 1 << 40
	tr.storeUp.Store(true)
	ps := &partState{dir: "d"}
	m, err := tr.load(ps)
	if err != nil || m.Version != 9 {
		t.Fatalf("loaded %+v, %v; want version 9", m, err)
	}
	if len(ps.unreadable) != 0 || ps.nUnreadable.Load() != 0 {
		t.Fatalf("superseded damaged version still counted unreadable: %v", ps.unreadable)
	}
	if _, err := mem.Stat(ctx, "d/00000000000000000300-c.log"); err == nil {
		t.Fatal("the orphan was kept: the superseded damaged version still blocks the sweep")
	}
	for _, k := range append([]string{manifestKey("d", 9)}, named...) {
		if _, err := mem.Stat(ctx, k); err != nil {
			t.Fatalf("%s removed: %v", k, err)
		}
	}
	next := *m
	next.Version++
	if err := tr.publish(ctx, ps, &next); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat(ctx, manifestKey("d", 8)); err == nil {
		t.Fatal("the superseded damaged version outlived the next publish")
	}
}

// TestDamagedVersionsDeleteNothing: with two damaged versions above the
// good one in use, loading and publishing remove neither the good one nor
// the damaged ones, nor any other object.
func TestDamagedVersionsDeleteNothing(t *testing.T) {
	mem := objstore.NewMem()
	ctx := context.Background()
	good := sampleManifest()
	b, _ := encodeManifest(good)
	mem.Put(ctx, manifestKey("d", 7), bytes.NewReader(b), int64(len(b)))
	for _, v := range []int64{8, 9} {
		mem.Put(ctx, manifestKey("d", v), bytes.NewReader(b[:len(b)-1]), int64(len(b)-1))
	}
	mem.Put(ctx, "d/00000000000000000300-c.log", bytes.NewReader([]byte("x")), 1) // named by 8 or 9, maybe
	tr := &Tier{store: mem, logger: quietLogger(), m: newMetrics(nil), stop: make(chan struct{}), base: context.Background()}
	tr.opts.OpTimeout = 1 << 40
	tr.storeUp.Store(true)
	ps := &partState{dir: "d"}
	m, err := tr.load(ps)
	if err != nil || m.RemoteEnd != good.RemoteEnd {
		t.Fatalf("loaded %+v, %v; want version 7's", m, err)
	}
	for range 4 {
		next := *m
		next.Version++
		if err := tr.publish(ctx, ps, &next); err != nil {
			t.Fatal(err)
		}
		m = &next
	}
	for _, k := range []string{manifestKey("d", 7), manifestKey("d", 8), manifestKey("d", 9), "d/00000000000000000300-c.log"} {
		if _, err := mem.Stat(ctx, k); err != nil {
			t.Errorf("%s removed: %v", k, err)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := encodeManifest(sampleManifest())
	f.Add(b)
	f.Add([]byte("sluice-tier-manifest 1 00000000\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			return
		}
		// Whatever decodes is ordered, within remote_end, and consistent
		// with its chunk CRCs: the read path relies on it.
		for i, s := range m.Segments {
			if s.End <= s.Base || s.End > m.RemoteEnd || (i > 0 && s.Base < m.Segments[i-1].End) {
				t.Fatalf("accepted a malformed manifest: %+v", m)
			}
			if int64(len(s.ChunkCRCs)) != (s.Size+s.ChunkBytes-1)/s.ChunkBytes {
				t.Fatalf("accepted a segment with %d chunk CRCs for %d bytes", len(s.ChunkCRCs), s.Size)
			}
		}
	})
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
