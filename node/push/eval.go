package push

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Push rule evaluation: a user's ruleset (the defaults with their changes,
// and their own rules) is compiled once (compileRules) and cached
// (rulescache.go); evaluating an event walks the enabled rules in priority
// order and stops at the first whose conditions all hold. Conditions are
// evaluated cheapest first within a rule (event fields before the member
// count, which may load member events), which does not change the result:
// a rule's conditions are a conjunction.

// Verdict is what the first matching rule's actions say about an event.
type Verdict struct {
	// Notify: the actions include "notify".
	Notify bool
	// Highlight: a highlight tweak that is absent-valued or true.
	Highlight bool
	// Sound is the sound tweak's value ("" for none).
	Sound string
	// RuleID and Actions are the matching rule's (nil for no match).
	RuleID  string
	Actions []json.RawMessage
}

type condKind uint8

const (
	condUnknown condKind = iota // never holds (the spec: unknown kinds do not match)
	condEventMatch
	condPropertyIs
	condPropertyContains
	condDisplayName
	condMemberCount
	condPermission
)

// compiledCond is a condition ready to evaluate.
type compiledCond struct {
	kind    condKind
	path    []string
	body    bool           // event_match on content.body: matched at word boundaries
	pattern string         // event_match without glob characters
	re      *regexp.Regexp // event_match with them
	value   any            // event_property_*: string, bool, json.Number or nil (JSON null)
	op      string         // room_member_count: ==, <, >, <=, >=
	n       int
	key     string // sender_notification_permission
}

// compiledRule is an enabled rule, compiled.
type compiledRule struct {
	conds []compiledCond
	// legacy is set for the rules the spec skips for events with
	// m.mentions (intentional mentions, spec v1.7).
	legacy  bool
	verdict Verdict
}

// compiledRules is a user's enabled rules in evaluation order.
type compiledRules struct {
	rules []compiledRule
}

// legacyMentionRules are skipped for events that have content.m.mentions.
func legacyMentionRule(id string) bool {
	return id == ".m.rule.contains_display_name" || id == ".m.rule.contains_user_name" || id == ".m.rule.roomnotif"
}

// compileRules compiles the enabled rules of rs.
func compileRules(rs *Ruleset) *compiledRules {
	out := &compiledRules{}
	for _, kind := range ruleKinds() {
		for _, r := range *rs.Kind(kind) {
			if !r.Enabled {
				continue
			}
			cr := compiledRule{legacy: legacyMentionRule(r.RuleID), verdict: verdictOf(r)}
			var conds []Condition
			switch kind {
			case KindContent:
				if r.Pattern == nil {
					continue
				}
				conds = []Condition{eventMatch("content.body", *r.Pattern)}
			case KindRoom:
				conds = []Condition{eventMatch("room_id", r.RuleID)}
			case KindSender:
				conds = []Condition{eventMatch("sender", r.RuleID)}
			default:
				conds = r.Conditions
			}
			for _, c := range conds {
				cr.conds = append(cr.conds, compileCond(c))
			}
			// Cheapest first: the member count (which may load events) and
			// the power levels last.
			sortConds(cr.conds)
			out.rules = append(out.rules, cr)
		}
	}
	return out
}

