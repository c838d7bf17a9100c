package urlpreview

import (
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Bounds on what a preview carries, in runes: a page may say anything, and
// every client that shows it and the cache keep it.
const (
	maxTitleRunes       = 300
	maxDescriptionRunes = 1000
)

// maxTokenBytes bounds one token the tokenizer buffers (a huge attribute
// or comment); past it parsing stops with what was found.
const maxTokenBytes = 256 << 10

// parseHTML reads a page from r (already limited in size) and returns its
// OpenGraph title and description, falling back to <title> and the
// description meta tag. Only the tokenizer is used, not the tree builder:
// the tags sought are flat, and no tree is held in memory. Text is taken
// as UTF-8, invalid bytes replaced (pages in other charsets show mangled
// accents rather than being refused).
func parseHTML(r io.Reader) (Preview, error) {
	z := html.NewTokenizer(r)
	z.SetMaxBuf(maxTokenBytes)
	var og, fallback Preview
	inBody := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			err := z.Err()
			if errors.Is(err, io.EOF) || errors.Is(err, html.ErrBufferExceeded) {
				return finish(og, fallback), nil
			}
			return Preview{}, err
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch atom.Lookup(name) {
			case atom.Body:
				inBody = true
			case atom.Title:
				// The document's title is in the head; a <title> in the
				// body belongs to an inline SVG.
				if !inBody && fallback.Title == "" && z.Next() == html.TextToken {
					fallback.Title = clean(string(z.Text()), maxTitleRunes)
				}
			case atom.Meta:
				if hasAttr {
					meta(z, &og, &fallback)
				}
			}
		}
	}
}

// meta reads a <meta> tag's attributes into og (og: properties) or
// fallback (the description and twitter: tags). The first of each wins.
func meta(z *html.Tokenizer, og, fallback *Preview) {
	var key, content string
	for {
		k, v, more := z.TagAttr()
		switch string(k) {
		case "property", "name":
			if key == "" {
				key = strings.ToLower(strings.TrimSpace(string(v)))
			}
		case "content":
			content = string(v)
		}
		if !more {
			break
		}
	}
	set := func(dst *string, limit int) {
		if *dst == "" {
			*dst = clean(content, limit)
		}
	}
	switch key {
	case "og:title":
		set(&og.Title, maxTitleRunes)
	case "og:description":
		set(&og.Description, maxDescriptionRunes)
	case "twitter:title":
		set(&fallback.Title, maxTitleRunes)
	case "description", "twitter:description":
		set(&fallback.Description, maxDescriptionRunes)
	}
}

// finish takes each field from og, else from fallback.
func finish(og, fallback Preview) Preview {
	if og.Title == "" {
		og.Title = fallback.Title
	}
	if og.Description == "" {
		og.Description = fallback.Description
	}
	return og
}

// clean makes s valid UTF-8 with its whitespace collapsed, cut to at most
// limit runes.
func clean(s string, limit int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i]
		}
		n++
	}
	return s
}
