// Package crashtest holds end-to-end crash-safety tests of the edgenode
// binary: it is built, run as a child process, killed with SIGKILL while
// clients write to it, and restarted on the same data directory, and every
// write it acknowledged must still be there. The package has no code of its
// own; it exists so "go test ./..." runs these tests.
package crashtest
