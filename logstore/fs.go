package logstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file-system seam of the log. Every file the log touches goes
// through it, so that tests can inject faults (a full disk, I/O errors, torn
// writes) without real crashes. OSFS is the production implementation.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// MkdirAll creates a directory and its parents like os.MkdirAll.
	MkdirAll(path string, perm os.FileMode) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a tree like os.RemoveAll.
	RemoveAll(path string) error
	// Rename renames a file or directory atomically (within one file system).
	Rename(oldpath, newpath string) error
	// ReadDir lists a directory sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// Stat describes a file.
	Stat(name string) (fs.FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive advisory lock on the file name (created if
	// needed) without blocking; it returns ErrLocked-like errors as
	// errLockHeld. The lock is released by closing the returned file.
	Lock(name string) (File, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes the file's written data durable (fdatasync or fsync).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Stat describes the file.
	Stat() (fs.FileInfo, error)
	// Seek sets the offset for the next Read or Write.
	Seek(offset int64, whence int) (int64, error)
}

// errLockHeld is returned by FS.Lock when another process holds the lock.
var errLockHeld = errors.New("lock held by another process")

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// Stat implements FS.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock implements FS with flock(2).
func (OSFS) Lock(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, err
	}
	return osFile{f}, nil
}

type osFile struct{ *os.File }

func (f osFile) Sync() error { return fdatasync(f.File) }

// WriteZerosAt implements zeroWriter with pwrite(2) (os.File.WriteAt),
// leaving the file position where it is.
func (f osFile) WriteZerosAt(off, n int64) error { return writeZerosAt(f.File, off, n) }

// readFile reads a whole small file through fsys.
func readFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeFileAtomic replaces name with data durably: it writes a temporary file,
// syncs it, renames it over name and syncs the directory. A crash leaves
// either the old or the new content, never a mix.
func writeFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return ioError("create "+tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return ioError("write "+tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		fsys.Remove(tmp)
		return ioError("sync "+tmp, err)
	}
	if err := f.Close(); err != nil {
		fsys.Remove(tmp)
		return ioError("close "+tmp, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return ioError("rename "+tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return ioError(fmt.Sprintf("sync directory of %s", name), err)
	}
	return nil
}

// vectorWriter is a File that writes several buffers, in order, with one
// system call (writev(2)): the log's pending batches go to a segment
// without being gathered into one buffer first. Files without it get one
// Write per buffer.
type vectorWriter interface {
	// WriteVectors writes all of bufs, in order, as Write would write their
	// concatenation; n is the number of bytes written.
	WriteVectors(bufs [][]byte) (n int, err error)
}

// writebackStarter is a File that can ask the kernel to start writing a
// range of its dirty pages to the disk without waiting for them
// (sync_file_range(2) with SYNC_FILE_RANGE_WRITE on Linux). It promises
// nothing about durability: only Sync does. The log uses it for batches
// written ahead during an fdatasync, so that the disk receives them while
// the current commit finishes instead of at the next commit's fdatasync.
type writebackStarter interface {
	StartWriteback(off, n int64) error
}

// startWriteback starts the writeback of [off, off+n) of f where f
// supports it. Errors are ignored: starting writeback is advisory, and a
// failed write of these pages is reported by the fdatasync that every
// acknowledgement waits for (SYNC_FILE_RANGE_WRITE alone does not consume
// the file's writeback error, which fdatasync then sees).
func startWriteback(f File, off, n int64) {
	if ws, ok := f.(writebackStarter); ok && n > 0 {
		_ = ws.StartWriteback(off, n)
	}
}

// cacheDropper is a File that can drop a range of its clean pages from
// the page cache (posix_fadvise POSIX_FADV_DONTNEED on Linux). It changes
// nothing about the file's contents or durability, only where the next
// read of the range comes from.
type cacheDropper interface {
	DropCache(off, n int64) error
}

// dropCache drops [off, off+n) of f from the page cache where f supports
// it; errors are ignored (the advice only concerns caching).
func dropCache(f File, off, n int64) {
	if cd, ok := f.(cacheDropper); ok && n > 0 {
		_ = cd.DropCache(off, n)
	}
}

// writeVectors writes bufs to f in order, with writev(2) where f supports
// it. n is the number of bytes written; n < the total means err != nil.
func writeVectors(f File, bufs [][]byte) (n int, err error) {
	if vw, ok := f.(vectorWriter); ok {
		return vw.WriteVectors(bufs)
	}
	for _, b := range bufs {
		m, err := f.Write(b)
		n += m
		if err == nil && m < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
