//go:build !unix

package core

import (
	"errors"
	"os"
)

// errNotWritable is writable's answer for a directory without write permission.
var errNotWritable = errors.New("not writable")

// writable falls back to the directory's permission bits where access(2)
// does not exist.
func writable(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o200 == 0 {
		return errNotWritable
	}
	return nil
}
