package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
)

// Keys of users of any server: local users' from the database (keys.go),
// other servers' asked of those servers at once, each answer checked and
// merged. A server that cannot be asked in time is a failure of its own,
// not of the whole request: the client gets the keys it can and learns
// which servers to ask about again.

// DefaultRemoteKeysTimeout is how long a keys query or claim waits for
// other servers unless the client says otherwise (the spec's
// recommendation).
const DefaultRemoteKeysTimeout = 10 * time.Second

// maxRemoteKeysTimeout bounds the wait a client may ask for, so a request
// cannot hold the node's resources for long.
const maxRemoteKeysTimeout = time.Minute

// maxConcurrentRemoteQueries bounds the servers asked at once for one
// request: a phone should not open hundreds of streams for one query.
const maxConcurrentRemoteQueries = 8

// KeysQuery is the answer to a keys query over local and remote users. Maps
// are never nil.
type KeysQuery struct {
	DeviceKeys      map[string]map[string]json.RawMessage
	MasterKeys      map[string]json.RawMessage
	SelfSigningKeys map[string]json.RawMessage
	UserSigningKeys map[string]json.RawMessage
	// Failures are the servers that could not be asked, with why.
	Failures map[string]error
}

// QueryAllKeys is QueryKeys for users of any server: other servers' users
// are asked of their servers at once, waiting at most timeout (zero or less
// means DefaultRemoteKeysTimeout). Remote answers are checked: only the
// users and devices asked about, of the server that answered, whose key
// objects name that user and device, are kept. Other servers' users never
// have a user-signing key here (that key is its owner's alone).
func (n *Inbound) QueryAllKeys(ctx context.Context, requester string, users map[string][]string, timeout time.Duration) (*KeysQuery, error) {
	local, remote := splitByServer(n, users)
	out := &KeysQuery{Failures: map[string]error{}}
	var err error
	out.DeviceKeys, out.MasterKeys, out.SelfSigningKeys, out.UserSigningKeys, err = n.keys.QueryKeys(ctx, requester, local)
	if err != nil {
		return nil, err
	}
	q := n.remoteQuerier()
	answers, failures := fanOut(ctx, remoteTimeout(timeout), remote, func(ctx context.Context, server string, asked map[string][]string) (RemoteKeys, error) {
		if q == nil {
			return RemoteKeys{}, fmt.Errorf("%w: no federation", core.ErrRemoteUnavailable)
		}
		return q.QueryKeys(ctx, server, asked)
	})
	for server, err := range failures {
		n.Logger().Debug("keys: query failed", "server", server, "err", err)
		out.Failures[server] = err
	}
	for server, ans := range answers {
		n.mergeRemoteKeys(out, server, remote[server], ans)
	}
	return out, nil
}

// mergeRemoteKeys adds server's answer to out, keeping only what was asked
// of it and is what it claims to be.
func (n *Inbound) mergeRemoteKeys(out *KeysQuery, server string, asked map[string][]string, ans RemoteKeys) {
	for userID, byDevice := range ans.DeviceKeys {
		devices, ok := asked[userID]
		if !ok {
			n.Logger().Debug("keys: unasked user in answer", "server", server, "user", userID)
			continue
		}
		kept := map[string]json.RawMessage{}
		for deviceID, raw := range byDevice {
			if len(devices) > 0 && !slices.Contains(devices, deviceID) {
				continue
			}
			var dk e2ee.DeviceKeysJSON // the shape an upload must have: a key with wrongly typed fields is dropped
			if !jsontext.IsObject(raw) || json.Unmarshal(raw, &dk) != nil || dk.UserID != userID || dk.DeviceID != deviceID {
				n.Logger().Debug("keys: malformed device keys in answer", "server", server, "user", userID, "device", deviceID)
				continue
			}
			kept[deviceID] = raw
		}
		out.DeviceKeys[userID] = kept
	}
	for _, m := range []struct {
		in, out map[string]json.RawMessage
	}{{ans.MasterKeys, out.MasterKeys}, {ans.SelfSigningKeys, out.SelfSigningKeys}} {
		for userID, raw := range m.in {
			if _, ok := asked[userID]; !ok {
				continue
			}
			var k e2ee.CrossSigningKeyJSON
			if !jsontext.IsObject(raw) || json.Unmarshal(raw, &k) != nil || k.UserID != userID {
				n.Logger().Debug("keys: malformed cross-signing key in answer", "server", server, "user", userID)
				continue
			}
			m.out[userID] = raw
		}
	}
}

