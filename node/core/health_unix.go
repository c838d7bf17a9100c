//go:build unix

package core

import "syscall"

// accessWrite is access(2)'s W_OK, 2 on every Unix (syscall does not name
// it on all of them).
const accessWrite = 2

// writable asks the kernel whether the process may create files in dir:
// access(2) answers for the real user and honours read-only mounts, without
// writing anything.
func writable(dir string) error {
	return syscall.Access(dir, accessWrite)
}
