package push

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// A user's push rules are their m.push_rules account data, {"global":
// Ruleset}: clients read them there (in /sync, on every change) as the spec
// says. Account data belongs to node, so it is reached through Host; every
// edit runs in the account-data stream's transaction, which also bumps the
// user's rules version (tRulesVersion). The room commit reads that version
// (one small key) and compiles the rules only when it changed (rulesCache).
// A user who never changed a rule has no account data and version 0: the
// defaults.

// ErrRuleInvalid is a push rule the API refuses for what it says (an
// unknown action, a before/after rule that is not there): 400 M_UNKNOWN,
// as the spec's example has it.
var ErrRuleInvalid = errors.New("invalid push rule")

// Limits on a user's own push rules: a ruleset is account data, sent whole
// to the user's clients on every change and read by the room commit when it
// changes. 100 rules of at most 2 KiB each stay under the account data cap.
const (
	MaxUserRules    = 100
	MaxRuleBytes    = 2 << 10
	maxRuleIDBytes  = 255
	maxConditions   = 16
	maxActions      = 16
	rulesCacheUsers = 1024
)

// Host is what the push concern needs of the node around it: account data
// lives in node, and a user's push rules are account data.
type Host interface {
	// UpdatePushRules replaces userID's m.push_rules account data with what
	// fn makes of the current content (nil for none), in the account-data
	// stream's transaction, which fn may write to as well. Returning old
	// unchanged writes nothing.
	UpdatePushRules(ctx context.Context, userID string, fn func(tx *kv.Txn, old json.RawMessage) (json.RawMessage, error)) error
	// PushRulesContent reads userID's m.push_rules content in tx (nil for
	// none).
	PushRulesContent(tx *kv.Txn, userID string) (json.RawMessage, error)
}

// SetHost gives the concern its host; node calls it once, in New.
func (n *Push) SetHost(h Host) { n.host = h }

const tRulesVersion = "pushrulesver" // user ID -> uint64 (big-endian)

func rulesVersionKey(userID string) []byte { return kv.Key(tRulesVersion, userID) }

