package urlpreview

import (
	"container/list"
	"sync"
	"time"
)

// cache is a bounded least-recently-used cache of previews by URL, each
// kept for at most ttl. Entries are small (two bounded strings), so a
// bound on their number bounds its memory.
type cache struct {
	mu    sync.Mutex
	limit int
	ttl   time.Duration
	order *list.List // of *cacheEntry, most recently used first
	m     map[string]*list.Element
}

type cacheEntry struct {
	key     string
	pv      Preview
	expires time.Time
}

func newCache(limit int, ttl time.Duration) *cache {
	return &cache{limit: limit, ttl: ttl, order: list.New(), m: map[string]*list.Element{}}
}

// get returns key's preview if it is cached and not expired at now.
func (c *cache) get(key string, now time.Time) (Preview, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.m[key]
	if el == nil {
		return Preview{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.m, key)
		return Preview{}, false
	}
	c.order.MoveToFront(el)
	return e.pv, true
}

// put caches key's preview as of now, evicting the least recently used
// entry when full.
func (c *cache) put(key string, pv Preview, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el := c.m[key]; el != nil {
		e := el.Value.(*cacheEntry)
		e.pv, e.expires = pv, now.Add(c.ttl)
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).key)
	}
	c.m[key] = c.order.PushFront(&cacheEntry{key: key, pv: pv, expires: now.Add(c.ttl)})
}

// len is how many entries are kept (tests).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
