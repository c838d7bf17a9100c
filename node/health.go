package node

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
// The check costs two stats and an access(2) call: nothing to a phone's
// battery at its interval.

// DefaultDataDirCheckInterval is how often the data directory is checked
// unless Config.DataDirCheckInterval says otherwise.
const DefaultDataDirCheckInterval = 30 * time.Second

// StorageFault returns the storage fault that stopped the node's storage
// (wrapping kv.ErrFaulted), or nil while it is healthy.
func (n *Node) StorageFault() error { return n.db.Fault() }

// StorageFaulted is closed at the first storage fault.
func (n *Node) StorageFaulted() <-chan struct{} { return n.db.Faulted() }

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
				n.db.Fail(err)
				return
			}
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
