package syncapi

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Bounds on the connection state kept in memory. A device may hold a few
// connections (conn_id values); the oldest unused one goes first, and so
// does the least recently used connection of the node once it holds
// ssMaxConns. Each connection keeps the state of its last ssKeepPositions
// responses: the client may retry with the previous pos (its response got
// lost, or it changed its request) but never use an older one.
const (
	ssMaxConnsPerDevice = 8
	ssMaxConns          = 1024
	ssKeepPositions     = 4
)

// connKey names a connection: MSC4186 scopes conn_id to user and device.
type connKey struct{ user, device, connID string }

// sentRoom is what a connection has had of a room.
type sentRoom struct {
	// pos is the room-stream position the room was sent up to.
	pos uint64
	// limit is the largest timeline the client has of the room's latest
	// events (0 when unknown), for expanded timelines.
	limit int
	// stateKey is the combined required_state the room was last sent with.
	stateKey string
	// membership, notify and highlight as last sent: a change is news.
	membership        string
	notify, highlight int
}

// connState is a connection's state after one response: the pos that
// response handed out names it. It is never changed once stored; the next
// response gets a copy.
type connState struct {
	seq uint64
	// token is where the streams the extensions follow stood.
	token StreamToken
	rooms map[string]sentRoom
	subs  map[string]ssRoomConfig
	// counts are the lists' counts as last sent.
	counts map[string]int
}

// clone copies s for the next response.
func (s *connState) clone() *connState {
	c := &connState{token: s.token, rooms: make(map[string]sentRoom, len(s.rooms)),
		subs: make(map[string]ssRoomConfig, len(s.subs)), counts: map[string]int{}}
	for k, v := range s.rooms {
		c.rooms[k] = v
	}
	for k, v := range s.subs {
		c.subs[k] = v
	}
	return c
}

// conn is one connection and the states of its last responses. States
// are immutable, so requests only lock to find or add one: a long-poll
// holds nothing, and a retry (the client gave up on a request it will never
// read) does not wait for its predecessor.
type conn struct {
	key connKey
	// id tells this connection from an earlier one with the same conn_id.
	id   uint64
	mu   sync.Mutex
	seq  uint64       // the last sequence number given out
	held []*connState // oldest first, at most ssKeepPositions
	elem *list.Element
}

// connStore holds the connections, bounded, in memory only: after a
// restart every pos is unknown and clients start over (M_UNKNOWN_POS).
type connStore struct {
	mu sync.Mutex
	// epoch is random per process, so a pos from before a restart never
	// names a connection of this one.
	epoch  string
	nextID uint64
	conns  map[connKey]*conn
	lru    *list.List // of *conn, most recently used first
}

func newConnStore() *connStore {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &connStore{epoch: hex.EncodeToString(b[:]), conns: map[connKey]*conn{}, lru: list.New()}
}

// pos formats the token naming a connection's state.
func (cs *connStore) pos(c *conn, s *connState) string {
	return fmt.Sprintf("%s.%d.%d", cs.epoch, c.id, s.seq)
}

// open starts a new connection for key, replacing any with that key, and
// evicts the least recently used connections over the bounds.
func (cs *connStore) open(key connKey) *conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if old := cs.conns[key]; old != nil {
		cs.removeLocked(old)
	}
	cs.nextID++
	c := &conn{key: key, id: cs.nextID}
	c.elem = cs.lru.PushFront(c)
	cs.conns[key] = c
	perDevice := 0
	for e := cs.lru.Front(); e != nil; {
		next := e.Next()
		o := e.Value.(*conn)
		if o.key.user == key.user && o.key.device == key.device {
			perDevice++
			if perDevice > ssMaxConnsPerDevice {
				cs.removeLocked(o)
			}
		}
		e = next
	}
	for cs.lru.Len() > ssMaxConns {
		cs.removeLocked(cs.lru.Back().Value.(*conn))
	}
	return c
}

func (cs *connStore) removeLocked(c *conn) {
	if cs.conns[c.key] == c {
		delete(cs.conns, c.key)
	}
	if c.elem != nil {
		cs.lru.Remove(c.elem)
		c.elem = nil
	}
}

// lookup finds the connection and state a pos names for key; ok is false
// for a pos this process did not issue to this user and device, or one
// whose state is gone.
func (cs *connStore) lookup(key connKey, pos string) (*conn, bool) {
	parts := strings.Split(pos, ".")
	if len(parts) != 3 || parts[0] != cs.epoch {
		return nil, false
	}
	id, err1 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil {
		return nil, false
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.conns[key]
	if c == nil || c.id != id {
		return nil, false
	}
	cs.lru.MoveToFront(c.elem)
	return c, true
}

// state returns the connection's state for pos's sequence number and
// forgets older ones: the client has processed that response, so it will
// not use an earlier pos again.
func (c *conn) state(pos string) (*connState, bool) {
	i := strings.LastIndexByte(pos, '.')
	seq, err := strconv.ParseUint(pos[i+1:], 10, 64)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for j, s := range c.held {
		if s.seq == seq {
			c.held = c.held[j:]
			return s, true
		}
	}
	return nil, false
}

// store keeps s as the newest state and gives it its sequence number; the
// oldest states go beyond ssKeepPositions. Several states may stem from one
// pos (retries); the client goes on from whichever answer it read.
func (c *conn) store(s *connState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	s.seq = c.seq
	c.held = append(c.held, s)
	if len(c.held) > ssKeepPositions {
		c.held = slices.Delete(c.held, 0, len(c.held)-ssKeepPositions)
	}
}