func sortConds(cs []compiledCond) {
	cost := func(c compiledCond) int {
		switch c.kind {
		case condMemberCount:
			return 2
		case condPermission, condDisplayName:
			return 1
		}
		return 0
	}
	// Insertion sort, stable: rules have a handful of conditions.
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cost(cs[j]) < cost(cs[j-1]); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// verdictOf reads a rule's actions. Unknown actions are ignored here (the
// API refuses them on the way in; "dont_notify" and "coalesce" are legacy
// actions that mean nothing).
func verdictOf(r Rule) Verdict {
	v := Verdict{RuleID: r.RuleID, Actions: r.Actions}
	for _, a := range r.Actions {
		var s string
		if json.Unmarshal(a, &s) == nil {
			v.Notify = v.Notify || s == "notify"
			continue
		}
		var t struct {
			SetTweak string          `json:"set_tweak"`
			Value    json.RawMessage `json:"value"`
		}
		if json.Unmarshal(a, &t) != nil {
			continue
		}
		switch t.SetTweak {
		case "highlight":
			v.Highlight = len(t.Value) == 0 || string(t.Value) == "true"
		case "sound":
			v.Sound, _ = jsonString(t.Value)
		}
	}
	return v
}

func compileCond(c Condition) compiledCond {
	switch c.Kind {
	case "event_match":
		if c.Pattern == nil || c.Key == "" {
			return compiledCond{}
		}
		cc := compiledCond{kind: condEventMatch, path: splitPath(c.Key), body: c.Key == "content.body"}
		if !strings.ContainsAny(*c.Pattern, "*?") {
			cc.pattern = *c.Pattern
			return cc
		}
		glob := regexp.QuoteMeta(*c.Pattern)
		glob = strings.NewReplacer(`\*`, `.*?`, `\?`, `.`).Replace(glob)
		expr := `(?is)^` + glob + `$`
		if cc.body {
			expr = `(?is)(?:^|\W|\b)` + glob + `(?:\W|\b|$)`
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return compiledCond{}
		}
		cc.re = re
		return cc
	case "event_property_is", "event_property_contains":
		if c.Key == "" || len(c.Value) == 0 {
			return compiledCond{}
		}
		v, ok := scalar(c.Value)
		if !ok {
			return compiledCond{}
		}
		kind := condPropertyIs
		if c.Kind == "event_property_contains" {
			kind = condPropertyContains
		}
		return compiledCond{kind: kind, path: splitPath(c.Key), value: v}
	case "contains_display_name":
		return compiledCond{kind: condDisplayName}
	case "room_member_count":
		op, num := splitIs(c.Is)
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 {
			return compiledCond{}
		}
		return compiledCond{kind: condMemberCount, op: op, n: n}
	case "sender_notification_permission":
		if c.Key == "" {
			return compiledCond{}
		}
		return compiledCond{kind: condPermission, key: c.Key}
	}
	return compiledCond{}
}

// splitIs splits a room_member_count "is" into its operator (== when
// absent) and number.
func splitIs(is string) (op, num string) {
	for _, p := range []string{"==", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(is, p) {
			return p, is[len(p):]
		}
	}
	return "==", is
}

// splitPath splits a dotted key, where "\." is a literal dot and "\\" a
// backslash.
func splitPath(key string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch {
		case key[i] == '\\' && i+1 < len(key) && (key[i+1] == '.' || key[i+1] == '\\'):
			cur.WriteByte(key[i+1])
			i++
		case key[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(key[i])
		}
	}
	return append(parts, cur.String())
}

// scalar decodes a non-compound JSON value: a string, a boolean, an
// integer (as a json.Number) or null (nil).
func scalar(raw json.RawMessage) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	switch v.(type) {
	case string, bool, json.Number, nil:
		return v, true
	}
	return nil, false
}

// eval returns the verdict of the first rule that matches ev for userID
// (the zero Verdict when none does).
func (cr *compiledRules) eval(ev *pushEvent, userID string, pc pushContext) Verdict {
	for i := range cr.rules {
		r := &cr.rules[i]
		if r.legacy && ev.hasMentions {
			continue
		}
		if r.matches(ev, userID, pc) {
			return r.verdict
		}
	}
	return Verdict{}
}

func (r *compiledRule) matches(ev *pushEvent, userID string, pc pushContext) bool {
	for i := range r.conds {
		if !r.conds[i].holds(ev, userID, pc) {
			return false
		}
	}
	return true
}

func (c *compiledCond) holds(ev *pushEvent, userID string, pc pushContext) bool {
	switch c.kind {
	case condEventMatch:
		v, ok := ev.lookup(c.path)
		s, isString := v.(string)
		if !ok || !isString {
			return false
		}
		if c.re != nil {
			return c.re.MatchString(s)
		}
		if c.body {
			return containsWord(s, c.pattern)
		}
		return strings.EqualFold(s, c.pattern)
	case condPropertyIs:
		v, ok := ev.lookup(c.path)
		return ok && sameScalar(v, c.value)
	case condPropertyContains:
		v, ok := ev.lookup(c.path)
		list, isList := v.([]any)
		if !ok || !isList {
			return false
		}
		for _, e := range list {
			if sameScalar(e, c.value) {
				return true
			}
		}
		return false
	case condDisplayName:
		return ev.hasBody && pc.displayName != nil && containsWord(ev.body, pc.displayName(userID))
	case condMemberCount:
		if pc.memberCount == nil {
			return false
		}
		// Counting up to n+1 members decides every operator.
		n := pc.memberCount(c.n + 1)
		switch c.op {
		case "<":
			return n < c.n
		case ">":
			return n > c.n
		case "<=":
			return n <= c.n
		case ">=":
			return n >= c.n
		}
		return n == c.n
	case condPermission:
		return pc.senderMayNotify != nil && pc.senderMayNotify(c.key)
	}
	return false
}

// sameScalar compares an event's value with a condition's: same type and
// value (numbers by their canonical text).
func sameScalar(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && x.String() == y.String()
	}
	return false
}
