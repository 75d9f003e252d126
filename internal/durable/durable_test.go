package durable

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMkdirAllSyncsParents: every directory MkdirAll creates is made
// durable in its parent; existing ones are left alone.
func TestMkdirAllSyncsParents(t *testing.T) {
	root := t.TempDir()
	var synced []string
	rec := func(dir string) error { synced = append(synced, dir); return SyncDir(dir) }
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(dir, 0o755, rec); err != nil {
		t.Fatal(err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if len(synced) != len(want) {
		t.Fatalf("synced %v, want %v", synced, want)
	}
	for i := range want {
		if synced[i] != want[i] {
			t.Fatalf("synced %v, want %v", synced, want)
		}
	}
	synced = nil
	if err := MkdirAll(dir, 0o755, rec); err != nil || len(synced) != 0 {
		t.Fatalf("existing directory: synced %v, err %v", synced, err)
	}
}

// TestCrashDirDropsWhatNoSyncCovered: a power loss keeps the entries a
// directory had at its last sync.
func TestCrashDirDropsWhatNoSyncCovered(t *testing.T) {
	dir := t.TempDir()
	c := &CrashDir{}
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("synced")
	if err := c.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	write("lost")
	if err := c.Crash(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "synced")); err != nil {
		t.Errorf("synced entry gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lost")); !os.IsNotExist(err) {
		t.Errorf("entry no sync covered survived the crash: %v", err)
	}
}
