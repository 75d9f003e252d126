package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/durable"
)

const (
	manifestName = "MANIFEST"
	sharedDir    = "shared"
	chkPrefix    = "chk-"
)

// DirOption configures a Dir or an ObjectStorage.
type DirOption func(*storageOptions)

type storageOptions struct {
	retain   int
	log      *slog.Logger
	localDir string
}

func applyOptions(opts []DirOption) storageOptions {
	o := storageOptions{retain: 3, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithRetain sets how many complete checkpoints are kept. This overrides
// the default of 3; values below 1 mean 1.
func WithRetain(n int) DirOption {
	return func(o *storageOptions) { o.retain = max(n, 1) }
}

// WithLogger sets where warnings (skipped corrupt checkpoints, failed
// deletions) go. This overrides the default of slog.Default().
func WithLogger(l *slog.Logger) DirOption {
	return func(o *storageOptions) { o.log = l }
}

// WithLocalDir sets the local directory where an ObjectStorage buffers
// the files it uploads and downloads the checkpoint it restores (Pebble
// opens its sstables from there; on the state directory's file system
// they are hard-linked rather than copied). This overrides the default of
// os.TempDir(). A Dir ignores it.
func WithLocalDir(dir string) DirOption {
	return func(o *storageOptions) { o.localDir = dir }
}

// Dir is Storage in a local directory:
//
//	root/chk-00000000000000000042/MANIFEST   written last
//	root/chk-00000000000000000042/<files>    written by subtasks
//	root/shared/<name>                       files shared by checkpoints
//
// Dir is safe for concurrent use; at most one checkpoint should be pending
// at a time (the Coordinator ensures it).
type Dir struct {
	root   string
	retain int
	log    *slog.Logger

	// syncDir makes a directory's entries durable (syncDir; tests
	// watch it).
	syncDir func(dir string) error
	// fs is the file system, through which tests inject faults.
	fs dirFS

	shared *sharedIndex
}

// NewDir returns the storage rooted at root, creating the directory (and
// its missing parents) durably: the parent of every directory created is
// synced, so that a power loss right after cannot take the root, and the
// checkpoints later completed in it, away.
func NewDir(root string, opts ...DirOption) (*Dir, error) {
	return newDir(root, syncDir, opts...)
}

// newDir is NewDir with the directory sync (tests pass a
// durable.CrashDir's).
func newDir(root string, sync func(string) error, opts ...DirOption) (*Dir, error) {
	o := applyOptions(opts)
	d := &Dir{root: root, retain: o.retain, log: o.log, syncDir: sync, shared: newSharedIndex()}
	if err := durable.MkdirAll(filepath.Join(root, sharedDir), 0o755, sync); err != nil {
		return nil, fmt.Errorf("checkpoint dir %s: %w (check that its parent exists and is writable)", root, err)
	}
	return d, nil
}

// Root returns the storage's directory.
func (d *Dir) Root() string { return d.root }

// Location implements Store: the directory of checkpoint id.
func (d *Dir) Location(id ID) string { return filepath.Join(d.root, chkName(id)) }

func chkName(id ID) string { return fmt.Sprintf("%s%020d", chkPrefix, uint64(id)) }

func parseChk(name string) (ID, bool) {
	if !strings.HasPrefix(name, chkPrefix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(chkPrefix):], 10, 64)
	return ID(v), err == nil
}

// sync makes directory dir's entries durable.
func (d *Dir) sync(dir string) error {
	if err := d.fs.check(fsSyncDir, dir); err != nil {
		return err
	}
	return d.syncDir(dir)
}

// ids lists every checkpoint directory's ID, oldest first.
func (d *Dir) ids() ([]ID, error) {
	ents, err := d.fs.readDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint dir %s: %w", d.root, err)
	}
	var out []ID
	for _, e := range ents {
		if id, ok := parseChk(e.Name()); ok && e.IsDir() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Complete implements Storage. A manifest whose existence cannot be
// checked is an error, not an incomplete checkpoint: retention deletes
// incomplete checkpoints.
func (d *Dir) Complete() ([]ID, error) {
	all, err := d.ids()
	if err != nil {
		return nil, err
	}
	var out []ID
	for _, id := range all {
		ok, err := d.fs.exists(filepath.Join(d.root, chkName(id), manifestName))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// Latest implements Storage.
func (d *Dir) Latest(ctx context.Context) (*Checkpoint, error) {
	ids, err := d.ids()
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(d.root, chkName(ids[i]))
		c, err := loadDir(d.fs, d.root, dir)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				// Reading failed (an I/O error, not damaged bytes):
				// restoring an older checkpoint would rewind the
				// sources past output already committed.
				return nil, fmt.Errorf("%w; not falling back to an older checkpoint, which would lose this one's progress: fix the storage and restart", err)
			}
			d.log.Warn("skipping checkpoint", "dir", dir, "err", err)
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("%s: %w", d.root, ErrNoCheckpoint)
}

// LoadDir loads and verifies the checkpoint in directory dir (a
// chk-NNN directory of a Dir storage), for an explicit restore.
func LoadDir(dir string) (*Checkpoint, error) {
	dir = filepath.Clean(dir)
	return loadDir(dirFS{}, filepath.Dir(dir), dir)
}

// loadDir loads checkpoint directory dir of the storage rooted at root
// and verifies its files. Damaged or missing bytes (a missing or
// truncated manifest, a file missing, resized or with another checksum)
// match ErrCorrupt; an error reading them does not.
func loadDir(fsys dirFS, root, dir string) (*Checkpoint, error) {
	data, err := fsys.readFile(filepath.Join(dir, manifestName))
	m, err := manifestAt(dir, data, err, errors.Is(err, fs.ErrNotExist))
	if err != nil {
		return nil, err
	}
	src := dirFiles{root: root}
	for _, f := range m.Files {
		if err := verifyFile(fsys, root, f); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
	}
	return &Checkpoint{Manifest: m, Location: dir, files: src}, nil
}

// safePath resolves a manifest path under root, refusing paths that
// escape it.
func safePath(root, p string) (string, error) {
	if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", fmt.Errorf("%w: file path %q escapes the checkpoint directory", ErrCorrupt, p)
	}
	return filepath.Join(root, filepath.FromSlash(p)), nil
}

func verifyFile(fsys dirFS, root string, fi FileInfo) error {
	p, err := safePath(root, fi.Path)
	if err != nil {
		return err
	}
	if err := fsys.check(fsRead, p); err != nil {
		return fmt.Errorf("file %s: %w", fi.Path, err)
	}
	size, sum, err := checksumFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: file %s: %v", ErrCorrupt, fi.Path, err)
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", fi.Path, err)
	}
	if size != fi.Size {
		return fmt.Errorf("%w: file %s is %d bytes, manifest says %d", ErrCorrupt, fi.Path, size, fi.Size)
	}
	if sum != fi.CRC32C {
		return fmt.Errorf("%w: file %s checksum %08x, manifest says %08x", ErrCorrupt, fi.Path, sum, fi.CRC32C)
	}
	return nil
}

func checksumFile(p string) (int64, uint32, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	return n, h.Sum32(), err
}

type dirFiles struct{ root string }

type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }

