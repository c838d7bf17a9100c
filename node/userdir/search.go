package userdir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Bounds on one search's work, whatever the index holds: a one-letter
// search on a node that knows many users stops early and says limited.
const (
	// MaxLimit is the most results one search returns (Synapse's cap too).
	MaxLimit = 50
	// DefaultLimit is the spec's default.
	DefaultLimit = 10
	// maxScan is the most index keys one search reads.
	maxScan = 20000
	// maxCandidates is the most distinct users one search ranks.
	maxCandidates = 500
)

// Result is one user found, as the search endpoint serves it.
type Result struct {
	UserID      string `json:"user_id"`
	DisplayName string `json:"display_name,omitempty"`
	AvatarURL   string `json:"avatar_url,omitempty"`
}

// Results is a search's answer.
type Results struct {
	Results []Result `json:"results"`
	// Limited is true when there may be more users than Results.
	Limited bool `json:"limited"`
}

// candidate is a user found, with what ranks them.
type candidate struct {
	Result
	// shared: found through a room the searcher is joined to.
	shared bool
	// exact: a token equals the scanned word (not only starts with it).
	exact bool
	// byName: the scanned word starts a word of the localpart or the
	// display name, not only one of the server name's (on a P2P network
	// server names are hex keys, whose prefixes are noise).
	byName bool
}

// SearchUserDirectory finds up to limit users matching term that searcher
// may find (see the package doc): every word of term must start a word of
// the user's ID or display name, case-insensitively. limit is clamped to
// [0, MaxLimit].
func (d *Directory) SearchUserDirectory(ctx context.Context, searcher, term string, limit int) (Results, error) {
	select {
	case d.searching <- struct{}{}:
		defer func() { <-d.searching }()
	default:
		return Results{}, ErrBusy
	}
	limit = max(0, min(limit, MaxLimit))
	out := Results{Results: []Result{}}
	ws := words(term, maxSearchWords)
	if len(ws) == 0 {
		return out, nil
	}
	scan, rest := scanWord(term, ws)
	var cands map[string]*candidate
	var truncated bool
	err := d.db.View(func(tx *kv.Txn) error {
		var err error
		cands, truncated, err = d.collect(ctx, tx, searcher, scan, rest)
		if err != nil {
			return err
		}
		return d.localProfiles(tx, cands)
	})
	if err != nil {
		return out, fmt.Errorf("userdir: search: %w", err)
	}
	ranked := make([]*candidate, 0, len(cands))
	for _, c := range cands {
		ranked = append(ranked, c)
	}
	sort.Slice(ranked, func(i, j int) bool { return better(ranked[i], ranked[j]) })
	out.Limited = truncated || len(ranked) > limit
	for _, c := range ranked[:min(limit, len(ranked))] {
		out.Results = append(out.Results, c.Result)
	}
	return out, nil
}

// scanWord picks the word of ws whose tokens a search scans, and returns
// the others, checked against each candidate's tokens: the longest (the
// fewest tokens, as a rule), but, for a term that is a user ID, the longest
// of its localpart: its server name's words are every user of that server.
func scanWord(term string, ws []string) (scan string, rest []string) {
	candidates := ws
	if local, _, ok := strings.Cut(strings.TrimPrefix(term, "@"), ":"); ok && strings.HasPrefix(term, "@") {
		if lw := words(local, maxSearchWords); len(lw) > 0 {
			candidates = lw
		}
	}
	for _, w := range candidates {
		if len(w) > len(scan) && slices.Contains(ws, w) {
			scan = w
		}
	}
	if scan == "" {
		scan = ws[0]
	}
	for _, w := range ws {
		if w != scan {
			rest = append(rest, w)
		}
	}
	return scan, rest
}

