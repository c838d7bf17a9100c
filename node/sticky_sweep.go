package node

import (
	"fmt"
	"time"

	"github.com/edgenode/edgenode/kv"
)

// Sweeper limits: how many expired entries one transaction deletes, and the
// longest the sweeper sleeps (so entries added while it sleeps wait at most
// this long past their end even if a poke were lost).
const (
	stickySweepBatch   = 1000
	stickySweepMaxWait = time.Minute
)

// stickySweeper deletes expired entries of the sticky indexes, so they hold
// only what is still sticky (plus at most a sweep's delay). Readers check
// expiry themselves, so a late sweep costs space, never correctness.
type stickySweeper struct {
	wake chan struct{} // poked when entries are added
	stop chan struct{}
	done chan struct{}
}

// startStickySweeper starts the sweeper; stopStickySweeper ends it.
func (n *Node) startStickySweeper() {
	n.sticky = &stickySweeper{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	// The clock is read here, once: tests swap n.now after New, and the
	// sweeper's own goroutine must not read the field while they do.
	go n.runStickySweeper(n.Now)
}

// poke tells the sweeper that entries were added (their end may be sooner
// than its next wake-up).
func (s *stickySweeper) poke() {
	if s == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (n *Node) stopStickySweeper() {
	if n.sticky == nil {
		return
	}
	close(n.sticky.stop)
	<-n.sticky.done
}

func (n *Node) runStickySweeper(now func() time.Time) {
	s := n.sticky
	defer close(s.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
		wait := stickySweepMaxWait
		swept, next, err := n.sweepSticky(now().UnixMilli(), stickySweepBatch)
		switch {
		case err != nil:
			n.Logger().Warn("sticky sweep", "err", err)
		case swept == stickySweepBatch:
			wait = 0 // more may be due: carry on at once, a batch at a time
		case next > 0:
			wait = min(wait, time.Duration(next-now().UnixMilli()+1)*time.Millisecond)
		}
		timer.Reset(max(wait, 0))
	}
}

// sweepSticky deletes up to limit expired index entries (end <= nowMS) in
// one transaction. It returns how many it deleted and the end of the next
// entry still due (0 when none).
func (n *Node) sweepSticky(nowMS int64, limit int) (swept int, next int64, err error) {
	err = n.DB.Update(func(tx *kv.Txn) error {
		_, err := tx.DeleteEach(kv.Scan{Prefix: stickyExpiryPrefix(), KeysOnly: true}, func(k, _ []byte, del func([]byte)) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil || len(parts) < 4 {
				return false, fmt.Errorf("sticky expiry key: %v", err)
			}
			end, _ := parts[0].(uint64)
			if int64(end) > nowMS || swept == limit {
				next = int64(end)
				return false, nil
			}
			kind, _ := parts[1].(string)
			owner, _ := parts[2].(string)
			pos, _ := parts[3].(uint64)
			switch {
			case kind == stickyKindUser:
				del(stickyUserKey(owner, pos))
			case kind == stickyKindSoft && len(parts) == 5:
				sender, _ := parts[3].(string)
				eventID, _ := parts[4].(string)
				del(stickySoftKey(owner, sender, eventID))
			default:
				del(stickyKey(owner, pos))
			}
			del(k)
			swept++
			return true, nil
		})
		return err
	})
	return swept, next, err
}
