package kafka

import "syscall"

// volumeBytes returns the total and usable (available to unprivileged
// users) bytes of the file system holding dir, -1 each when unknown.
func volumeBytes(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}