// ClaimAllKeys is ClaimKeys for users of any server: other servers' users'
// keys are claimed from their servers at once, waiting at most timeout
// (zero or less means DefaultRemoteKeysTimeout). Only one key per asked
// device, of the asked algorithm, is kept from a remote answer. The
// failures are the servers that could not be asked.
func (n *Inbound) ClaimAllKeys(ctx context.Context, claims map[string]map[string]string, timeout time.Duration) (map[string]map[string]map[string]json.RawMessage, map[string]error, error) {
	local, remote := splitByServer(n, claims)
	out, err := n.keys.ClaimKeys(ctx, local)
	if err != nil {
		return nil, nil, err
	}
	q := n.remoteQuerier()
	answers, failures := fanOut(ctx, remoteTimeout(timeout), remote, func(ctx context.Context, server string, asked map[string]map[string]string) (map[string]map[string]map[string]json.RawMessage, error) {
		if q == nil {
			return nil, fmt.Errorf("%w: no federation", core.ErrRemoteUnavailable)
		}
		return q.ClaimKeys(ctx, server, asked)
	})
	for server, err := range failures {
		n.Logger().Debug("keys: claim failed", "server", server, "err", err)
	}
	for server, ans := range answers {
		asked := remote[server]
		for userID, byDevice := range ans {
			for deviceID, keys := range byDevice {
				alg, ok := asked[userID][deviceID]
				if !ok {
					continue
				}
				for keyID, key := range keys {
					if !strings.HasPrefix(keyID, alg+":") {
						continue
					}
					if out[userID] == nil {
						out[userID] = map[string]map[string]json.RawMessage{}
					}
					out[userID][deviceID] = map[string]json.RawMessage{keyID: key}
					break
				}
			}
		}
	}
	return out, failures, nil
}

// splitByServer splits a request keyed by user ID into this server's users
// and, by server, other servers' users. Malformed user IDs are dropped:
// there is no server to ask about them.
func splitByServer[V any](n *Inbound, byUser map[string]V) (local map[string]V, remote map[string]map[string]V) {
	local, remote = map[string]V{}, map[string]map[string]V{}
	for userID, v := range byUser {
		server := core.ServerOf(userID)
		switch {
		case server == "":
		case server == n.ServerName():
			local[userID] = v
		default:
			if remote[server] == nil {
				remote[server] = map[string]V{}
			}
			remote[server][userID] = v
		}
	}
	return local, remote
}

// remoteTimeout is a client's wait for other servers, defaulted and capped.
func remoteTimeout(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return DefaultRemoteKeysTimeout
	case d > maxRemoteKeysTimeout:
		return maxRemoteKeysTimeout
	}
	return d
}

// fanOut calls ask for every server at once (at most
// maxConcurrentRemoteQueries at a time), all within timeout, and returns
// the answers and the failures by server.
func fanOut[Q, A any](ctx context.Context, timeout time.Duration, byServer map[string]Q, ask func(ctx context.Context, server string, q Q) (A, error)) (map[string]A, map[string]error) {
	answers, failures := map[string]A{}, map[string]error{}
	if len(byServer) == 0 {
		return answers, failures
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, maxConcurrentRemoteQueries)
	)
	for server, q := range byServer {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				mu.Lock()
				failures[server] = fmt.Errorf("%w: %s not asked in time: %w", core.ErrRemoteUnavailable, server, ctx.Err())
				mu.Unlock()
				return
			}
			a, err := ask(ctx, server, q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures[server] = err
				return
			}
			answers[server] = a
		})
	}
	wg.Wait()
	return answers, failures
}
