package clientapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/edgenode/edgenode/internal/mxhttp"
	"github.com/edgenode/edgenode/node/push"
)

// The push rules API (node/push keeps the rules, as m.push_rules account
// data, and applies them to unread counts and pushes).

// maxPushRuleBody bounds a PUT of a rule, its enabled flag or its actions.
const maxPushRuleBody = 2 * push.MaxRuleBytes

// pushRuleErr turns the errors push gives its own meaning into the spec's:
// a rule the server cannot use is 400 M_UNKNOWN (the spec's example).
func pushRuleErr(err error) error {
	if errors.Is(err, push.ErrRuleInvalid) {
		return mxhttp.Errorf(http.StatusBadRequest, "M_UNKNOWN", "%v", err)
	}
	return err
}

// pushRules answers GET /pushrules/.
func (a *api) pushRules(w http.ResponseWriter, r *http.Request) error {
	rs, err := a.n.PushRules(r.Context(), mxhttp.DeviceFrom(r).UserID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"global": rs})
	return nil
}

// globalPushRules answers GET /pushrules/global/.
func (a *api) globalPushRules(w http.ResponseWriter, r *http.Request) error {
	rs, err := a.n.PushRules(r.Context(), mxhttp.DeviceFrom(r).UserID)
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, rs)
	return nil
}

// getPushRule answers GET /pushrules/global/{kind}/{ruleId}.
func (a *api) getPushRule(w http.ResponseWriter, r *http.Request) error {
	kind := r.PathValue("kind")
	rule, err := a.n.PushRule(r.Context(), mxhttp.DeviceFrom(r).UserID, kind, r.PathValue("ruleId"))
	if err != nil {
		return err
	}
	b, err := push.MarshalRule(kind, rule)
	if err != nil {
		return err
	}
	writeRaw(w, b)
	return nil
}

// putPushRule answers PUT /pushrules/global/{kind}/{ruleId}.
func (a *api) putPushRule(w http.ResponseWriter, r *http.Request) error {
	var body push.RuleBody
	if err := mxhttp.DecodeJSON(r, maxPushRuleBody, &body); err != nil {
		return err
	}
	q := r.URL.Query()
	err := a.n.SetPushRule(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"),
		q.Get("before"), q.Get("after"), body)
	if err != nil {
		return pushRuleErr(err)
	}
	return writeOK(w)
}

// deletePushRule answers DELETE /pushrules/global/{kind}/{ruleId}.
func (a *api) deletePushRule(w http.ResponseWriter, r *http.Request) error {
	if err := a.n.DeletePushRule(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId")); err != nil {
		return pushRuleErr(err)
	}
	return writeOK(w)
}

// getPushRuleEnabled answers GET /pushrules/global/{kind}/{ruleId}/enabled.
func (a *api) getPushRuleEnabled(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.n.PushRule(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"))
	if err != nil {
		return err
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]bool{"enabled": rule.Enabled})
	return nil
}

// putPushRuleEnabled answers PUT /pushrules/global/{kind}/{ruleId}/enabled.
func (a *api) putPushRuleEnabled(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := mxhttp.DecodeJSON(r, maxPushRuleBody, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return mxhttp.BadJSON("enabled (a boolean) is required")
	}
	err := a.n.SetPushRuleEnabled(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"), *body.Enabled)
	if err != nil {
		return pushRuleErr(err)
	}
	return writeOK(w)
}

// getPushRuleActions answers GET /pushrules/global/{kind}/{ruleId}/actions.
func (a *api) getPushRuleActions(w http.ResponseWriter, r *http.Request) error {
	rule, err := a.n.PushRule(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"))
	if err != nil {
		return err
	}
	actions := rule.Actions
	if actions == nil {
		actions = []json.RawMessage{}
	}
	mxhttp.WriteJSON(w, http.StatusOK, map[string]any{"actions": actions})
	return nil
}

// putPushRuleActions answers PUT /pushrules/global/{kind}/{ruleId}/actions.
func (a *api) putPushRuleActions(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Actions []json.RawMessage `json:"actions"`
	}
	if err := mxhttp.DecodeJSON(r, maxPushRuleBody, &body); err != nil {
		return err
	}
	if body.Actions == nil {
		return mxhttp.BadJSON("actions (a list) is required")
	}
	err := a.n.SetPushRuleActions(r.Context(), mxhttp.DeviceFrom(r).UserID, r.PathValue("kind"), r.PathValue("ruleId"), body.Actions)
	if err != nil {
		return pushRuleErr(err)
	}
	return writeOK(w)
}