func (s dirFiles) open(path string) (File, error) {
	p, err := safePath(s.root, path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	return osFile{File: f, size: st.Size()}, nil
}

func (s dirFiles) fetch(path, dst string) error {
	p, err := safePath(s.root, path)
	if err != nil {
		return err
	}
	return linkOrCopy(p, dst)
}

// linkOrCopy hard-links src to dst, or copies it (and syncs the copy)
// when a link is impossible (another file system).
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	return out.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// loadShared builds the index of shared files from the manifests of the
// complete checkpoints, once.
func (d *Dir) loadShared() {
	if d.shared.isLoaded() {
		return
	}
	found := make(map[string]FileInfo)
	ids, err := d.Complete()
	if err != nil {
		d.log.Warn("checkpoint storage: shared files not indexed", "err", err)
		return
	}
	for _, id := range ids {
		data, err := d.fs.readFile(filepath.Join(d.root, chkName(id), manifestName))
		if err != nil {
			continue
		}
		m, err := DecodeManifest(data)
		if err != nil {
			continue
		}
		addSharedFiles(m, found)
	}
	d.shared.load(found)
}

// Open opens a file of the storage by the path a manifest names it with
// (for reading back files of earlier checkpoints, such as the chain of
// increments a compaction folds into one file).
func (d *Dir) Open(path string) (File, error) { return dirFiles{root: d.root}.open(path) }

// Begin implements Storage.
func (d *Dir) Begin(id ID) (Pending, error) {
	dir := filepath.Join(d.root, chkName(id))
	if err := d.removeChk(dir); err != nil {
		return nil, fmt.Errorf("checkpoint %d: clear %s: %w", id, dir, err)
	}
	if err := d.fs.mkdir(dir); err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", id, err)
	}
	// The checkpoint's directory entry is made durable now, at the
	// trigger, rather than in Commit, where the output of two-phase-commit
	// sinks waits for every sync.
	if err := d.sync(d.root); err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", id, err)
	}
	d.loadShared()
	return &dirPending{pendingFiles: newPendingFiles(id, d.shared), d: d, dir: dir}, nil
}

