package federation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/edgenode/edgenode/node/inbound"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The asking side of the query endpoints: aliases, device lists and keys of
// other servers. Keys travel as raw JSON, never through the library's typed
// structs: a key object must reach the client byte-for-byte as its owner
// signed it, fields the library does not know included, or its signatures
// would no longer verify.

var _ inbound.RemoteQuerier = (*Client)(nil)

// doJSON sends a signed request to server and decodes its JSON answer into
// out. content, if not nil, is the JSON body.
func (c *Client) doJSON(ctx context.Context, method, server, uri string, content, out any) error {
	if err := c.checkServer(server); err != nil {
		return err
	}
	origin := spec.ServerName(c.n.ServerName())
	fr := fclient.NewFederationRequest(method, origin, spec.ServerName(server), uri)
	if content != nil {
		if err := fr.SetContent(content); err != nil {
			return err
		}
	}
	if err := fr.Sign(origin, identity.KeyID, c.n.SigningKey()); err != nil {
		return err
	}
	req, err := fr.HTTPRequest()
	if err != nil {
		return err
	}
	return c.fc.DoRequestAndParseResponse(c.ctx(ctx), req, out)
}

// QueryDirectory asks server what one of its aliases points to
// (query/directory). It implements inbound.RemoteQuerier.
func (c *Client) QueryDirectory(ctx context.Context, server, alias string) (core.RoomAlias, error) {
	var res core.RoomAlias
	uri := "/_matrix/federation/v1/query/directory?room_alias=" + url.QueryEscape(alias)
	if err := c.doJSON(ctx, http.MethodGet, server, uri, nil, &res); err != nil {
		return core.RoomAlias{}, fmt.Errorf("federation: query alias %s on %s: %w", alias, server, nodeError(err))
	}
	return res, nil
}

// userDevicesJSON is the answer to user/devices, keys kept raw.
type userDevicesJSON struct {
	UserID   string `json:"user_id"`
	StreamID int64  `json:"stream_id"`
	Devices  []struct {
		DeviceID    string          `json:"device_id"`
		DisplayName string          `json:"device_display_name,omitempty"`
		Keys        json.RawMessage `json:"keys"`
	} `json:"devices"`
	MasterKey      json.RawMessage `json:"master_key,omitempty"`
	SelfSigningKey json.RawMessage `json:"self_signing_key,omitempty"`
}

// GetUserDevices asks server for the device list of one of its users
// (user/devices), keys as the server sent them.
func (c *Client) GetUserDevices(ctx context.Context, server, userID string) (*e2ee.UserDevices, error) {
	var res userDevicesJSON
	uri := "/_matrix/federation/v1/user/devices/" + url.PathEscape(userID)
	if err := c.doJSON(ctx, http.MethodGet, server, uri, nil, &res); err != nil {
		return nil, fmt.Errorf("federation: devices of %s on %s: %w", userID, server, nodeError(err))
	}
	if res.UserID != userID || res.StreamID < 0 {
		return nil, fmt.Errorf("federation: devices of %s on %s: %w: answer is for %q, stream %d", userID, server, core.ErrRemoteUnavailable, res.UserID, res.StreamID)
	}
	out := &e2ee.UserDevices{
		UserID: userID, StreamID: uint64(res.StreamID), Devices: make([]e2ee.UserDevice, 0, len(res.Devices)),
		MasterKey: res.MasterKey, SelfSigningKey: res.SelfSigningKey,
	}
	for _, d := range res.Devices {
		out.Devices = append(out.Devices, e2ee.UserDevice{DeviceID: d.DeviceID, DisplayName: d.DisplayName, Keys: d.Keys})
	}
	return out, nil
}

// queryKeysJSON is the body and answer of user/keys/query, keys kept raw.
type queryKeysJSON struct {
	DeviceKeys      map[string]map[string]json.RawMessage `json:"device_keys"`
	MasterKeys      map[string]json.RawMessage            `json:"master_keys,omitempty"`
	SelfSigningKeys map[string]json.RawMessage            `json:"self_signing_keys,omitempty"`
}

// QueryKeys asks server for the device and cross-signing keys of some of
// its users (user/keys/query): user ID -> device IDs, none meaning all. The
// answer is as the server sent it; node.QueryAllKeys checks it. It
// implements inbound.RemoteQuerier.
func (c *Client) QueryKeys(ctx context.Context, server string, users map[string][]string) (inbound.RemoteKeys, error) {
	body := map[string]map[string][]string{"device_keys": {}}
	for u, devices := range users {
		if devices == nil {
			devices = []string{} // the spec's "all devices" is an empty list, not null
		}
		body["device_keys"][u] = devices
	}
	var res queryKeysJSON
	if err := c.doJSON(ctx, http.MethodPost, server, "/_matrix/federation/v1/user/keys/query", body, &res); err != nil {
		return inbound.RemoteKeys{}, fmt.Errorf("federation: query keys on %s: %w", server, nodeError(err))
	}
	return inbound.RemoteKeys{DeviceKeys: res.DeviceKeys, MasterKeys: res.MasterKeys, SelfSigningKeys: res.SelfSigningKeys}, nil
}

// ClaimKeys claims one-time keys of some of server's users
// (user/keys/claim): user ID -> device ID -> algorithm. The answer is as
// the server sent it; node.ClaimAllKeys checks it. It implements
// inbound.RemoteQuerier.
func (c *Client) ClaimKeys(ctx context.Context, server string, claims map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
	var res struct {
		OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
	}
	body := map[string]any{"one_time_keys": claims}
	if err := c.doJSON(ctx, http.MethodPost, server, "/_matrix/federation/v1/user/keys/claim", body, &res); err != nil {
		return nil, fmt.Errorf("federation: claim keys on %s: %w", server, nodeError(err))
	}
	return res.OneTimeKeys, nil
}
