package urlpreview

import (
	"strings"
	"testing"
	"time"
)

func TestParseHTML(t *testing.T) {
	cases := []struct {
		name string
		page string
		want Preview
	}{
		{"opengraph", `<html><head><title>Plain</title>
			<meta property="og:title" content="OG &amp; title">
			<meta property="og:description" content="  spaced
			  out  ">
			<meta name="description" content="meta description"></head><body></body></html>`,
			Preview{Title: "OG & title", Description: "spaced out"}},
		{"fallbacks", `<!doctype html><title>The &lt;title&gt;</title><meta name="Description" content="From meta">`,
			Preview{Title: "The <title>", Description: "From meta"}},
		{"uppercase tags and keys", `<HTML><HEAD><META PROPERTY="OG:TITLE" CONTENT="Upper"></HEAD></HTML>`,
			Preview{Title: "Upper"}},
		{"first wins", `<meta property="og:title" content="one"><meta property="og:title" content="two">`,
			Preview{Title: "one"}},
		{"svg title in body ignored", `<html><body><svg><title>icon</title></svg></body></html>`,
			Preview{}},
		{"twitter fallback", `<meta name="twitter:title" content="tw"><meta name="twitter:description" content="twd">`,
			Preview{Title: "tw", Description: "twd"}},
		{"invalid utf-8", "<title>a\xffb</title>", Preview{Title: "a\uFFFDb"}},
		{"title cut", "<title>" + strings.Repeat("é", 2*maxTitleRunes) + "</title>",
			Preview{Title: strings.Repeat("é", maxTitleRunes)}},
		{"empty", ``, Preview{}},
		{"not closed", `<title>unterminated`, Preview{Title: "unterminated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseHTML(strings.NewReader(c.page))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestCacheLRUAndTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(2, 10)
	c.put("a", Preview{Title: "a"}, now)
	c.put("b", Preview{Title: "b"}, now)
	if _, ok := c.get("a", now); !ok { // a is now the most recently used
		t.Fatal("a missing")
	}
	c.put("c", Preview{Title: "c"}, now) // evicts b
	if _, ok := c.get("b", now); ok {
		t.Error("b kept past the limit")
	}
	if _, ok := c.get("a", now); !ok {
		t.Error("a, recently used, evicted")
	}
	if c.len() != 2 {
		t.Errorf("%d entries, want 2", c.len())
	}
	if _, ok := c.get("c", now.Add(10)); ok {
		t.Error("c served at its expiry")
	}
	if c.len() != 1 {
		t.Errorf("%d entries after expiry, want 1", c.len())
	}
}
