package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Pushers (POST /pushers/set, GET /pushers): where a user's devices want
// pushes. Each is keyed by user, app ID and pushkey, as the spec has it, and
// remembers the device (access token) that set it, so deleting the device
// deletes its pushers (PurgeDevicePushers, in the device's transaction).
// Only "http" pushers exist here; they are notified by the gateway worker
// (gateway.go).

// Limits on pushers.
const (
	// MaxPushersPerUser bounds a user's pushers: a person has a few devices.
	MaxPushersPerUser = 20
	// MaxPusherDataBytes bounds a pusher's data object, forwarded to its
	// gateway with every notification.
	MaxPusherDataBytes = 4 << 10
	maxAppIDChars      = 64
	maxPushkeyBytes    = 512
	maxPusherStrBytes  = 512
)

// NotifyPath is the path every HTTP pusher's URL must have (the push
// gateway API's notify endpoint).
const NotifyPath = "/_matrix/push/v1/notify"

const (
	tPusher    = "pusher"    // user ID, app ID, pushkey -> pusherRecord
	tPusherDev = "pusherdev" // user ID, device ID, app ID, pushkey -> ""
	tPusherKey = "pusherkey" // app ID, pushkey, user ID -> ""
)

func pusherKey(userID, appID, pushkey string) []byte { return kv.Key(tPusher, userID, appID, pushkey) }
func pusherUserPrefix(userID string) []byte          { return kv.Key(tPusher, userID) }
func pusherDevKey(userID, deviceID, appID, pushkey string) []byte {
	return kv.Key(tPusherDev, userID, deviceID, appID, pushkey)
}
func pusherDevPrefix(userID, deviceID string) []byte { return kv.Key(tPusherDev, userID, deviceID) }
func pusherAppKey(appID, pushkey, userID string) []byte {
	return kv.Key(tPusherKey, appID, pushkey, userID)
}
func pusherAppPrefix(appID, pushkey string) []byte { return kv.Key(tPusherKey, appID, pushkey) }

// Pusher is a pusher as GET /pushers shows it.
type Pusher struct {
	PushKey           string          `json:"pushkey"`
	Kind              string          `json:"kind"`
	AppID             string          `json:"app_id"`
	AppDisplayName    string          `json:"app_display_name"`
	DeviceDisplayName string          `json:"device_display_name"`
	ProfileTag        string          `json:"profile_tag,omitempty"`
	Lang              string          `json:"lang"`
	Data              json.RawMessage `json:"data"`
}

// pusherRecord is a stored pusher.
type pusherRecord struct {
	Pusher
	DeviceID string `json:"device_id"`
	// TS is when the pushkey was set (ms): the gateway's pushkey_ts.
	TS int64 `json:"ts"`
}

// PusherRequest is the body of POST /pushers/set. Kind is raw JSON
// because null (delete the pusher) differs from absent (an error).
type PusherRequest struct {
	Pusher
	Kind   json.RawMessage `json:"kind"`
	Append bool            `json:"append"`
}

// Pushers returns userID's pushers.
func (n *Push) Pushers(ctx context.Context, userID string) ([]Pusher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	recs, err := n.loadPushers(userID)
	out := make([]Pusher, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Pusher)
	}
	return out, err
}

func (n *Push) loadPushers(userID string) ([]pusherRecord, error) {
	var out []pusherRecord
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		out, err = readPushers(tx, userID)
		return err
	})
	return out, err
}

