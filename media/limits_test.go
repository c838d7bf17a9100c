package media

import (
	"strings"
	"testing"
)

func TestLimitsForProfile(t *testing.T) {
	for _, c := range []struct {
		profile   string
		maxPixels int64
		workers   int
	}{
		{"phone", 16_000_000, 1},
		{"pi", 25_000_000, 2},
		{"", 25_000_000, 2}, // the default profile
		{"server", 64_000_000, 4},
	} {
		l, err := LimitsForProfile(c.profile)
		if err != nil {
			t.Fatal(err)
		}
		if l.MaxThumbnailPixels != c.maxPixels || l.ThumbnailWorkers != c.workers || l.MaxUploadBytes <= 0 || l.RemoteCacheBytes <= 0 {
			t.Errorf("%q: %+v", c.profile, l)
		}
	}
	if _, err := LimitsForProfile("toaster"); err == nil {
		t.Error("unknown profile accepted")
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"abcXYZ019_-":                      true,
		strings.Repeat("a", MaxIDLength):   true,
		"":                                 false,
		strings.Repeat("a", MaxIDLength+1): false,
		"..":                               false,
		"a/b":                              false,
		`a\b`:                              false,
		"a%2Fb":                            false,
		"é":                                false,
		"a b":                              false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%q) = %v", id, got)
		}
	}
}
