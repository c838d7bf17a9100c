package core

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// userBumpCacheUsers bounds how many users' room lists are kept in memory
// (an embedded node has a handful of users); their size, about a hundred
// bytes per room, is bounded too (newUserBumpCache).
const userBumpCacheUsers = 64

// userBumpCache keeps recently read room lists (RoomsByBump) in memory, so a
// sliding sync request does not scan a user's whole index each time. The
// room commits that change an entry apply the change here after they
// commit. Lists are sorted and never changed once stored: a change stores
// a new slice, so callers may keep the one they got.
type userBumpCache struct {
	// mu is held while a list is filled from the database and while
	// changes are applied, so a fill that read before a commit cannot
	// store its list after that commit's change was applied.
	mu    sync.Mutex
	lists *lru[string, []RoomBump]
}

// newUserBumpCache makes a cache of at most maxBytes of lists (as
// roomBumpsSize estimates them).
func newUserBumpCache(maxBytes int) *userBumpCache {
	return &userBumpCache{lists: newSizedLRU[string](userBumpCacheUsers, maxBytes, roomBumpsSize)}
}

// clear drops every list.
func (c *userBumpCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lists.clear()
}

// UserBumpChange is one entry a commit wrote (or a forget deleted).
type UserBumpChange struct {
	UserID  string
	Entry   RoomBump
	deleted bool
}

// compareRoomBumps is the list order: newest bump first, then room ID.
func compareRoomBumps(x, y RoomBump) int {
	if x.Bump != y.Bump {
		return cmp.Compare(y.Bump, x.Bump)
	}
	return strings.Compare(x.RoomID, y.RoomID)
}

// Apply brings the cached lists up to date with committed changes.
func (c *userBumpCache) Apply(changes []UserBumpChange) {
	if len(changes) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		list, ok := c.lists.Get(ch.UserID)
		if !ok {
			continue
		}
		out := make([]RoomBump, 0, len(list)+1)
		for _, e := range list {
			if e.RoomID != ch.Entry.RoomID {
				out = append(out, e)
			}
		}
		if !ch.deleted {
			i, _ := slices.BinarySearchFunc(out, ch.Entry, compareRoomBumps)
			out = slices.Insert(out, i, ch.Entry)
		}
		c.lists.Put(ch.UserID, out)
	}
}

// get returns a user's cached list, or fills it with load.
func (c *userBumpCache) get(userID string, load func() ([]RoomBump, error)) ([]RoomBump, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if list, ok := c.lists.Get(userID); ok {
		return list, nil
	}
	list, err := load()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(list, compareRoomBumps)
	c.lists.Put(userID, list)
	return list, nil
}
