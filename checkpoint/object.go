package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/objstore"
)

// ObjectStorage is Storage in an object store (objstore.Store: AWS S3,
// MinIO, SeaweedFS, Ceph, R2, or a fake for tests), with the layout of a
// Dir under the store's prefix:
//
//	chk-00000000000000000042/MANIFEST   put last
//	chk-00000000000000000042/<files>    put by subtasks
//	shared/<name>                       files shared by checkpoints
//
// A file written by a subtask is buffered locally (in memory, then in a
// temporary file of the local directory beyond memBuffer bytes) while its
// CRC-32C is computed, and put as one object by its writer's Close; a
// shared file (Pebble's sstables, the increment chains of in-memory
// state) is put once and named by every later checkpoint that still needs
// it. Puts are atomic, so the manifest, put after every file it names,
// makes the checkpoint complete at once: a crash or a failed put before
// it leaves the previous checkpoint the latest.
//
// Latest reads the newest manifest, checks that every file it names exists
// with its size, and downloads them into the local directory, verifying
// each one's CRC-32C as it streams in; a checkpoint that fails any of this
// is skipped, with a warning, for the previous one. The restore then reads
// local files (Pebble opens them), which Checkpoint.Close removes.
//
// ObjectStorage is safe for concurrent use; at most one checkpoint should
// be pending at a time, and one job should use a prefix (retention
// deletes what the job's own retained manifests do not name).
type ObjectStorage struct {
	store    objstore.Store
	name     string
	retain   int
	log      *slog.Logger
	localDir string
	// timeout bounds each call to the store, so that a store that hangs
	// fails the checkpoint rather than the job.
	timeout time.Duration

	shared *sharedIndex

	mu sync.Mutex
	// manifests caches the manifests this storage put or read, by
	// checkpoint (objects are immutable once complete), so that retention
	// does not get them again at every checkpoint.
	manifests map[ID]*Manifest
}

// memBuffer is how much of a file an ObjectStorage writer keeps in memory
// before it spills to a temporary file.
const memBuffer = 4 << 20

// downloaders is how many files Latest downloads at once.
const downloaders = 4

// NewObjectStorage returns the storage of checkpoints in store; name is
// its location for messages and Checkpoint.Location (s3://bucket/prefix).
// It does not contact the store.
func NewObjectStorage(store objstore.Store, name string, opts ...DirOption) *ObjectStorage {
	o := applyOptions(opts)
	if o.localDir == "" {
		o.localDir = os.TempDir()
	}
	return &ObjectStorage{store: store, name: strings.TrimSuffix(name, "/"), retain: o.retain, log: o.log,
		localDir: o.localDir, timeout: 10 * time.Minute, shared: newSharedIndex(), manifests: map[ID]*Manifest{}}
}

// OpenStore returns the Store at loc: an ObjectStorage for an s3:// URL
// (the object store's endpoint, region and credentials come from cfg,
// whose URL is ignored, and the AWS environment variables), a Dir for a
// local path. For an object store it checks that the bucket can be
// reached, so that a wrong endpoint or a missing bucket fails now, with a
// message that says so.
func OpenStore(ctx context.Context, loc string, cfg objstore.Config, opts ...DirOption) (Store, error) {
	if !objstore.IsURL(loc) {
		return NewDir(loc, opts...)
	}
	cfg.URL = loc
	st, err := objstore.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("checkpoint storage: %w", err)
	}
	if err := objstore.Check(ctx, st); err != nil {
		return nil, fmt.Errorf("checkpoint storage: %w", err)
	}
	return NewObjectStorage(st, loc, opts...), nil
}

