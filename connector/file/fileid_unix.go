//go:build unix

package file

import (
	"os"
	"syscall"
)

// identify returns the identity of the file fi describes: its device and
// inode, which a rename keeps and a new file under the old name does not.
func identify(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // the field types differ by platform
}
