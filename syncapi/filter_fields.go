package syncapi

import "strings"

// ProjectFields keeps only the parts of an event (decoded into a map) that
// event_fields names, for filters that set it. Paths are dot-separated, with
// "\." for a literal dot and "\\" for a backslash (the spec's dot-separated
// property paths). A path that does not exist is ignored. No fields means
// the event is returned unchanged: the spec says absent means all, and
// Synapse treats an empty list the same way. The result may share nested
// objects with ev.
func ProjectFields(ev map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return ev
	}
	out := map[string]any{}
	for _, f := range fields {
		copyPath(out, ev, splitPath(f))
	}
	return out
}

// copyPath copies the value at path in src into dst, creating the objects
// on the way. The copy shares sub-objects with src.
func copyPath(dst, src map[string]any, path []string) {
	// Find the value first, so a path that does not exist leaves no empty
	// objects behind.
	var v any = src
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if v, ok = m[k]; !ok {
			return
		}
	}
	for _, k := range path[:len(path)-1] {
		sub, ok := dst[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			dst[k] = sub
		}
		dst = sub
	}
	dst[path[len(path)-1]] = v
}

// splitPath splits a dot-separated path, honouring "\." and "\\". A lone
// backslash before any other character is kept as is.
func splitPath(p string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p) && (p[i+1] == '.' || p[i+1] == '\\'):
			cur.WriteByte(p[i+1])
			i++
		case c == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}