// Load loads and verifies the checkpoint at location: a chk-NNN directory
// of a Dir, or the s3://bucket/prefix/chk-NNN URL of a checkpoint of an
// ObjectStorage (reached with cfg as OpenStore does). The caller closes
// the checkpoint once restored.
func Load(ctx context.Context, location string, cfg objstore.Config, opts ...DirOption) (*Checkpoint, error) {
	if !objstore.IsURL(location) {
		return LoadDir(location)
	}
	loc := strings.TrimSuffix(location, "/")
	i := strings.LastIndex(loc, "/")
	id, ok := parseChk(loc[i+1:])
	if i <= len("s3://") || !ok {
		return nil, fmt.Errorf("checkpoint %s: want s3://BUCKET/PREFIX/chk-NNN", location)
	}
	s, err := OpenStore(ctx, loc[:i], cfg, opts...)
	if err != nil {
		return nil, err
	}
	return s.(*ObjectStorage).load(ctx, id, nil)
}

// Store returns the object store.
func (s *ObjectStorage) Store() objstore.Store { return s.store }

// Location implements Store: the checkpoint's URL.
func (s *ObjectStorage) Location(id ID) string { return s.name + "/" + chkName(id) }

func (s *ObjectStorage) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// objIDs lists the checkpoints that have objects, oldest first, and those
// among them that have a manifest.
func (s *ObjectStorage) objIDs(ctx context.Context) (all, complete []ID, err error) {
	objs, err := s.store.List(ctx, chkPrefix)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint storage %s: %w", s.name, err)
	}
	seen := map[ID]bool{}
	for _, o := range objs {
		dir, file, ok := strings.Cut(o.Key, "/")
		if !ok {
			continue
		}
		id, ok := parseChk(dir)
		if !ok {
			continue
		}
		if !seen[id] {
			seen[id] = true
			all = append(all, id)
		}
		if file == manifestName {
			complete = append(complete, id)
		}
	}
	slices.Sort(all)
	slices.Sort(complete)
	return all, complete, nil
}

// Complete implements Storage.
func (s *ObjectStorage) Complete() ([]ID, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	_, complete, err := s.objIDs(ctx)
	return complete, err
}