func readPushers(tx *kv.Txn, userID string) ([]pusherRecord, error) {
	var out []pusherRecord
	err := tx.Each(kv.Scan{Prefix: pusherUserPrefix(userID)}, func(_, v []byte) (bool, error) {
		var r pusherRecord
		if err := core.DecodeJSON(v, &r); err != nil {
			return false, err
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// SetPusher creates, replaces or (kind null) deletes one of userID's
// pushers, set through deviceID's access token.
func (n *Push) SetPusher(ctx context.Context, userID, deviceID string, req PusherRequest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if req.AppID == "" || req.PushKey == "" || len(req.Kind) == 0 {
		return fmt.Errorf("%w: kind, app_id and pushkey are required", core.ErrMissingParam)
	}
	if utf8.RuneCountInString(req.AppID) > maxAppIDChars || len(req.PushKey) > maxPushkeyBytes {
		return fmt.Errorf("%w: app_id is at most %d characters, pushkey at most %d bytes", core.ErrInvalidParam, maxAppIDChars, maxPushkeyBytes)
	}
	if string(req.Kind) == "null" {
		err := n.DB.Update(func(tx *kv.Txn) error { return deletePusher(tx, userID, req.AppID, req.PushKey) })
		n.pushers.recount(n, userID)
		return err
	}
	rec, err := checkPusher(req)
	if err != nil {
		return err
	}
	rec.DeviceID, rec.TS = deviceID, n.now().UnixMilli()
	err = n.DB.Update(func(tx *kv.Txn) error {
		existing, err := readPushers(tx, userID)
		if err != nil {
			return err
		}
		replaces := slices.ContainsFunc(existing, func(p pusherRecord) bool {
			return p.AppID == req.AppID && p.PushKey == req.PushKey
		})
		if !replaces && len(existing) >= MaxPushersPerUser {
			return fmt.Errorf("%w: at most %d pushers", core.ErrTooLarge, MaxPushersPerUser)
		}
		if replaces { // its device index entry may name another device
			if err := deletePusher(tx, userID, req.AppID, req.PushKey); err != nil {
				return err
			}
		}
		if !req.Append {
			// The spec: other users' pushers with this app ID and pushkey go.
			var others []string
			err := tx.Each(kv.Scan{Prefix: pusherAppPrefix(req.AppID, req.PushKey), KeysOnly: true}, func(k, _ []byte) (bool, error) {
				u, err := kv.LastString(k)
				if err == nil && u != userID {
					others = append(others, u)
				}
				return err == nil, err
			})
			if err != nil {
				return err
			}
			for _, u := range others {
				if err := deletePusher(tx, u, req.AppID, req.PushKey); err != nil {
					return err
				}
			}
		}
		if err := tx.SetJSON(pusherKey(userID, req.AppID, req.PushKey), rec); err != nil {
			return err
		}
		if err := tx.Set(pusherDevKey(userID, deviceID, req.AppID, req.PushKey), nil); err != nil {
			return err
		}
		return tx.Set(pusherAppKey(req.AppID, req.PushKey, userID), nil)
	})
	n.pushers.recount(n, userID)
	return err
}

// checkPusher validates a pusher that is set (kind not null).
func checkPusher(req PusherRequest) (pusherRecord, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"app_display_name", req.AppDisplayName}, {"device_display_name", req.DeviceDisplayName}, {"lang", req.Lang},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
		if len(f.v) > maxPusherStrBytes {
			return pusherRecord{}, fmt.Errorf("%w: %s is at most %d bytes", core.ErrInvalidParam, f.name, maxPusherStrBytes)
		}
	}
	if len(req.ProfileTag) > maxPusherStrBytes {
		return pusherRecord{}, fmt.Errorf("%w: profile_tag is at most %d bytes", core.ErrInvalidParam, maxPusherStrBytes)
	}
	var data map[string]json.RawMessage
	if len(req.Data) == 0 || string(req.Data) == "null" {
		missing = append(missing, "data")
	} else if json.Unmarshal(req.Data, &data) != nil || data == nil {
		return pusherRecord{}, fmt.Errorf("%w: data must be an object", core.ErrBadInput)
	}
	if len(missing) > 0 {
		return pusherRecord{}, fmt.Errorf("%w: missing %v", core.ErrMissingParam, missing)
	}
	if len(req.Data) > MaxPusherDataBytes {
		return pusherRecord{}, fmt.Errorf("%w: data is at most %d bytes", core.ErrTooLarge, MaxPusherDataBytes)
	}
	kind, ok := jsonString(req.Kind)
	if !ok {
		return pusherRecord{}, fmt.Errorf("%w: kind must be a string or null", core.ErrBadInput)
	}
	if kind != "http" {
		return pusherRecord{}, fmt.Errorf("%w: pusher kind %q is not supported (only http)", core.ErrInvalidParam, kind)
	}
	raw, ok := jsonString(data["url"])
	if !ok {
		return pusherRecord{}, fmt.Errorf("%w: data.url is required for http pushers", core.ErrMissingParam)
	}
	if err := checkGatewayURL(raw); err != nil {
		return pusherRecord{}, err
	}
	if f, ok := data["format"]; ok {
		if s, _ := jsonString(f); s != "event_id_only" {
			return pusherRecord{}, fmt.Errorf("%w: data.format may only be event_id_only", core.ErrInvalidParam)
		}
	}
	p := req.Pusher
	p.Kind = kind
	return pusherRecord{Pusher: p}, nil
}

// checkGatewayURL accepts http and https URLs whose path is NotifyPath. The
// spec says https; plain http is allowed too because a node's gateway is
// often on the same machine or LAN (a Pi node waking its owner's phone
// through a gateway it runs), where the user chose it and TLS buys little.
func checkGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("%w: data.url must be an absolute http(s) URL", core.ErrInvalidParam)
	}
	if u.Path != NotifyPath {
		return fmt.Errorf("%w: data.url must have the path %s", core.ErrInvalidParam, NotifyPath)
	}
	return nil
}

// deletePusher deletes a pusher and its index entries (nothing when there
// is none).
func deletePusher(tx *kv.Txn, userID, appID, pushkey string) error {
	var rec pusherRecord
	err := tx.GetJSON(pusherKey(userID, appID, pushkey), &rec)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range [][]byte{
		pusherKey(userID, appID, pushkey),
		pusherDevKey(userID, rec.DeviceID, appID, pushkey),
		pusherAppKey(appID, pushkey, userID),
	} {
		if err := tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// PurgeDevicePushers deletes the pushers deviceID set, in the transaction
// that deletes the device (node calls it from its device deletion).
func PurgeDevicePushers(tx *kv.Txn, userID, deviceID string) error {
	type ref struct{ appID, pushkey string }
	var refs []ref
	err := tx.Each(kv.Scan{Prefix: pusherDevPrefix(userID, deviceID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
		_, parts, err := kv.DecodeKey(k)
		if err != nil || len(parts) != 4 {
			return false, fmt.Errorf("pusher device index key %x: %v", k, err)
		}
		appID, _ := parts[2].(string)
		pushkey, _ := parts[3].(string)
		refs = append(refs, ref{appID, pushkey})
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, r := range refs {
		if err := deletePusher(tx, userID, r.appID, r.pushkey); err != nil {
			return err
		}
	}
	return nil
}

// PurgeOtherDevicePushers deletes userID's pushers but those keepDeviceID
// set: the spec's rule for a password change (which node does not offer
// yet; this is its hook).
func PurgeOtherDevicePushers(tx *kv.Txn, userID, keepDeviceID string) error {
	recs, err := readPushers(tx, userID)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.DeviceID != keepDeviceID {
			if err := deletePusher(tx, userID, r.AppID, r.PushKey); err != nil {
				return err
			}
		}
	}
	return nil
}

// now is the node's clock.
func (n *Push) now() time.Time {
	if c := n.Config().Clock; c != nil {
		return c()
	}
	return time.Now()
}
