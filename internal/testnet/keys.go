package testnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"
)

// SignedDeviceKeys is the device keys a client uploads for userID's
// deviceID: curve as its curve25519 key, a fresh ed25519 key, algorithms,
// and extra fields beside them (nil for none), signed with that ed25519
// key as the spec asks. It returns the keys and the ed25519 public key to
// verify them with once they come back from a query.
func SignedDeviceKeys(tb testing.TB, userID, deviceID, curve string, algorithms []string, extra map[string]any) (json.RawMessage, ed25519.PublicKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	keys := map[string]any{
		"user_id": userID, "device_id": deviceID, "algorithms": algorithms,
		"keys": map[string]string{
			"curve25519:" + deviceID: curve, "ed25519:" + deviceID: base64.RawStdEncoding.EncodeToString(pub),
		},
	}
	maps.Copy(keys, extra)
	raw, err := json.Marshal(keys)
	if err != nil {
		tb.Fatal(err)
	}
	signed, err := gomatrixserverlib.SignJSON(userID, gomatrixserverlib.KeyID("ed25519:"+deviceID), priv, raw)
	if err != nil {
		tb.Fatalf("sign device keys: %v", err)
	}
	return signed, pub
}
