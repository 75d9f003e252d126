package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fsOp is a kind of file-system operation of a Dir, as its fault hook
// sees it.
type fsOp uint8

const (
	fsCreate  fsOp = iota // a file created (opened for writing, or linked into place)
	fsSync                // a written file synced
	fsRename              // a file renamed into place
	fsRemove              // a file or an empty directory removed
	fsList                // a directory read
	fsRead                // a file read, or its existence checked
	fsMkdir               // a directory created
	fsSyncDir             // a directory's entries synced
)

var fsOpNames = [...]string{"create", "sync", "rename", "remove", "list", "read", "mkdir", "syncdir"}

func (o fsOp) String() string { return fsOpNames[o] }

// dirFS is the file system as a Dir uses it: the os package, with a hook
// through which tests make operations fail (the errorfs habit of pebble),
// so that the paths of I/O errors are tested without a failing disk. The
// hook is nil outside tests.
type dirFS struct {
	fault func(op fsOp, path string) error
}

// check asks the hook whether op on path fails.
func (f dirFS) check(op fsOp, path string) error {
	if f.fault == nil {
		return nil
	}
	if err := f.fault(op, path); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: err}
	}
	return nil
}

func (f dirFS) openFile(path string, flag int) (*os.File, error) {
	if err := f.check(fsCreate, path); err != nil {
		return nil, err
	}
	return os.OpenFile(path, flag, 0o644)
}

func (f dirFS) link(src, dst string) error {
	if err := f.check(fsCreate, dst); err != nil {
		return err
	}
	return linkOrCopy(src, dst)
}

func (f dirFS) sync(file *os.File) error {
	if err := f.check(fsSync, file.Name()); err != nil {
		return err
	}
	return file.Sync()
}

func (f dirFS) rename(from, to string) error {
	if err := f.check(fsRename, to); err != nil {
		return err
	}
	return os.Rename(from, to)
}

func (f dirFS) remove(path string) error {
	if err := f.check(fsRemove, path); err != nil {
		return err
	}
	return os.Remove(path)
}

// removeAll removes directory dir and the files in it (a checkpoint's
// directory holds no subdirectories) one at a time, so that a failure
// can leave some of them; a dir that does not exist is not an error.
func (f dirFS) removeAll(dir string) error {
	ents, err := f.readDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if err := f.removeAll(p); err != nil {
				return err
			}
			continue
		}
		if err := f.remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := f.remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (f dirFS) readDir(dir string) ([]os.DirEntry, error) {
	if err := f.check(fsList, dir); err != nil {
		return nil, err
	}
	return os.ReadDir(dir)
}

func (f dirFS) readFile(path string) ([]byte, error) {
	if err := f.check(fsRead, path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// exists reports whether path exists; an error other than its absence
// is returned.
func (f dirFS) exists(path string) (bool, error) {
	if err := f.check(fsRead, path); err != nil {
		return false, err
	}
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint storage: %w", err)
	}
	return true, nil
}

func (f dirFS) mkdir(dir string) error {
	if err := f.check(fsMkdir, dir); err != nil {
		return err
	}
	return os.Mkdir(dir, 0o755)
}
