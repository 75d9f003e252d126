//go:build linux

package logstore

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func flock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLockHeld
	}
	return err
}

// fdatasync flushes the file's data and the metadata needed to read it back
// (its size), not its timestamps.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// StartWriteback implements writebackStarter with sync_file_range(2),
// SYNC_FILE_RANGE_WRITE only: it queues the range's dirty pages for
// writeback and returns without waiting for them (nor consuming a
// writeback error, which the next fdatasync reports).
func (f osFile) StartWriteback(off, n int64) error {
	for {
		err := unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
		if err != unix.EINTR {
			return err
		}
	}
}

// DropCache implements cacheDropper with posix_fadvise(2)
// POSIX_FADV_DONTNEED: the range's clean pages leave the page cache.
func (f osFile) DropCache(off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}

// maxIOV is the most buffers one writev(2) takes (IOV_MAX).
const maxIOV = 1024

// WriteVectors implements vectorWriter with writev(2), IOV_MAX buffers at
// a time, going on after short writes. The file descriptor is held through
// the file's raw connection, so a concurrent Close waits for the write.
func (f osFile) WriteVectors(bufs [][]byte) (n int, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return n, nil
		}
		chunk := bufs[:min(len(bufs), maxIOV)]
		var m int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			m, werr = unix.Writev(int(fd), chunk)
			return true
		}); err != nil {
			return n, &os.PathError{Op: "writev", Path: f.Name(), Err: err}
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			return n, &os.PathError{Op: "writev", Path: f.Name(), Err: werr}
		}
		if m <= 0 {
			return n, &os.PathError{Op: "writev", Path: f.Name(), Err: io.ErrShortWrite}
		}
		n += m
		// Drop what was written: whole buffers, then part of one.
		for m > 0 {
			if m >= len(bufs[0]) {
				m -= len(bufs[0])
				bufs = bufs[1:]
				continue
			}
			bufs = append([][]byte{bufs[0][m:]}, bufs[1:]...)
			m = 0
		}
	}
}
