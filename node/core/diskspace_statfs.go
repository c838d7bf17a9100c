//go:build linux || darwin

package core

import "syscall"

// freeSpace is how many bytes the process may still write on dir's file
// system (blocks available to unprivileged users).
func freeSpace(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	// Bsize is int64 on Linux, uint32 on Darwin.
	return int64(st.Bavail) * int64(st.Bsize), true
}