// Latest implements Storage. The checkpoint it returns holds a local copy
// of its files: close it once restored.
//
// When every listed checkpoint fails and a new listing has a newer one,
// the search starts again from the new listing: another instance of the
// job (the one this restore replaces, not yet stopped) committed
// checkpoints and its retention deleted the listed ones meanwhile, which
// must not make the restore start from nothing.
func (s *ObjectStorage) Latest(ctx context.Context) (*Checkpoint, error) {
	var newest ID
	for round := range latestRounds {
		ids, sizes, err := s.candidates(ctx)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 || round > 0 && ids[len(ids)-1] <= newest {
			break
		}
		newest = ids[len(ids)-1]
		for i := len(ids) - 1; i >= 0; i-- {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			c, err := s.load(ctx, ids[i], sizes)
			if err != nil {
				if ctx.Err() != nil || !(errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion)) {
					// The store failed (unreachable, timed out, refused):
					// restoring an older checkpoint would lose progress, and
					// the next Begin would delete this good one.
					return nil, err
				}
				s.log.Warn("skipping checkpoint", "location", s.Location(ids[i]), "err", err)
				continue
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", s.name, ErrNoCheckpoint)
}

// latestRounds bounds how many listings Latest searches.
const latestRounds = 3

// candidates lists the checkpoints that have objects, oldest first, and
// the size of every object. Every checkpoint with objects is a candidate,
// as every chk-NNN directory is for a Dir: one without a manifest is
// skipped with a warning that says it is incomplete.
func (s *ObjectStorage) candidates(ctx context.Context) ([]ID, map[string]int64, error) {
	objs, err := s.store.List(ctx, "")
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint storage %s: %w", s.name, err)
	}
	sizes := make(map[string]int64, len(objs))
	seen := map[ID]bool{}
	var ids []ID
	for _, o := range objs {
		sizes[o.Key] = o.Size
		if dir, _, ok := strings.Cut(o.Key, "/"); ok {
			if id, ok := parseChk(dir); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids, sizes, nil
}

// load reads checkpoint id's manifest, checks its files against sizes
// (the store's listing; nil: list now) and downloads them into a new
// local directory, verifying their checksums.
func (s *ObjectStorage) load(ctx context.Context, id ID, sizes map[string]int64) (*Checkpoint, error) {
	loc := s.Location(id)
	data, err := objstore.ReadAll(ctx, s.store, chkName(id)+"/"+manifestName)
	m, err := manifestAt(loc, data, err, errors.Is(err, objstore.ErrNotExist))
	if err != nil {
		return nil, err
	}
	if sizes == nil {
		sizes = map[string]int64{}
		for _, prefix := range []string{chkName(id) + "/", sharedDir + "/"} {
			objs, err := s.store.List(ctx, prefix)
			if err != nil {
				return nil, fmt.Errorf("checkpoint %s: %w", loc, err)
			}
			for _, o := range objs {
				sizes[o.Key] = o.Size
			}
		}
	}
	for _, f := range m.Files {
		if err := validKey(f.Path); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", loc, err)
		}
		size, ok := sizes[f.Path]
		if !ok {
			return nil, fmt.Errorf("checkpoint %s: %w: file %s: no such file in the object store", loc, ErrCorrupt, f.Path)
		}
		if size != f.Size {
			return nil, fmt.Errorf("checkpoint %s: %w: file %s is %d bytes, manifest says %d", loc, ErrCorrupt, f.Path, size, f.Size)
		}
	}
	if err := os.MkdirAll(s.localDir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint %s: local directory: %w", loc, err)
	}
	dir, err := os.MkdirTemp(s.localDir, "restore-"+chkName(id)+"-")
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: local directory: %w", loc, err)
	}
	if err := s.download(ctx, m.Files, dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("checkpoint %s: %w", loc, err)
	}
	return &Checkpoint{Manifest: m, Location: loc, files: dirFiles{root: dir}, release: func() error { return os.RemoveAll(dir) }}, nil
}

// validKey refuses a manifest path that is not a relative key without
// "." or ".." elements (it becomes a local path when downloaded).
func validKey(p string) error {
	if p == "" || p == "." || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)) {
		return fmt.Errorf("%w: file path %q escapes the checkpoint", ErrCorrupt, p)
	}
	return nil
}

