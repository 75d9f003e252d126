package checkpoint

import (
	"fmt"
	"strings"
	"sync"
)

// What Dir and ObjectStorage share: the index of shared files and the
// bookkeeping of a pending checkpoint (the files it may name, committed
// or aborted once). Each storage adds how bytes reach its medium.

// sharedIndex is a storage's index of the files in shared/, by name: from
// the manifests of retained checkpoints (loaded once, by the first
// Begin) and from the files put since.
type sharedIndex struct {
	mu     sync.Mutex
	files  map[string]FileInfo
	loaded bool
	// puts counts the files added, and synced is its value when the
	// storage last made them durable as a whole (-1: never), so that a
	// Dir syncs shared/ only when a file came since.
	puts, synced int64
}

func newSharedIndex() *sharedIndex {
	return &sharedIndex{files: map[string]FileInfo{}, synced: -1}
}

func (x *sharedIndex) lookup(name string) (FileInfo, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	fi, ok := x.files[name]
	return fi, ok
}

func (x *sharedIndex) add(name string, fi FileInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.files[name] = fi
	x.puts++
}

func (x *sharedIndex) isLoaded() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.loaded
}

// load adds the shared files found in the retained manifests (files put
// since keep their entry) and marks the index loaded.
func (x *sharedIndex) load(found map[string]FileInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, f := range found {
		if _, ok := x.files[name]; !ok {
			x.files[name] = f
		}
	}
	x.loaded = true
}

// reset replaces the index by the files that retention kept.
func (x *sharedIndex) reset(used map[string]FileInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.files = used
	x.loaded = true
}

// unsynced returns the count of files added and whether some came since
// markSynced was last called.
func (x *sharedIndex) unsynced() (puts int64, need bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.puts, x.puts != x.synced
}

func (x *sharedIndex) markSynced(puts int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.synced = max(x.synced, puts)
}

// addSharedFiles adds to into the shared files that manifest m names, by
// their name in shared/.
func addSharedFiles(m *Manifest, into map[string]FileInfo) {
	for _, f := range m.Files {
		if name, ok := strings.CutPrefix(f.Path, sharedDir+"/"); ok {
			into[name] = f
		}
	}
}

// newestComplete returns the n newest of complete (oldest first): the
// checkpoints that retention keeps.
func newestComplete(complete []ID, n int) map[ID]bool {
	keep := make(map[ID]bool)
	for i := len(complete) - 1; i >= 0 && len(keep) < n; i-- {
		keep[complete[i]] = true
	}
	return keep
}

// pendingFiles is the bookkeeping of a pending checkpoint: the files it
// may name (written by it, or shared files it reuses), and whether it was
// committed or aborted.
type pendingFiles struct {
	id     ID
	shared *sharedIndex

	mu    sync.Mutex
	files map[string]FileInfo // by path
	done  bool
}

func newPendingFiles(id ID, shared *sharedIndex) pendingFiles {
	return pendingFiles{id: id, shared: shared, files: make(map[string]FileInfo)}
}

// ID implements Pending.
func (p *pendingFiles) ID() ID { return p.id }

// Shared implements Pending: a shared file already stored, which this
// checkpoint's manifest may then name.
func (p *pendingFiles) Shared(name string) (FileInfo, bool) {
	fi, ok := p.shared.lookup(name)
	if ok {
		p.mu.Lock()
		p.files[fi.Path] = fi
		p.mu.Unlock()
	}
	return fi, ok
}

// added records a file this checkpoint stored (and a shared file, by its
// name in shared/, in the storage's index).
func (p *pendingFiles) added(fi FileInfo, shared string) {
	p.mu.Lock()
	p.files[fi.Path] = fi
	p.mu.Unlock()
	if shared != "" {
		p.shared.add(shared, fi)
	}
}

// commit resolves manifest m against the files recorded and hands its
// encoding to write, which makes it durable; the checkpoint is committed
// once write succeeds, and cannot be committed or aborted again.
func (p *pendingFiles) commit(m *Manifest, write func(data []byte) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return fmt.Errorf("checkpoint %d: already committed or aborted", p.id)
	}
	data, err := resolveManifest(p.id, m, p.files)
	if err != nil {
		return err
	}
	if err := write(data); err != nil {
		return err
	}
	p.done = true
	return nil
}

// abort calls discard, which removes what the checkpoint stored, unless
// the checkpoint was committed or aborted already.
func (p *pendingFiles) abort(discard func() error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	p.done = true
	if err := discard(); err != nil {
		return fmt.Errorf("checkpoint %d: abort: %w", p.id, err)
	}
	return nil
}