type dirPending struct {
	pendingFiles
	d   *Dir
	dir string
}

func (p *dirPending) Create(name string) (FileWriter, error) {
	if name == manifestName || !validName(name) {
		return nil, fmt.Errorf("checkpoint %d: bad file name %q", p.id, name)
	}
	f, err := p.d.fs.openFile(filepath.Join(p.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", p.id, err)
	}
	w := &dirFileWriter{p: p, f: f, path: chkName(p.id) + "/" + name, crc: crc32.New(castagnoli)}
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, w.crc), 256<<10)
	return w, nil
}

func (p *dirPending) PutShared(name, localPath string) (FileInfo, error) {
	if !validName(name) {
		return FileInfo{}, fmt.Errorf("checkpoint %d: bad shared file name %q", p.id, name)
	}
	dst := filepath.Join(p.d.root, sharedDir, name)
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if err := p.d.fs.link(localPath, tmp); err != nil {
		return FileInfo{}, fmt.Errorf("checkpoint %d: shared %s: %w", p.id, name, err)
	}
	size, sum, err := checksumFile(tmp)
	if err != nil {
		return FileInfo{}, fmt.Errorf("checkpoint %d: shared %s: %w", p.id, name, err)
	}
	if err := p.d.fs.rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return FileInfo{}, fmt.Errorf("checkpoint %d: shared %s: %w", p.id, name, err)
	}
	fi := FileInfo{Path: sharedDir + "/" + name, Size: size, CRC32C: sum}
	p.added(fi, name)
	return fi, nil
}

// CreateShared implements SharedCreator. The file is written under a
// temporary name and renamed into shared/ by Close, after its fsync, so
// that shared/ never holds a partial file under a real name.
func (p *dirPending) CreateShared(name string) (FileWriter, error) {
	if !validName(name) || strings.HasSuffix(name, ".tmp") {
		return nil, fmt.Errorf("checkpoint %d: bad shared file name %q", p.id, name)
	}
	dst := filepath.Join(p.d.root, sharedDir, name)
	if _, err := os.Stat(dst); err == nil {
		return nil, fmt.Errorf("checkpoint %d: shared file %s exists already", p.id, name)
	}
	tmp := dst + ".tmp"
	f, err := p.d.fs.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", p.id, err)
	}
	w := &dirFileWriter{p: p, f: f, path: sharedDir + "/" + name, crc: crc32.New(castagnoli), shared: name, tmp: tmp, dst: dst}
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, w.crc), 256<<10)
	return w, nil
}