// collect reads the tokens starting with scan and returns the users whose
// room the searcher may look into and whose tokens in that room also match
// rest. truncated is true when a bound stopped it.
func (d *Directory) collect(ctx context.Context, tx *kv.Txn, searcher, scan string, rest []string) (map[string]*candidate, bool, error) {
	joined := map[string]bool{}
	err := core.EachJoinedRoom(tx, searcher, func(roomID string) (bool, error) {
		joined[roomID] = true
		return true, nil
	})
	if err != nil {
		return nil, false, err
	}
	findable := map[string]bool{} // rooms looked up so far
	cands := map[string]*candidate{}
	scanned, truncated := 0, false
	err = tx.Each(kv.Scan{Prefix: tokenPrefix(scan), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		if scanned++; scanned > maxScan || len(cands) >= maxCandidates {
			truncated = true
			return false, nil
		}
		if scanned%1024 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		token, userID, roomID, err := decodeTokenKey(k)
		if err != nil {
			return false, err
		}
		shared := joined[roomID]
		if !shared {
			f, ok := findable[roomID]
			if !ok {
				if f, err = tx.Has(roomKey(roomID)); err != nil {
					return false, err
				}
				findable[roomID] = f
			}
			if !f {
				return true, nil
			}
		}
		if c := cands[userID]; c != nil {
			c.shared = c.shared || shared
			c.exact = c.exact || token == scan
			c.byName = c.byName || !serverWord(userID, token)
			return true, nil
		}
		var rec memberRecord
		if err := tx.GetJSON(memberKey(roomID, userID), &rec); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return true, nil
			}
			return false, err
		}
		if len(rest) > 0 && !matchesAll(tokens(userID, rec.DisplayName), rest) {
			return true, nil // perhaps through another room, with another name
		}
		cands[userID] = &candidate{
			Result: Result{UserID: userID, DisplayName: rec.DisplayName, AvatarURL: rec.AvatarURL},
			shared: shared, exact: token == scan,
			byName: !serverWord(userID, token) || slices.Contains(tokens(strings.SplitN(userID, ":", 2)[0], rec.DisplayName), token),
		}
		return true, nil
	})
	return cands, truncated, err
}

// localProfiles shows local users with their global profile rather than a
// room's member event (which may carry a per-room name), as Synapse does.
func (d *Directory) localProfiles(tx *kv.Txn, cands map[string]*candidate) error {
	for id, c := range cands {
		if !d.c.IsLocalUser(id) {
			continue
		}
		var p core.Profile
		switch err := tx.GetJSON(core.ProfileKey(id), &p); {
		case errors.Is(err, kv.ErrNotFound):
			continue
		case err != nil:
			return err
		}
		c.DisplayName, c.AvatarURL = p.DisplayName, p.AvatarURL
	}
	return nil
}

// better orders results: users found by their name or localpart before
// those found only by their server name, then users who share a room with
// the searcher, then exact word matches, then users with a display name,
// then with an avatar (the spec: "by rank and then whether or not profile info is
// available"), then by display name and user ID so the order is stable.
func better(a, b *candidate) bool {
	if a.byName != b.byName {
		return a.byName
	}
	if a.shared != b.shared {
		return a.shared
	}
	if a.exact != b.exact {
		return a.exact
	}
	if (a.DisplayName != "") != (b.DisplayName != "") {
		return a.DisplayName != ""
	}
	if (a.AvatarURL != "") != (b.AvatarURL != "") {
		return a.AvatarURL != ""
	}
	if a.DisplayName != b.DisplayName {
		return a.DisplayName < b.DisplayName
	}
	return a.UserID < b.UserID
}

// serverWord reports whether token is a word of userID's server name.
func serverWord(userID, token string) bool {
	_, server, _ := strings.Cut(userID, ":")
	return slices.Contains(words(server, maxTokens), token)
}

// decodeTokenKey splits a token key.
func decodeTokenKey(k []byte) (token, userID, roomID string, err error) {
	_, parts, err := kv.DecodeKey(k)
	if err != nil {
		return "", "", "", err
	}
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("userdir: token key with %d parts", len(parts))
	}
	var ok [3]bool
	token, ok[0] = parts[0].(string)
	userID, ok[1] = parts[1].(string)
	roomID, ok[2] = parts[2].(string)
	if !ok[0] || !ok[1] || !ok[2] {
		return "", "", "", fmt.Errorf("userdir: malformed token key")
	}
	return token, userID, roomID, nil
}
