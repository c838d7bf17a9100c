package core

import (
	"container/list"
	"sync"
)

// lru is a small, size-bounded, concurrency-safe cache. Caches on a phone must
// never grow without bound; this is all the node needs, so no dependency.
type lru[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[K]*list.Element
	// size, when set, weighs each value; the cache then also holds at most
	// maxBytes of them (a count alone lets large values take much more).
	size     func(V) int
	maxBytes int
	bytes    int
}

type lruEntry[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, ll: list.New(), items: make(map[K]*list.Element, max)}
}

// newSizedLRU is newLRU that also keeps the values' total size (as size
// weighs them) at most maxBytes.
func newSizedLRU[K comparable, V any](max, maxBytes int, size func(V) int) *lru[K, V] {
	c := newLRU[K, V](max)
	c.size, c.maxBytes = size, maxBytes
	return c
}

func (c *lru[K, V]) weigh(v V) int {
	if c.size == nil {
		return 0
	}
	return c.size(v)
}

func (c *lru[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (c *lru[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size != nil && c.size(v) > c.maxBytes {
		// Over the bound alone: not kept, and nothing else dropped for it.
		if e, ok := c.items[k]; ok {
			c.ll.Remove(e)
			delete(c.items, k)
			c.bytes -= c.weigh(e.Value.(*lruEntry[K, V]).val)
		}
		return
	}
	if e, ok := c.items[k]; ok {
		ent := e.Value.(*lruEntry[K, V])
		c.bytes += c.weigh(v) - c.weigh(ent.val)
		ent.val = v
		c.ll.MoveToFront(e)
	} else {
		c.items[k] = c.ll.PushFront(&lruEntry[K, V]{k, v})
		c.bytes += c.weigh(v)
	}
	for c.ll.Len() > c.max || (c.size != nil && c.bytes > c.maxBytes) {
		last := c.ll.Back()
		ent := last.Value.(*lruEntry[K, V])
		c.ll.Remove(last)
		delete(c.items, ent.key)
		c.bytes -= c.weigh(ent.val)
	}
}

func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.Remove(e)
		delete(c.items, k)
		c.bytes -= c.weigh(e.Value.(*lruEntry[K, V]).val)
	}
}

// clear drops every entry.
func (c *lru[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ll.Init()
	// A new map: clearing the old one would keep its buckets, sized for
	// the most entries it ever held.
	c.items = make(map[K]*list.Element)
	c.bytes = 0
}

// held is the entries' count and, for a sized cache, their total weight.
func (c *lru[K, V]) held() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}