func loadRulesVersion(tx *kv.Txn, userID string) (uint64, error) {
	b, err := tx.Get(rulesVersionKey(userID))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("push rules version of %s: %d bytes", userID, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// rulesCache holds users' compiled rules by version.
type rulesCache struct {
	mu sync.Mutex
	m  map[string]cachedRules
}

type cachedRules struct {
	ver   uint64
	rules *compiledRules
}

// userRules returns userID's compiled rules as of tx.
func (n *Push) userRules(tx *kv.Txn, userID string) (*compiledRules, error) {
	ver, err := loadRulesVersion(tx, userID)
	if err != nil {
		return nil, err
	}
	c := &n.rules
	c.mu.Lock()
	cached, ok := c.m[userID]
	c.mu.Unlock()
	if ok && cached.ver == ver {
		return cached.rules, nil
	}
	rs := defaultRuleset(userID)
	if ver != 0 && n.host != nil {
		raw, err := n.host.PushRulesContent(tx, userID)
		if err != nil {
			return nil, err
		}
		rs = decodeStored(userID, raw)
	}
	compiled := compileRules(&rs)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= rulesCacheUsers {
		c.m = map[string]cachedRules{} // rarely full: a node has few users
	}
	c.m[userID] = cachedRules{ver: ver, rules: compiled}
	c.mu.Unlock()
	return compiled, nil
}

// decodeStored reads stored m.push_rules content over the defaults. Content
// that cannot be read (it is only ever written here) gives the defaults.
func decodeStored(userID string, raw json.RawMessage) Ruleset {
	if raw == nil {
		return defaultRuleset(userID)
	}
	var stored struct {
		Global *Ruleset `json:"global"`
	}
	if json.Unmarshal(raw, &stored) != nil {
		return defaultRuleset(userID)
	}
	return rebase(userID, stored.Global)
}

// PushRules returns userID's ruleset: the defaults with the user's changes,
// and their own rules.
func (n *Push) PushRules(ctx context.Context, userID string) (Ruleset, error) {
	if err := ctx.Err(); err != nil {
		return Ruleset{}, err
	}
	var rs Ruleset
	err := n.DB.View(func(tx *kv.Txn) error {
		var raw json.RawMessage
		if n.host != nil {
			var err error
			if raw, err = n.host.PushRulesContent(tx, userID); err != nil {
				return err
			}
		}
		rs = decodeStored(userID, raw)
		return nil
	})
	return rs, err
}

// DefaultPushRulesContent is the m.push_rules content of a user who never
// changed a rule: node serves it as their account data (an initial /sync
// carries m.push_rules, as the spec says).
func DefaultPushRulesContent(userID string) json.RawMessage {
	b, _ := json.Marshal(map[string]Ruleset{"global": defaultRuleset(userID)}) // plain data
	return b
}

// PushRule returns one rule of userID's.
func (n *Push) PushRule(ctx context.Context, userID, kind, ruleID string) (Rule, error) {
	if !ValidKind(kind) {
		return Rule{}, fmt.Errorf("%w: unknown push rule kind %q", core.ErrInvalidParam, kind)
	}
	rs, err := n.PushRules(ctx, userID)
	if err != nil {
		return Rule{}, err
	}
	for _, r := range *rs.Kind(kind) {
		if r.RuleID == ruleID {
			return r, nil
		}
	}
	return Rule{}, fmt.Errorf("push rule %s/%s: %w", kind, ruleID, core.ErrNotFound)
}

// RuleBody is the body of PUT /pushrules/global/{kind}/{ruleId}.
type RuleBody struct {
	Actions    []json.RawMessage `json:"actions"`
	Conditions []Condition       `json:"conditions"`
	Pattern    *string           `json:"pattern"`
}

// SetPushRule creates or replaces one of userID's own rules. before and
// after ("" for none) name another of the user's own rules of the same kind
// that the rule is to come just before or after; without them, a new rule
// becomes the user's most important of its kind and a replaced one keeps its
// place.
func (n *Push) SetPushRule(ctx context.Context, userID, kind, ruleID, before, after string, body RuleBody) error {
	if !ValidKind(kind) {
		return fmt.Errorf("%w: unknown push rule kind %q", core.ErrInvalidParam, kind)
	}
	if err := checkRuleID(ruleID); err != nil {
		return err
	}
	rule, err := checkRuleBody(kind, ruleID, body)
	if err != nil {
		return err
	}
	for _, rel := range []string{before, after} {
		if isDefaultID(rel) {
			return fmt.Errorf("%w: a rule cannot be placed relative to the server-default rule %q", ErrRuleInvalid, rel)
		}
	}
	return n.editRules(ctx, userID, func(rs *Ruleset) error {
		list := rs.Kind(kind)
		own, defaults, split := splitOwn(kind, *list)
		at := -1
		for i, r := range own {
			if r.RuleID == ruleID {
				at = i
			}
		}
		if at < 0 && countOwn(rs) >= MaxUserRules {
			return fmt.Errorf("%w: at most %d push rules", core.ErrTooLarge, MaxUserRules)
		}
		if at >= 0 && before == "" && after == "" {
			own[at] = rule
		} else {
			if at >= 0 {
				own = append(own[:at], own[at+1:]...)
			}
			pos := 0 // the most important of the user's rules
			for _, rel := range []struct {
				id    string
				after bool
			}{{before, false}, {after, true}} {
				if rel.id == "" {
					continue
				}
				i := indexOf(own, rel.id)
				if i < 0 {
					return fmt.Errorf("%w: no push rule %q of kind %s to place it by", ErrRuleInvalid, rel.id, kind)
				}
				if rel.after {
					i++
				}
				// With both, the spec says before wins: it is applied first and
				// only overridden when after is the sole one.
				if before == "" || !rel.after {
					pos = i
				}
			}
			own = append(own[:pos], append([]Rule{rule}, own[pos:]...)...)
		}
		*list = joinOwn(defaults, own, split)
		return nil
	})
}

// DeletePushRule deletes one of userID's own rules.
func (n *Push) DeletePushRule(ctx context.Context, userID, kind, ruleID string) error {
	if !ValidKind(kind) {
		return fmt.Errorf("%w: unknown push rule kind %q", core.ErrInvalidParam, kind)
	}
	if isDefaultID(ruleID) {
		return n.requireRule(ctx, userID, kind, ruleID, fmt.Errorf("%w: server-default push rules cannot be deleted", core.ErrInvalidParam))
	}
	return n.editRules(ctx, userID, func(rs *Ruleset) error {
		list := rs.Kind(kind)
		own, defaults, split := splitOwn(kind, *list)
		i := indexOf(own, ruleID)
		if i < 0 {
			return fmt.Errorf("push rule %s/%s: %w", kind, ruleID, core.ErrNotFound)
		}
		*list = joinOwn(defaults, append(own[:i], own[i+1:]...), split)
		return nil
	})
}

// requireRule returns errIfFound when the rule exists, and not found
// otherwise.
func (n *Push) requireRule(ctx context.Context, userID, kind, ruleID string, errIfFound error) error {
	if _, err := n.PushRule(ctx, userID, kind, ruleID); err != nil {
		return err
	}
	return errIfFound
}

// SetPushRuleEnabled enables or disables one of userID's rules, default
// rules included.
func (n *Push) SetPushRuleEnabled(ctx context.Context, userID, kind, ruleID string, enabled bool) error {
	return n.editRule(ctx, userID, kind, ruleID, func(r *Rule) { r.Enabled = enabled })
}

// SetPushRuleActions replaces the actions of one of userID's rules, default
// rules included.
func (n *Push) SetPushRuleActions(ctx context.Context, userID, kind, ruleID string, actions []json.RawMessage) error {
	if err := checkActions(actions); err != nil {
		return err
	}
	return n.editRule(ctx, userID, kind, ruleID, func(r *Rule) { r.Actions = actions })
}

func (n *Push) editRule(ctx context.Context, userID, kind, ruleID string, fn func(*Rule)) error {
	if !ValidKind(kind) {
		return fmt.Errorf("%w: unknown push rule kind %q", core.ErrInvalidParam, kind)
	}
	return n.editRules(ctx, userID, func(rs *Ruleset) error {
		list := *rs.Kind(kind)
		i := indexOf(list, ruleID)
		if i < 0 {
			return fmt.Errorf("push rule %s/%s: %w", kind, ruleID, core.ErrNotFound)
		}
		fn(&list[i])
		return nil
	})
}

// editRules changes userID's ruleset with fn in the account-data stream's
// transaction and bumps their rules version there.
func (n *Push) editRules(ctx context.Context, userID string, fn func(*Ruleset) error) error {
	if n.host == nil {
		return errors.New("push: no host for push rules")
	}
	return n.host.UpdatePushRules(ctx, userID, func(tx *kv.Txn, old json.RawMessage) (json.RawMessage, error) {
		rs := decodeStored(userID, old)
		if err := fn(&rs); err != nil {
			return nil, err
		}
		b, err := json.Marshal(map[string]Ruleset{"global": rs})
		if err != nil {
			return nil, err
		}
		ver, err := loadRulesVersion(tx, userID)
		if err != nil {
			return nil, err
		}
		if err := tx.Set(rulesVersionKey(userID), binary.BigEndian.AppendUint64(nil, ver+1)); err != nil {
			return nil, err
		}
		return b, nil
	})
}

// splitOwn splits a kind's list into the user's own rules and the
// defaults, and says where the own rules go among the defaults (after
// .m.rule.master for override, first otherwise).
func splitOwn(kind string, list []Rule) (own, defaults []Rule, split int) {
	for _, r := range list {
		if r.Default {
			defaults = append(defaults, r)
		} else {
			own = append(own, r)
		}
	}
	if kind == KindOverride && len(defaults) > 0 && defaults[0].RuleID == masterRuleID {
		split = 1
	}
	return own, defaults, split
}

func joinOwn(defaults, own []Rule, split int) []Rule {
	out := make([]Rule, 0, len(defaults)+len(own))
	out = append(out, defaults[:split]...)
	out = append(out, own...)
	return append(out, defaults[split:]...)
}

func indexOf(list []Rule, id string) int {
	for i, r := range list {
		if r.RuleID == id {
			return i
		}
	}
	return -1
}

func countOwn(rs *Ruleset) int {
	n := 0
	for _, kind := range ruleKinds() {
		for _, r := range *rs.Kind(kind) {
			if !r.Default {
				n++
			}
		}
	}
	return n
}

// checkRuleID applies the spec's rules for a user rule's ID: not starting
// with a dot (reserved for server-default rules), no slash or backslash.
func checkRuleID(id string) error {
	switch {
	case id == "" || len(id) > maxRuleIDBytes:
		return fmt.Errorf("%w: a rule ID must be 1 to %d bytes", core.ErrInvalidParam, maxRuleIDBytes)
	case isDefaultID(id):
		return fmt.Errorf("%w: rule IDs starting with a dot are reserved for server-default rules", core.ErrInvalidParam)
	case strings.ContainsAny(id, `/\`):
		return fmt.Errorf("%w: a rule ID may not hold a slash or a backslash", core.ErrInvalidParam)
	}
	return nil
}

// checkRuleBody validates a PUT body and returns the rule it makes.
func checkRuleBody(kind, ruleID string, body RuleBody) (Rule, error) {
	if body.Actions == nil {
		return Rule{}, fmt.Errorf("%w: actions are required", core.ErrBadInput)
	}
	if err := checkActions(body.Actions); err != nil {
		return Rule{}, err
	}
	rule := Rule{RuleID: ruleID, Enabled: true, Actions: body.Actions}
	switch kind {
	case KindContent:
		if body.Pattern == nil || *body.Pattern == "" {
			return Rule{}, fmt.Errorf("%w: content rules need a pattern", core.ErrBadInput)
		}
		rule.Pattern = body.Pattern
	case KindRoom:
		rule.Conditions = []Condition{eventMatch("room_id", ruleID)}
	case KindSender:
		rule.Conditions = []Condition{eventMatch("sender", ruleID)}
	default:
		if len(body.Conditions) > maxConditions {
			return Rule{}, fmt.Errorf("%w: at most %d conditions", core.ErrBadInput, maxConditions)
		}
		for _, c := range body.Conditions {
			if err := checkCondition(c); err != nil {
				return Rule{}, err
			}
		}
		rule.Conditions = body.Conditions
		if rule.Conditions == nil {
			rule.Conditions = []Condition{}
		}
	}
	b, err := json.Marshal(rule)
	if err != nil {
		return Rule{}, err
	}
	if len(b) > MaxRuleBytes {
		return Rule{}, fmt.Errorf("%w: a push rule may be at most %d bytes", core.ErrTooLarge, MaxRuleBytes)
	}
	return rule, nil
}

// checkCondition checks that a condition of a kind this server knows has
// the fields its kind needs. Conditions of other kinds are kept (they never
// match, as the spec says).
func checkCondition(c Condition) error {
	missing := func(field string) error {
		return fmt.Errorf("%w: %s conditions need %s", core.ErrBadInput, c.Kind, field)
	}
	switch c.Kind {
	case "":
		return fmt.Errorf("%w: a condition needs a kind", core.ErrBadInput)
	case "event_match":
		if c.Key == "" {
			return missing("a key")
		}
		if c.Pattern == nil {
			return missing("a pattern")
		}
	case "event_property_is", "event_property_contains":
		if c.Key == "" {
			return missing("a key")
		}
		if _, ok := scalar(c.Value); len(c.Value) == 0 || !ok {
			return missing("a string, integer, boolean or null value")
		}
	case "room_member_count":
		_, num := splitIs(c.Is)
		if n := len(num); n == 0 || n > 9 || strings.Trim(num, "0123456789") != "" {
			return missing(`"is" as an optional ==, <, >, <= or >= and a number`)
		}
	case "sender_notification_permission":
		if c.Key == "" {
			return missing("a key")
		}
	}
	return nil
}

// checkActions accepts the spec's actions: "notify", the legacy
// "dont_notify" and "coalesce" (which mean nothing), and set_tweak objects.
func checkActions(actions []json.RawMessage) error {
	if actions == nil {
		return fmt.Errorf("%w: actions are required", core.ErrBadInput)
	}
	if len(actions) > maxActions {
		return fmt.Errorf("%w: at most %d actions", core.ErrBadInput, maxActions)
	}
	for _, a := range actions {
		if s, ok := jsonString(a); ok {
			if s != "notify" && s != "dont_notify" && s != "coalesce" {
				return fmt.Errorf("%w: unknown action %q", ErrRuleInvalid, s)
			}
			continue
		}
		var t struct {
			SetTweak *string `json:"set_tweak"`
		}
		if json.Unmarshal(a, &t) != nil || t.SetTweak == nil || *t.SetTweak == "" {
			return fmt.Errorf("%w: an action is a string or a set_tweak object", ErrRuleInvalid)
		}
	}
	return nil
}
