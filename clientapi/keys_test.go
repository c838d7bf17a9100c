package clientapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/edgenode/edgenode/internal/testnode"
	"github.com/matrix-org/gomatrixserverlib"
)

// edKey is an ed25519 key pair with its unpadded base64 public key.
type edKey struct {
	priv ed25519.PrivateKey
	pub  string
}

func newEdKey(t *testing.T) edKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return edKey{priv: priv, pub: base64.RawStdEncoding.EncodeToString(pub)}
}

// sign signs obj as userID with k under "ed25519:"+name, returning the
// signed object decoded (ready to be put in a request body).
func (k edKey) sign(t *testing.T, userID, name string, obj map[string]any) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(obj)
	signed, err := gomatrixserverlib.SignJSON(userID, gomatrixserverlib.KeyID("ed25519:"+name), k.priv, raw)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(signed, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func crossKey(k edKey, userID, usage string) map[string]any {
	return map[string]any{"user_id": userID, "usage": []string{usage}, "keys": map[string]string{"ed25519:" + k.pub: k.pub}}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	n := testnode.Start(t, testnode.Options{})
	alice := n.Register("alice")
	bob := n.Register("bob")
	expect(t, n.Do("PUT", v3+"/devices/"+alice.DeviceID, alice.Token, map[string]any{"display_name": "Alice's phone"}), 200, "")

	devKey := newEdKey(t)
	deviceKeys := devKey.sign(t, alice.UserID, alice.DeviceID, map[string]any{
		"user_id": alice.UserID, "device_id": alice.DeviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"curve25519:" + alice.DeviceID: "curve", "ed25519:" + alice.DeviceID: devKey.pub},
	})
	otk := func(k string) map[string]any { return map[string]any{"key": k, "signatures": map[string]any{}} }
	master, self, usk := newEdKey(t), newEdKey(t), newEdKey(t)
	masterKey := crossKey(master, alice.UserID, "master")
	signingKeys := map[string]any{
		"master_key":       masterKey,
		"self_signing_key": master.sign(t, alice.UserID, master.pub, crossKey(self, alice.UserID, "self_signing")),
		"user_signing_key": master.sign(t, alice.UserID, master.pub, crossKey(usk, alice.UserID, "user_signing")),
	}
	newMaster := newEdKey(t)
	passwordAuth := map[string]any{"type": "m.login.password", "session": "s",
		"identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": "pw-alice"}
	queryAlice := map[string]any{"device_keys": map[string]any{alice.UserID: []string{}}}
	claimAlice := map[string]any{"one_time_keys": map[string]any{alice.UserID: map[string]string{alice.DeviceID: "signed_curve25519"}}}
	claimed := func(keyID string) func(t *testing.T, res testnode.Response) {
		return func(t *testing.T, res testnode.Response) {
			if field(res.Body, "one_time_keys", alice.UserID, alice.DeviceID, keyID) == nil || res.Body["failures"] == nil {
				t.Errorf("want %s claimed: %s", keyID, res.Raw)
			}
		}
	}

	runCases(t, n, []apiCase{
		{name: "upload", method: "POST", path: v3 + "/keys/upload", token: alice.Token, status: 200,
			body: map[string]any{
				"device_keys":   deviceKeys,
				"one_time_keys": map[string]any{"signed_curve25519:AAAA": otk("a")},
				"fallback_keys": map[string]any{"signed_curve25519:FB": map[string]any{"key": "fb", "fallback": true, "signatures": map[string]any{}}},
			},
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "one_time_key_counts", "signed_curve25519") != 1.0 {
					t.Errorf("counts %s", res.Raw)
				}
			}},
		{name: "upload for another device", method: "POST", path: v3 + "/keys/upload", token: bob.Token, status: 400, errcode: "M_INVALID_PARAM",
			body: map[string]any{"device_keys": deviceKeys}},
		{name: "empty upload reports counts", method: "POST", path: v3 + "/keys/upload", token: bob.Token, body: map[string]any{}, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "one_time_key_counts", "signed_curve25519") != 0.0 {
					t.Errorf("counts %s", res.Raw)
				}
			}},
		{name: "query", method: "POST", path: v3 + "/keys/query", token: bob.Token, body: queryAlice, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				dev := field(res.Body, "device_keys", alice.UserID, alice.DeviceID)
				if field(dev, "keys", "ed25519:"+alice.DeviceID) != devKey.pub || field(dev, "unsigned", "device_display_name") != "Alice's phone" {
					t.Errorf("device %s", res.Raw)
				}
				if res.Body["failures"] == nil || res.Body["master_keys"] == nil {
					t.Errorf("missing failures or master_keys: %s", res.Raw)
				}
			}},
		{name: "query needs device_keys", method: "POST", path: v3 + "/keys/query", token: bob.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "claim a one-time key", method: "POST", path: v3 + "/keys/claim", token: bob.Token, body: claimAlice, status: 200,
			check: claimed("signed_curve25519:AAAA")},
		{name: "claim falls back", method: "POST", path: v3 + "/keys/claim", token: bob.Token, body: claimAlice, status: 200,
			check: claimed("signed_curve25519:FB")},
		{name: "claim needs one_time_keys", method: "POST", path: v3 + "/keys/claim", token: bob.Token, body: map[string]any{}, status: 400, errcode: "M_MISSING_PARAM"},
		{name: "first cross-signing upload needs no password", method: "POST", path: v3 + "/keys/device_signing/upload", token: alice.Token,
			body: signingKeys, status: 200},
		{name: "repeating it needs none either", method: "POST", path: v3 + "/keys/device_signing/upload", token: alice.Token,
			body: signingKeys, status: 200},
		{name: "replacing keys asks for the password", method: "POST", path: v3 + "/keys/device_signing/upload", token: alice.Token,
			body: map[string]any{"master_key": crossKey(newMaster, alice.UserID, "master")}, status: 401,
			check: func(t *testing.T, res testnode.Response) {
				if res.Body["flows"] == nil || res.Errcode() != "" {
					t.Errorf("challenge %s", res.Raw)
				}
			}},
		{name: "self-signing key not signed by master", method: "POST", path: v3 + "/keys/device_signing/upload", token: bob.Token,
			body: map[string]any{
				"master_key":       crossKey(newEdKey(t), bob.UserID, "master"),
				"self_signing_key": crossKey(newEdKey(t), bob.UserID, "self_signing"),
			}, status: 400, errcode: "M_INVALID_SIGNATURE"},
		{name: "others see master and self-signing keys", method: "POST", path: v3 + "/keys/query", token: bob.Token, body: queryAlice, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "master_keys", alice.UserID, "keys", "ed25519:"+master.pub) != master.pub ||
					field(res.Body, "self_signing_keys", alice.UserID, "keys", "ed25519:"+self.pub) != self.pub ||
					field(res.Body, "user_signing_keys", alice.UserID) != nil {
					t.Errorf("query %s", res.Raw)
				}
			}},
		{name: "the owner sees the user-signing key", method: "POST", path: v3 + "/keys/query", token: alice.Token, body: queryAlice, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "user_signing_keys", alice.UserID, "keys", "ed25519:"+usk.pub) != usk.pub {
					t.Errorf("query %s", res.Raw)
				}
			}},
		{name: "sign own device", method: "POST", path: v3 + "/keys/signatures/upload", token: alice.Token, status: 200,
			body: map[string]any{alice.UserID: map[string]any{alice.DeviceID: self.sign(t, alice.UserID, self.pub, deviceKeys)}},
			check: func(t *testing.T, res testnode.Response) {
				if f, ok := res.Body["failures"].(map[string]any); !ok || len(f) != 0 {
					t.Errorf("failures %s", res.Raw)
				}
			}},
		{name: "signature visible in query", method: "POST", path: v3 + "/keys/query", token: bob.Token, body: queryAlice, status: 200,
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "device_keys", alice.UserID, alice.DeviceID, "signatures", alice.UserID, "ed25519:"+self.pub) == nil {
					t.Errorf("query %s", res.Raw)
				}
			}},
		{name: "bad signature reported in failures", method: "POST", path: v3 + "/keys/signatures/upload", token: alice.Token, status: 200,
			body: map[string]any{alice.UserID: map[string]any{alice.DeviceID: newEdKey(t).sign(t, alice.UserID, self.pub, deviceKeys)}},
			check: func(t *testing.T, res testnode.Response) {
				if field(res.Body, "failures", alice.UserID, alice.DeviceID, "errcode") != "M_INVALID_SIGNATURE" {
					t.Errorf("failures %s", res.Raw)
				}
			}},
		{name: "replacing keys with the password", method: "POST", path: v3 + "/keys/device_signing/upload", token: alice.Token, status: 200,
			body: map[string]any{"master_key": crossKey(newMaster, alice.UserID, "master"), "auth": passwordAuth}},
	})
}
