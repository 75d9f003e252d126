package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// SyncDir makes the entries of dir (files created, renamed or removed in
// it) durable. A file system that cannot sync a directory (os.ErrInvalid,
// as some do) is taken as one that needs no such sync.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, os.ErrInvalid) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll creates dir and its missing parents like os.MkdirAll, and
// syncs the parent of every directory it created (through syncDir;
// SyncDir when nil), so that the new directories survive a power loss.
func MkdirAll(dir string, perm os.FileMode, syncDir func(string) error) error {
	if syncDir == nil {
		syncDir = SyncDir
	}
	dir = filepath.Clean(dir)
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	slices.Reverse(created)
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// CrashDir is a SyncDir for tests that records, per directory, the
// entries present at its last sync: what a power loss would leave of it
// (entries created or renamed into it since are lost, those removed since
// come back; the last is not modelled, as no caller depends on a removal
// being durable).
type CrashDir struct {
	mu      sync.Mutex
	durable map[string][]string
}

// SyncDir records dir's entries as durable, then syncs it.
func (c *CrashDir) SyncDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	c.mu.Lock()
	if c.durable == nil {
		c.durable = map[string][]string{}
	}
	c.durable[filepath.Clean(dir)] = names
	c.mu.Unlock()
	return SyncDir(dir)
}

// Durable reports whether name (a path) was in its directory at the
// directory's last sync.
func (c *CrashDir) Durable(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.durable[filepath.Dir(filepath.Clean(name))], filepath.Base(name))
}

// Crash removes the entries of dir that its last sync did not make
// durable, as a power loss would lose them.
func (c *CrashDir) Crash(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !c.Durable(filepath.Join(dir, e.Name())) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