// download fetches files into dir (under their paths), a few at a time,
// checking each one's size and CRC-32C.
func (s *ObjectStorage) download(ctx context.Context, files []FileInfo, dir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan FileInfo)
	errs := make(chan error, downloaders)
	var wg sync.WaitGroup
	for range min(downloaders, max(len(files), 1)) {
		wg.Go(func() {
			for f := range work {
				if err := s.downloadFile(ctx, f, filepath.Join(dir, filepath.FromSlash(f.Path))); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, f := range files {
		select {
		case work <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

func (s *ObjectStorage) downloadFile(ctx context.Context, f FileInfo, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rc, err := s.store.Get(ctx, f.Path, 0, -1)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return fmt.Errorf("%w: file %s: %w", ErrCorrupt, f.Path, err)
		}
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	defer rc.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("file %s: %w", f.Path, err)
	}
	h := crc32.New(castagnoli)
	n, err := io.Copy(io.MultiWriter(out, h), rc)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("file %s: download: %w", f.Path, err)
	}
	return checkFile(f, n, h.Sum32())
}

// checkFile compares a file read back with its FileInfo.
func checkFile(f FileInfo, size int64, sum uint32) error {
	if size != f.Size {
		return fmt.Errorf("%w: file %s is %d bytes, manifest says %d", ErrCorrupt, f.Path, size, f.Size)
	}
	if sum != f.CRC32C {
		return fmt.Errorf("%w: file %s checksum %08x, manifest says %08x", ErrCorrupt, f.Path, sum, f.CRC32C)
	}
	return nil
}

// Open implements Store: it reads the whole object and, when the storage
// knows the file (a shared file of a retained checkpoint or of this run),
// checks its size and CRC-32C.
func (s *ObjectStorage) Open(p string) (File, error) {
	if err := validKey(p); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	data, err := objstore.ReadAll(ctx, s.store, p)
	if err != nil {
		return nil, fmt.Errorf("checkpoint file %s: %w", p, err)
	}
	fi, known := s.shared.lookup(strings.TrimPrefix(p, sharedDir+"/"))
	if known && fi.Path == p {
		if err := checkFile(fi, int64(len(data)), crc32.Checksum(data, castagnoli)); err != nil {
			return nil, err
		}
	}
	return memFile{Reader: bytes.NewReader(data)}, nil
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

// loadShared builds the index of shared files from the manifests of the
// complete checkpoints, once. A failure leaves the index to be loaded
// again by the next Begin (until then shared files may be put again,
// under the same name and with the same bytes).
func (s *ObjectStorage) loadShared(ctx context.Context) {
	if s.shared.isLoaded() {
		return
	}
	_, ids, err := s.objIDs(ctx)
	if err != nil {
		s.log.Warn("checkpoint storage: shared files not indexed", "err", err)
		return
	}
	found := map[string]FileInfo{}
	for _, id := range ids {
		m, err := s.manifest(ctx, id)
		if err != nil {
			continue
		}
		addSharedFiles(m, found)
	}
	s.shared.load(found)
}

func (s *ObjectStorage) manifest(ctx context.Context, id ID) (*Manifest, error) {
	s.mu.Lock()
	m := s.manifests[id]
	s.mu.Unlock()
	if m != nil {
		return m, nil
	}
	data, err := objstore.ReadAll(ctx, s.store, chkName(id)+"/"+manifestName)
	if err != nil {
		return nil, err
	}
	if m, err = DecodeManifest(data); err != nil {
		return nil, err
	}
	s.cacheManifest(m)
	return m, nil
}

func (s *ObjectStorage) cacheManifest(m *Manifest) {
	s.mu.Lock()
	s.manifests[m.ID] = m
	s.mu.Unlock()
}

func (s *ObjectStorage) forgetManifest(id ID) {
	s.mu.Lock()
	delete(s.manifests, id)
	s.mu.Unlock()
}

// deletePrefix deletes every object under prefix; it returns the first
// error and goes on after it.
func (s *ObjectStorage) deletePrefix(ctx context.Context, prefix string) error {
	objs, err := s.store.List(ctx, prefix)
	if err != nil {
		return err
	}
	var first error
	for _, o := range objs {
		if err := s.store.Delete(ctx, o.Key); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Begin implements Storage: it deletes what an earlier attempt at id left.
func (s *ObjectStorage) Begin(id ID) (Pending, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	s.forgetManifest(id)
	if err := s.deletePrefix(ctx, chkName(id)+"/"); err != nil {
		return nil, fmt.Errorf("checkpoint %d: clear %s: %w", id, s.Location(id), err)
	}
	s.loadShared(ctx)
	return &objPending{pendingFiles: newPendingFiles(id, s.shared), s: s}, nil
}

type objPending struct {
	pendingFiles
	s *ObjectStorage
}

func (p *objPending) Create(name string) (FileWriter, error) {
	if name == manifestName || !validName(name) {
		return nil, fmt.Errorf("checkpoint %d: bad file name %q", p.id, name)
	}
	return &objWriter{p: p, key: chkName(p.id) + "/" + name, crc: crc32.New(castagnoli)}, nil
}

// PutShared implements Pending: the local file is checksummed, then put
// (from the file, so that a large one goes up in parallel parts).
func (p *objPending) PutShared(name, localPath string) (FileInfo, error) {
	if !validName(name) {
		return FileInfo{}, fmt.Errorf("checkpoint %d: bad shared file name %q", p.id, name)
	}
	size, sum, err := checksumFile(localPath)
	if err != nil {
		return FileInfo{}, fmt.Errorf("checkpoint %d: shared %s: %w", p.id, name, err)
	}
	f, err := os.Open(localPath)
	if err != nil {
		return FileInfo{}, fmt.Errorf("checkpoint %d: shared %s: %w", p.id, name, err)
	}
	defer f.Close()
	fi := FileInfo{Path: sharedDir + "/" + name, Size: size, CRC32C: sum}
	if err := p.put(fi.Path, f, size); err != nil {
		return FileInfo{}, err
	}
	p.added(fi, name)
	return fi, nil
}

// CreateShared implements SharedCreator.
func (p *objPending) CreateShared(name string) (FileWriter, error) {
	if !validName(name) {
		return nil, fmt.Errorf("checkpoint %d: bad shared file name %q", p.id, name)
	}
	if _, exists := p.s.shared.lookup(name); exists {
		return nil, fmt.Errorf("checkpoint %d: shared file %s exists already", p.id, name)
	}
	return &objWriter{p: p, key: sharedDir + "/" + name, shared: name, crc: crc32.New(castagnoli)}, nil
}

func (p *objPending) put(key string, r io.Reader, size int64) error {
	ctx, cancel := p.s.ctx()
	defer cancel()
	if err := p.s.store.Put(ctx, key, r, size); err != nil {
		return fmt.Errorf("checkpoint %d: upload %s: %w", p.id, key, err)
	}
	return nil
}

// Commit implements Pending: CommitManifest, then Retain.
func (p *objPending) Commit(m *Manifest) error {
	if err := p.CommitManifest(m); err != nil {
		return err
	}
	p.Retain()
	return nil
}

// CommitManifest implements Retainer: the manifest is put after every
// file it names was put (their writers closed without error).
func (p *objPending) CommitManifest(m *Manifest) error {
	return p.commit(m, func(data []byte) error {
		if err := p.put(chkName(p.id)+"/"+manifestName, bytes.NewReader(data), int64(len(data))); err != nil {
			return err
		}
		p.s.cacheManifest(m)
		return nil
	})
}

// Retain implements Retainer.
func (p *objPending) Retain() { p.s.retainOnly(p.id) }

// Abort implements Pending: the checkpoint's own objects are deleted
// (shared files it put stay, for later checkpoints or retention).
func (p *objPending) Abort() error {
	return p.abort(func() error {
		ctx, cancel := p.s.ctx()
		defer cancel()
		return p.s.deletePrefix(ctx, chkName(p.id)+"/")
	})
}

// retainOnly deletes what checkpoint latest makes obsolete, as Dir's
// does: the objects of complete checkpoints beyond the retention and of
// incomplete ones older than latest, and the shared objects that no
// retained manifest names. Failures are logged: they cost storage, not
// correctness.
func (s *ObjectStorage) retainOnly(latest ID) {
	ctx, cancel := s.ctx()
	defer cancel()
	all, complete, err := s.objIDs(ctx)
	if err != nil {
		s.log.Warn("checkpoint retention", "err", err)
		return
	}
	keep := newestComplete(complete, s.retain)
	// named are the checkpoints whose shared files stay: the kept ones
	// and those whose manifest could not be deleted (still complete).
	named := maps.Clone(keep)
	// Manifests are deleted first, so that a checkpoint whose deletion
	// fails half-way is incomplete, never complete with files missing.
	for _, id := range all {
		if keep[id] || id > latest {
			continue
		}
		s.forgetManifest(id)
		if err := s.store.Delete(ctx, chkName(id)+"/"+manifestName); err != nil {
			s.log.Warn("checkpoint retention: delete", "id", id, "err", err)
			if slices.Contains(complete, id) {
				named[id] = true
			}
			continue
		}
		if err := s.deletePrefix(ctx, chkName(id)+"/"); err != nil {
			s.log.Warn("checkpoint retention: delete", "id", id, "err", err)
		}
	}
	// A manifest that cannot be read stops the collection: deleting a
	// file it might name would be worse than keeping garbage.
	used := make(map[string]FileInfo)
	for id := range named {
		m, err := s.manifest(ctx, id)
		if err != nil {
			s.log.Warn("checkpoint retention: shared files kept", "id", id, "err", err)
			return
		}
		addSharedFiles(m, used)
	}
	objs, err := s.store.List(ctx, sharedDir+"/")
	if err != nil {
		s.log.Warn("checkpoint retention", "err", err)
		return
	}
	for _, o := range objs {
		if _, ok := used[strings.TrimPrefix(o.Key, sharedDir+"/")]; ok {
			continue
		}
		if err := s.store.Delete(ctx, o.Key); err != nil {
			s.log.Warn("checkpoint retention: delete shared", "file", o.Key, "err", err)
		}
	}
	s.shared.reset(used)
}

// objWriter buffers a file in memory, then in a temporary local file, and
// puts it when closed.
type objWriter struct {
	p      *objPending
	key    string
	shared string // its name in shared/, for a shared file
	crc    hash.Hash32
	mem    bytes.Buffer
	tmp    *os.File
	size   int64
	closed bool
	err    error
}

func (w *objWriter) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, fmt.Errorf("checkpoint file %s: write after close", w.key)
	}
	w.crc.Write(b)
	w.size += int64(len(b))
	if w.tmp == nil && w.mem.Len()+len(b) <= memBuffer {
		w.mem.Write(b)
		return len(b), nil
	}
	if w.tmp == nil {
		if err := os.MkdirAll(w.p.s.localDir, 0o755); err != nil {
			w.err = fmt.Errorf("checkpoint file %s: buffer: %w", w.key, err)
			return 0, w.err
		}
		f, err := os.CreateTemp(w.p.s.localDir, "upload-*")
		if err == nil {
			_, err = f.Write(w.mem.Bytes())
		}
		if err != nil {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
			w.err = fmt.Errorf("checkpoint file %s: buffer: %w", w.key, err)
			return 0, w.err
		}
		w.tmp = f
		w.mem = bytes.Buffer{}
	}
	if _, err := w.tmp.Write(b); err != nil {
		w.err = fmt.Errorf("checkpoint file %s: buffer: %w", w.key, err)
		return 0, w.err
	}
	return len(b), nil
}

func (w *objWriter) Path() string { return w.key }

func (w *objWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.tmp != nil {
		defer func() {
			w.tmp.Close()
			os.Remove(w.tmp.Name())
		}()
	}
	if w.err != nil {
		return w.err
	}
	var r io.Reader = bytes.NewReader(w.mem.Bytes())
	if w.tmp != nil {
		if _, err := w.tmp.Seek(0, io.SeekStart); err != nil {
			w.err = fmt.Errorf("checkpoint file %s: %w", w.key, err)
			return w.err
		}
		r = w.tmp
	}
	if err := w.p.put(w.key, r, w.size); err != nil {
		w.err = err
		return err
	}
	w.p.added(FileInfo{Path: w.key, Size: w.size, CRC32C: w.crc.Sum32()}, w.shared)
	return nil
}

// Discard implements FileWriter: nothing was put; the buffer is
// released.
func (w *objWriter) Discard() {
	if w.closed {
		return
	}
	w.closed = true
	w.err = fmt.Errorf("checkpoint file %s: discarded", w.key)
	w.mem = bytes.Buffer{}
	if w.tmp != nil {
		w.tmp.Close()
		os.Remove(w.tmp.Name())
	}
}

var (
	_ Store         = (*ObjectStorage)(nil)
	_ Store         = (*Dir)(nil)
	_ Retainer      = (*objPending)(nil)
	_ SharedCreator = (*objPending)(nil)
)
