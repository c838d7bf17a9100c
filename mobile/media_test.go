package mobile

import "testing"

// TestConfigMediaPrefetch: media_prefetch is on by default, false turns it
// off, and SetMediaPrefetch changes it for the next start.
func TestConfigMediaPrefetch(t *testing.T) {
	for _, c := range []struct {
		json string
		want bool
	}{{"", true}, {`{"media_prefetch": true}`, true}, {`{"media_prefetch": false}`, false}} {
		n, err := NewNode(t.TempDir(), c.json)
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if got := n.cfg.mediaPrefetch(); got != c.want {
			t.Errorf("%q: prefetch %v, want %v", c.json, got, c.want)
		}
		if err := n.SetMediaPrefetch(!c.want); err != nil || n.cfg.mediaPrefetch() == c.want {
			t.Errorf("%q: SetMediaPrefetch(%v): %v, prefetch now %v", c.json, !c.want, err, n.cfg.mediaPrefetch())
		}
	}
	if _, err := NewNode(t.TempDir(), `{"media_prefetch": "yes"}`); err == nil {
		t.Error(`NewNode accepted "media_prefetch": "yes"`)
	}
}
