package core

import (
	"fmt"
	"os"
	"time"
)

// Storage health: how the node learns that it can no longer keep what it
// acknowledges, so an embedding app can stop it and tell its user instead
// of running on while its writes go nowhere.
//
// Two things make a storage fault, and both are permanent for the life of
// the open node (kv refuses every transaction after one, see kv/fault.go):
//
//   - a commit Badger could not write (kv sees it at the commit);
//   - the data directory check, run every Config.DataDirCheckInterval,
//     finding the database directory gone, replaced by another (Badger
//     would keep writing to files no longer reachable by name, all lost at
//     the next start) or not writable by the process (Badger fails at its
//     next new file, and then, being v4.9.6, ends the process on the
//     following write).
//
// The same check warns, before anything fails, when the file system has
// less than Config.LowDiskSpace free (StorageWarning): a phone's disk
// filling up is the usual way a node comes to its storage fault.
//
// The check costs two stats, an access(2) and a statfs(2) call: nothing to
// a phone's battery at its interval.

// DefaultDataDirCheckInterval is how often the data directory is checked
// unless Config.DataDirCheckInterval says otherwise.
const DefaultDataDirCheckInterval = 30 * time.Second

// DefaultLowDiskSpace is the free space under which StorageWarning warns,
// unless Config.LowDiskSpace says otherwise: a few of Badger's memtables and
// value-log files, whatever the profile.
const DefaultLowDiskSpace = 64 << 20

// StorageWarning says why storage may soon fail ("" while all is well):
// little free space left on the data directory's file system.
func (n *Node) StorageWarning() string {
	if p := n.storageWarning.Load(); p != nil {
		return *p
	}
	return ""
}

// StorageWarningChanged receives a value when StorageWarning may have
// changed (it is a wake-up, not a queue: read StorageWarning then).
func (n *Node) StorageWarningChanged() <-chan struct{} { return n.storageWarned }

// checkFreeSpace updates StorageWarning from the file system's free space.
func (n *Node) checkFreeSpace(dir string, low int64) {
	warning := ""
	if free, ok := freeSpace(dir); ok && free < low {
		warning = fmt.Sprintf("storage: %d MiB free on the data directory's disk, under %d MiB", free>>20, low>>20)
	}
	if warning == n.StorageWarning() {
		return
	}
	n.storageWarning.Store(&warning)
	select {
	case n.storageWarned <- struct{}{}:
	default:
	}
}

// StorageFault returns the storage fault that stopped the node's storage
// (wrapping kv.ErrFaulted), or nil while it is healthy.
func (n *Node) StorageFault() error { return n.DB.Fault() }

// StorageFaulted is closed at the first storage fault.
func (n *Node) StorageFaulted() <-chan struct{} { return n.DB.Faulted() }

// dataDirWatch is the periodic data directory check's goroutine.
type dataDirWatch struct {
	stop, done chan struct{}
}

// startDataDirWatch starts the check, remembering which directory the
// database was opened in.
func (n *Node) startDataDirWatch(dbDir string) error {
	opened, err := os.Stat(dbDir)
	if err != nil {
		return fmt.Errorf("node: data directory: %w", err)
	}
	every := n.cfg.DataDirCheckInterval
	if every == 0 {
		every = DefaultDataDirCheckInterval
	}
	if every < 0 {
		return nil
	}
	low := n.cfg.LowDiskSpace
	if low == 0 {
		low = DefaultLowDiskSpace
	}
	n.checkFreeSpace(dbDir, low)
	w := &dataDirWatch{stop: make(chan struct{}), done: make(chan struct{})}
	n.dirWatch = w
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			if err := checkDataDir(dbDir, opened); err != nil {
				n.log.Error("storage fault: the node stops writing", "err", err)
				n.DB.Fail(err)
				return
			}
			n.checkFreeSpace(dbDir, low)
		}
	}()
	return nil
}

func (n *Node) stopDataDirWatch() {
	if n.dirWatch == nil {
		return
	}
	close(n.dirWatch.stop)
	<-n.dirWatch.done
}

// checkDataDir reports why the database directory dir, opened as opened,
// can no longer be written, or nil.
func checkDataDir(dir string, opened os.FileInfo) error {
	now, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if !os.SameFile(opened, now) {
		return fmt.Errorf("data directory %s was replaced or moved while the database was open", dir)
	}
	if err := writable(dir); err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	return nil
}
