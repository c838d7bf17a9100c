package syncapi_test

import (
	"encoding/json"
	"net/http"

	"github.com/edgenode/edgenode/node"
)

const ssPath = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"

// ssResp is the part of a sliding sync response the tests read.
type ssResp struct {
	Pos   string `json:"pos"`
	Lists map[string]struct {
		Count int `json:"count"`
	} `json:"lists"`
	Rooms      map[string]ssRoom          `json:"rooms"`
	Extensions map[string]json.RawMessage `json:"extensions"`
	Raw        []byte                     `json:"-"`
}

type ssRoom struct {
	Name   *string `json:"name"`
	Heroes []struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"displayname"`
	} `json:"heroes"`
	Initial           bool     `json:"initial"`
	ExpandedTimeline  bool     `json:"expanded_timeline"`
	IsDM              bool     `json:"is_dm"`
	RequiredState     []event  `json:"required_state"`
	Timeline          []event  `json:"timeline"`
	PrevBatch         string   `json:"prev_batch"`
	Limited           bool     `json:"limited"`
	NumLive           *int     `json:"num_live"`
	JoinedCount       *int     `json:"joined_count"`
	InvitedCount      *int     `json:"invited_count"`
	NotificationCount *int     `json:"notification_count"`
	HighlightCount    *int     `json:"highlight_count"`
	BumpStamp         uint64   `json:"bump_stamp"`
	Membership        string   `json:"membership"`
	Lists             []string `json:"lists"`
	InviteState       []event  `json:"invite_state"`
}

// ss makes a sliding sync request and fails the test unless it answers 200.
func (e *env) ss(s node.Session, body map[string]any) ssResp {
	e.t.Helper()
	res := e.tn.Do("POST", ssPath, s.AccessToken, body)
	if res.Status != http.StatusOK {
		e.t.Fatalf("sliding sync: %d %s", res.Status, res.Raw)
	}
	var out ssResp
	if err := json.Unmarshal(res.Raw, &out); err != nil {
		e.t.Fatalf("decode: %v: %s", err, res.Raw)
	}
	out.Raw = res.Raw
	return out
}

// ssList is a list config in the matrix-js-sdk dialect.
func ssList(from, to, limit int, requiredState ...[]string) map[string]any {
	if requiredState == nil {
		requiredState = [][]string{}
	}
	return map[string]any{"ranges": [][]int{{from, to}}, "timeline_limit": limit, "required_state": requiredState}
}

// ssStateSet is the set of "type|state_key" of events.
func ssStateSet(evs []event) map[string]bool {
	out := map[string]bool{}
	for _, ev := range evs {
		sk := ""
		if ev.StateKey != nil {
			sk = *ev.StateKey
		}
		out[ev.Type+"|"+sk] = true
	}
	return out
}

func intOf(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}