// Commit implements Pending: CommitManifest, then Retain.
func (p *dirPending) Commit(m *Manifest) error {
	if err := p.CommitManifest(m); err != nil {
		return err
	}
	p.Retain()
	return nil
}

// Retain implements Retainer.
func (p *dirPending) Retain() { p.d.retainOnly(p.id) }

// CommitManifest implements Retainer.
func (p *dirPending) CommitManifest(m *Manifest) error {
	return p.commit(m, p.writeManifest)
}

// writeManifest makes the manifest durable, after everything it names.
func (p *dirPending) writeManifest(data []byte) error {
	// The files of this checkpoint's directory are synced as written, and
	// its directory below; shared/ needs a sync when a file came into it
	// since the last one (a file reused from there was synced then).
	if puts, need := p.d.shared.unsynced(); need {
		if err := p.d.sync(filepath.Join(p.d.root, sharedDir)); err != nil {
			return fmt.Errorf("checkpoint %d: %w", p.id, err)
		}
		p.d.shared.markSynced(puts)
	}
	tmp := filepath.Join(p.dir, manifestName+".tmp")
	f, err := p.d.fs.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("checkpoint %d: manifest: %w", p.id, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint %d: manifest: %w", p.id, err)
	}
	if err := p.d.fs.sync(f); err != nil {
		f.Close()
		return fmt.Errorf("checkpoint %d: manifest: %w", p.id, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoint %d: manifest: %w", p.id, err)
	}
	if err := p.d.fs.rename(tmp, filepath.Join(p.dir, manifestName)); err != nil {
		return fmt.Errorf("checkpoint %d: manifest: %w", p.id, err)
	}
	// The directory's entry in root was synced by Begin.
	if err := p.d.sync(p.dir); err != nil {
		// The commit fails; Abort removes the manifest first.
		return fmt.Errorf("checkpoint %d: %w", p.id, err)
	}
	return nil
}

// Abort implements Pending.
func (p *dirPending) Abort() error {
	return p.abort(func() error { return p.d.removeChk(p.dir) })
}

// errManifestKept marks a failure to delete a checkpoint whose manifest
// could not be removed: it may still be complete.
var errManifestKept = errors.New("manifest not removed")

// removeChk removes checkpoint directory dir, its manifest first, so
// that a removal that fails part way leaves the checkpoint incomplete,
// never complete with files missing.
func (d *Dir) removeChk(dir string) error {
	if err := d.fs.remove(filepath.Join(dir, manifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", errManifestKept, err)
	}
	return d.fs.removeAll(dir)
}

// retainOnly deletes what the checkpoint just completed (latest) makes
// obsolete: complete checkpoints beyond the retention, incomplete ones
// older than latest, and shared files no retained manifest names.
// Failures are logged: they cost disk space, not correctness.
func (d *Dir) retainOnly(latest ID) {
	complete, err := d.Complete()
	if err != nil {
		d.log.Warn("checkpoint retention", "err", err)
		return
	}
	keep := newestComplete(complete, d.retain)
	all, err := d.ids()
	if err != nil {
		d.log.Warn("checkpoint retention", "err", err)
		return
	}
	// named are the checkpoints whose shared files stay: the kept ones
	// and those whose manifest could not be deleted (still complete).
	named := maps.Clone(keep)
	for _, id := range all {
		if keep[id] || id > latest {
			continue
		}
		if err := d.removeChk(filepath.Join(d.root, chkName(id))); err != nil {
			d.log.Warn("checkpoint retention: delete", "id", id, "err", err)
			if errors.Is(err, errManifestKept) && slices.Contains(complete, id) {
				named[id] = true
			}
		}
	}
	// Collect the shared files that retained manifests name. A manifest
	// that cannot be read stops the collection: deleting a file it might
	// name would be worse than keeping garbage.
	used := make(map[string]FileInfo)
	for id := range named {
		data, err := d.fs.readFile(filepath.Join(d.root, chkName(id), manifestName))
		if err != nil {
			d.log.Warn("checkpoint retention: shared files kept", "id", id, "err", err)
			return
		}
		m, err := DecodeManifest(data)
		if err != nil {
			d.log.Warn("checkpoint retention: shared files kept", "id", id, "err", err)
			return
		}
		addSharedFiles(m, used)
	}
	ents, err := d.fs.readDir(filepath.Join(d.root, sharedDir))
	if err != nil {
		d.log.Warn("checkpoint retention", "err", err)
		return
	}
	for _, e := range ents {
		if _, ok := used[e.Name()]; ok {
			continue
		}
		if err := d.fs.remove(filepath.Join(d.root, sharedDir, e.Name())); err != nil {
			d.log.Warn("checkpoint retention: delete shared", "file", e.Name(), "err", err)
		}
	}
	d.shared.reset(used)
}

type dirFileWriter struct {
	p      *dirPending
	f      *os.File
	bw     *bufio.Writer
	crc    hash.Hash32
	path   string
	size   int64
	closed bool
	// Shared files (CreateShared): the name in shared/, and the
	// temporary and final local paths.
	shared, tmp, dst string
}

func (w *dirFileWriter) Write(b []byte) (int, error) {
	n, err := w.bw.Write(b)
	w.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("checkpoint file %s: %w", w.path, err)
	}
	return n, nil
}

func (w *dirFileWriter) Path() string { return w.path }

func (w *dirFileWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.bw.Flush()
	if err == nil {
		err = w.p.d.fs.sync(w.f)
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && w.shared != "" {
		err = w.p.d.fs.rename(w.tmp, w.dst)
	}
	if err != nil {
		if w.shared != "" {
			_ = os.Remove(w.tmp)
		}
		return fmt.Errorf("checkpoint file %s: %w", w.path, err)
	}
	w.p.added(FileInfo{Path: w.path, Size: w.size, CRC32C: w.crc.Sum32()}, w.shared)
	return nil
}

// Discard implements FileWriter: the file (its temporary name, for a
// shared file) is removed.
func (w *dirFileWriter) Discard() {
	if w.closed {
		return
	}
	w.closed = true
	w.f.Close()
	if w.shared != "" {
		_ = os.Remove(w.tmp)
	} else {
		_ = os.Remove(w.f.Name())
	}
}

var (
	_ Retainer      = (*dirPending)(nil)
	_ SharedCreator = (*dirPending)(nil)
)

// resolveManifest completes manifest m of checkpoint id: it checks its ID,
// sets its version and time, fills m.Files with the files its tasks name
// (which must be among files, by path) and encodes it.
func resolveManifest(id ID, m *Manifest, files map[string]FileInfo) ([]byte, error) {
	if m.ID != id {
		return nil, fmt.Errorf("checkpoint %d: manifest of checkpoint %d", id, m.ID)
	}
	if m.Version == 0 {
		m.Version = FormatVersion
	}
	if m.CreatedMs == 0 {
		m.CreatedMs = time.Now().UnixMilli()
	}
	seen := make(map[string]bool)
	m.Files = m.Files[:0]
	for _, t := range m.Tasks {
		for _, path := range t.Files {
			fi, ok := files[path]
			if !ok {
				return nil, fmt.Errorf("checkpoint %d: task %s names file %s, which was not written", id, t.Task, path)
			}
			if !seen[path] {
				seen[path] = true
				m.Files = append(m.Files, fi)
			}
		}
	}
	slices.SortFunc(m.Files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return EncodeManifest(m)
}

// validName reports whether name can be a checkpoint or shared file's
// name: a plain file name.
func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."
}
