package core

import (
	"strings"
	"testing"
)

// TestSizedLRU: a cache weighed by size keeps its values' total under its
// byte bound as well as its count under its count bound, dropping the
// least recently used first, and keeps its books right on replace and
// remove.
func TestSizedLRU(t *testing.T) {
	c := newSizedLRU[string](10, 100, func(s string) int { return len(s) })
	c.Put("a", strings.Repeat("a", 40))
	c.Put("b", strings.Repeat("b", 40))
	c.Get("a") // b is now the least recently used
	c.Put("c", strings.Repeat("c", 40))
	if _, ok := c.Get("b"); ok {
		t.Error("b kept over the byte bound")
	}
	if _, ok := c.Get("a"); !ok {
		t.Error("a, used lately, dropped")
	}
	c.Put("a", "x") // replaced: 1 + 40 bytes
	c.remove("c")
	if c.bytes != 1 {
		t.Errorf("%d bytes accounted, want 1", c.bytes)
	}
	c.Put("huge", strings.Repeat("h", 200)) // over the bound alone: not kept
	if _, ok := c.Get("huge"); ok || c.bytes != 1 {
		t.Errorf("a value over the bound was kept (%d bytes)", c.bytes)
	}
	if _, ok := c.Get("a"); !ok {
		t.Error("a dropped for a value that was not kept")
	}
}
