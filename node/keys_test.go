package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/matrix-org/gomatrixserverlib"
)

// e2eeUser is a local user with a device, made without bcrypt (no
// password), for end-to-end encryption tests.
func e2eeUser(t testing.TB, n *Node, localpart, deviceID string) Session {
	t.Helper()
	s, err := n.Register(context.Background(), RegisterRequest{Localpart: localpart, DeviceID: deviceID})
	if err != nil {
		t.Fatalf("register %s: %v", localpart, err)
	}
	return s
}

// addDevice logs a user in on another device, as Login does after the
// password check.
func addDevice(t testing.TB, n *Node, userID, deviceID string) {
	t.Helper()
	err := n.ChangeDevices(context.Background(), userID, func(tx *kv.Txn) error {
		_, err := n.newDevice(tx, userID, deviceID, "")
		return err
	})
	if err != nil {
		t.Fatalf("add device %s: %v", deviceID, err)
	}
}

// testKey is an ed25519 key pair with its unpadded base64 public key.
type testKey struct {
	priv ed25519.PrivateKey
	pub  string
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, pub: base64.RawStdEncoding.EncodeToString(pub)}
}

// sign signs obj as userID with k under keyID ("ed25519:" + name).
func (k testKey) sign(t testing.TB, userID, name string, obj any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := gomatrixserverlib.SignJSON(userID, gomatrixserverlib.KeyID("ed25519:"+name), k.priv, raw)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signed
}

// deviceKeysFor builds device_keys for a device, self-signed with its
// ed25519 key, as a client does.
func deviceKeysFor(t testing.TB, k testKey, userID, deviceID string) json.RawMessage {
	t.Helper()
	return k.sign(t, userID, deviceID, map[string]any{
		"user_id": userID, "device_id": deviceID,
		"algorithms": []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		"keys":       map[string]string{"curve25519:" + deviceID: "curve-" + deviceID, "ed25519:" + deviceID: k.pub},
	})
}

// crossSigningKeyFor builds a cross-signing key; signer, when set, is the
// master key that signs it.
func crossSigningKeyFor(t testing.TB, k testKey, userID, usage string, signer *testKey) json.RawMessage {
	t.Helper()
	obj := map[string]any{"user_id": userID, "usage": []string{usage}, "keys": map[string]string{"ed25519:" + k.pub: k.pub}}
	if signer == nil {
		raw, _ := json.Marshal(obj)
		return raw
	}
	return signer.sign(t, userID, signer.pub, obj)
}

// otk is a signed_curve25519 one-time key object.
func otk(key string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"key":%q,"signatures":{}}`, key))
}

func keyMap(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = otk(kv[i+1])
	}
	return m
}

func TestUploadKeysValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	dk := newTestKey(t)
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, keyMap("signed_curve25519:k1", "one"), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		deviceKeys json.RawMessage
		otks       map[string]json.RawMessage
		fallbacks  map[string]json.RawMessage
		want       error
	}{
		{name: "device keys of another user", deviceKeys: deviceKeysFor(t, dk, "@bob:x", "A1"), want: core.ErrInvalidParam},
		{name: "device keys of another device", deviceKeys: deviceKeysFor(t, dk, alice.UserID, "A2"), want: core.ErrInvalidParam},
		{name: "device keys not an object", deviceKeys: json.RawMessage(`[1]`), want: core.ErrInvalidParam},
		{name: "device keys without keys", deviceKeys: json.RawMessage(`{"user_id":"` + alice.UserID + `","device_id":"A1"}`), want: core.ErrInvalidParam},
		{name: "key name without algorithm", otks: keyMap("k1", "x"), want: core.ErrInvalidParam},
		{name: "key that is a number", otks: map[string]json.RawMessage{"signed_curve25519:n": json.RawMessage(`7`)}, want: core.ErrInvalidParam},
		{name: "same one-time key ID, other key", otks: keyMap("signed_curve25519:k1", "two"), want: core.ErrInvalidParam},
		{name: "two fallback keys of one algorithm", fallbacks: keyMap("signed_curve25519:f1", "a", "signed_curve25519:f2", "b"), want: core.ErrInvalidParam},
		{name: "same one-time key again", otks: keyMap("signed_curve25519:k1", "one")},
		{name: "string-valued key", otks: map[string]json.RawMessage{"curve25519:s1": json.RawMessage(`"abc"`)}},
		{name: "valid device keys", deviceKeys: deviceKeysFor(t, dk, alice.UserID, "A1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.UploadKeys(ctx, alice.UserID, "A1", tc.deviceKeys, tc.otks, tc.fallbacks)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	counts, err := n.OneTimeKeyCounts(ctx, alice.UserID, "A1")
	if err != nil || counts["signed_curve25519"] != 1 || counts["curve25519"] != 1 {
		t.Fatalf("counts %v, %v; want one key of each (rejected uploads store nothing)", counts, err)
	}
}

func TestClaimKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	const alg = "signed_curve25519"

	counts, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, keyMap(alg+":k9", "first"), keyMap(alg+":fb1", "fallback"))
	if err != nil || counts[alg] != 1 {
		t.Fatalf("upload: %v %v", counts, err)
	}
	// k0 sorts before k9 but was uploaded later: upload order wins.
	if counts, err = n.UploadKeys(ctx, alice.UserID, "A1", nil, keyMap(alg+":k0", "second"), nil); err != nil || counts[alg] != 2 {
		t.Fatalf("second upload: %v %v", counts, err)
	}
	claim := map[string]map[string]string{alice.UserID: {"A1": alg}, bob.UserID: {"B1": alg}, "@remote:elsewhere": {"X": alg}}
	steps := []struct {
		name         string
		wantKeyID    string
		wantKey      string
		wantCount    int
		wantFallback []string
	}{
		{"oldest one-time key first", alg + ":k9", "first", 1, []string{alg}},
		{"then the next", alg + ":k0", "second", 0, []string{alg}},
		{"then the fallback key", alg + ":fb1", "fallback", 0, []string{}},
		{"the fallback key again", alg + ":fb1", "fallback", 0, []string{}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			got, err := n.ClaimKeys(ctx, claim)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || len(got[alice.UserID]) != 1 {
				t.Fatalf("claimed %v; want only alice's device (bob has no keys, remote users are skipped)", got)
			}
			key, ok := got[alice.UserID]["A1"][st.wantKeyID]
			var obj struct{ Key string }
			if !ok || json.Unmarshal(key, &obj) != nil || obj.Key != st.wantKey {
				t.Fatalf("claimed %s, want %s = %s", got[alice.UserID]["A1"], st.wantKeyID, st.wantKey)
			}
			counts, err := n.OneTimeKeyCounts(ctx, alice.UserID, "A1")
			if err != nil || counts[alg] != st.wantCount {
				t.Fatalf("counts %v, %v; want %d", counts, err, st.wantCount)
			}
			if _, present := counts[alg]; !present {
				t.Fatalf("counts %v lack %s (must be reported even at zero)", counts, alg)
			}
			fb, err := n.UnusedFallbackKeyTypes(ctx, alice.UserID, "A1")
			if err != nil || !slices.Equal(fb, st.wantFallback) {
				t.Fatalf("unused fallback types %v, %v; want %v", fb, err, st.wantFallback)
			}
		})
	}

	// The same fallback key again stays used; a new one is unused.
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, nil, keyMap(alg+":fb1", "fallback")); err != nil {
		t.Fatal(err)
	}
	if fb, _ := n.UnusedFallbackKeyTypes(ctx, alice.UserID, "A1"); len(fb) != 0 {
		t.Fatalf("re-uploading the used fallback key made it unused: %v", fb)
	}
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, nil, keyMap(alg+":fb2", "fallback 2")); err != nil {
		t.Fatal(err)
	}
	if fb, _ := n.UnusedFallbackKeyTypes(ctx, alice.UserID, "A1"); !slices.Equal(fb, []string{alg}) {
		t.Fatalf("a new fallback key is not unused: %v", fb)
	}
}

func TestClaimKeysConcurrentlyHandsOutEachKeyOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	const alg, keys = "signed_curve25519", 12
	otks := map[string]json.RawMessage{}
	for i := range keys {
		otks[fmt.Sprintf("%s:k%02d", alg, i)] = otk(fmt.Sprint("key ", i))
	}
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, otks, keyMap(alg+":fb", "fallback")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range keys + 3 {
		wg.Go(func() {
			res, err := n.ClaimKeys(ctx, map[string]map[string]string{alice.UserID: {"A1": alg}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for id := range res[alice.UserID]["A1"] {
				got[id]++
			}
		})
	}
	wg.Wait()
	for i := range keys {
		if id := fmt.Sprintf("%s:k%02d", alg, i); got[id] != 1 {
			t.Errorf("%s claimed %d times, want once", id, got[id])
		}
	}
	if got[alg+":fb"] != 3 {
		t.Errorf("fallback claimed %d times, want 3 (once per claim after the one-time keys ran out)", got[alg+":fb"])
	}
}

func TestOneTimeKeysAreBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	const alg = "signed_curve25519"
	for batch := range 3 {
		otks := map[string]json.RawMessage{}
		for i := range maxOneTimeKeys / 2 {
			otks[fmt.Sprintf("%s:b%d-%04d", alg, batch, i)] = otk("k")
		}
		if _, err := n.UploadKeys(ctx, alice.UserID, "A1", nil, otks, nil); err != nil {
			t.Fatal(err)
		}
	}
	counts, _ := n.OneTimeKeyCounts(ctx, alice.UserID, "A1")
	if counts[alg] != maxOneTimeKeys || countPrefix(t, n, otkDevicePrefix(alice.UserID, "A1")) != maxOneTimeKeys {
		t.Fatalf("count %d, stored %d; want both %d", counts[alg], countPrefix(t, n, otkDevicePrefix(alice.UserID, "A1")), maxOneTimeKeys)
	}
	// The first batch, the oldest, was dropped.
	got, _ := n.ClaimKeys(ctx, map[string]map[string]string{alice.UserID: {"A1": alg}})
	if _, ok := got[alice.UserID]["A1"][alg+":b1-0000"]; !ok {
		t.Fatalf("claimed %v, want the oldest kept key b1-0000", got)
	}
}

// crossSigning is a user's three cross-signing key pairs.
type crossSigning struct{ master, self, user testKey }

func newCrossSigning(t testing.TB) crossSigning {
	return crossSigning{master: newTestKey(t), self: newTestKey(t), user: newTestKey(t)}
}

// upload uploads all three keys, the others signed by the master key.
func (cs crossSigning) upload(t testing.TB, n *Node, userID string) {
	t.Helper()
	err := n.UploadCrossSigningKeys(context.Background(), userID,
		crossSigningKeyFor(t, cs.master, userID, e2ee.UsageMaster, nil),
		crossSigningKeyFor(t, cs.self, userID, e2ee.UsageSelfSigning, &cs.master),
		crossSigningKeyFor(t, cs.user, userID, e2ee.UsageUserSigning, &cs.master))
	if err != nil {
		t.Fatalf("upload cross-signing keys: %v", err)
	}
}

func TestUploadCrossSigningKeysValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	cs := newCrossSigning(t)
	other := newTestKey(t)
	u := alice.UserID
	master := crossSigningKeyFor(t, cs.master, u, e2ee.UsageMaster, nil)
	self := crossSigningKeyFor(t, cs.self, u, e2ee.UsageSelfSigning, &cs.master)
	deviceNamed := newTestKey(t)
	addDevice(t, n, u, deviceNamed.pub)
	tests := []struct {
		name                string
		master, self, usign json.RawMessage
		want                error
	}{
		{name: "self-signing without any master key", self: self, want: core.ErrMissingParam},
		{name: "master key of another user", master: crossSigningKeyFor(t, cs.master, "@bob:x", e2ee.UsageMaster, nil), want: core.ErrInvalidParam},
		{name: "master key with the wrong usage", master: crossSigningKeyFor(t, cs.master, u, e2ee.UsageSelfSigning, nil), want: core.ErrInvalidParam},
		{name: "key ID not naming its key", master: json.RawMessage(`{"user_id":"` + u + `","usage":["master"],"keys":{"ed25519:abc":"` + cs.master.pub + `"}}`), want: core.ErrInvalidParam},
		{name: "two keys", master: json.RawMessage(`{"user_id":"` + u + `","usage":["master"],"keys":{"ed25519:a":"a","ed25519:b":"b"}}`), want: core.ErrInvalidParam},
		{name: "self-signing key not signed by the master", master: master, self: crossSigningKeyFor(t, cs.self, u, e2ee.UsageSelfSigning, &other), want: core.ErrInvalidSignature},
		{name: "key named like a device", master: crossSigningKeyFor(t, deviceNamed, u, e2ee.UsageMaster, nil), want: core.ErrForbidden},
		{name: "master alone", master: master},
		{name: "self-signing against the stored master", self: self},
		{name: "user-signing against the stored master", usign: crossSigningKeyFor(t, cs.user, u, e2ee.UsageUserSigning, &cs.master)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := n.UploadCrossSigningKeys(ctx, u, tc.master, tc.self, tc.usign)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	authTests := []struct {
		name         string
		master, self json.RawMessage
		want         bool
	}{
		{"the stored keys again", master, self, false},
		{"the stored master key with whitespace", json.RawMessage(" " + string(master)), nil, false},
		{"a new master key", crossSigningKeyFor(t, newTestKey(t), u, e2ee.UsageMaster, nil), nil, true},
	}
	for _, tc := range authTests {
		t.Run("needs auth: "+tc.name, func(t *testing.T) {
			got, err := n.CrossSigningUploadNeedsAuth(ctx, u, tc.master, tc.self, nil)
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if got, err := n.CrossSigningUploadNeedsAuth(ctx, "@nobody:"+n.ServerName(), master, nil, nil); err != nil || got {
		t.Fatalf("a first upload needs auth: %v %v", got, err)
	}
}

// queryOne queries userID's keys as requester.
func queryOne(t testing.TB, n *Node, requester, userID string, devices ...string) (map[string]json.RawMessage, json.RawMessage, json.RawMessage, json.RawMessage) {
	t.Helper()
	dk, mk, sk, uk, err := n.QueryKeys(context.Background(), requester, map[string][]string{userID: devices})
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return dk[userID], mk[userID], sk[userID], uk[userID]
}

// signatures returns obj's signatures[signer].
func signatures(t testing.TB, obj json.RawMessage, signer string) map[string]string {
	t.Helper()
	var v struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(obj, &v); err != nil {
		t.Fatalf("decode %s: %v", obj, err)
	}
	return v.Signatures[signer]
}

func TestQueryKeysAndSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := e2eeUser(t, n, "alice", "A1")
	bob := e2eeUser(t, n, "bob", "B1")
	carol := e2eeUser(t, n, "carol", "C1")
	if err := n.SetDeviceDisplayName(ctx, alice.UserID, "A1", "Alice's phone"); err != nil {
		t.Fatal(err)
	}
	aDev := newTestKey(t)
	aKeys := deviceKeysFor(t, aDev, alice.UserID, "A1")
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", aKeys, nil, nil); err != nil {
		t.Fatal(err)
	}
	acs, bcs := newCrossSigning(t), newCrossSigning(t)
	acs.upload(t, n, alice.UserID)
	bcs.upload(t, n, bob.UserID)

	// What others see of alice: her device with its display name, her
	// master and self-signing keys, not her user-signing key.
	devs, master, self, usk := queryOne(t, n, bob.UserID, alice.UserID)
	var dev struct {
		UserID   string `json:"user_id"`
		Unsigned struct {
			Name string `json:"device_display_name"`
		} `json:"unsigned"`
	}
	if err := json.Unmarshal(devs["A1"], &dev); err != nil || dev.UserID != alice.UserID || dev.Unsigned.Name != "Alice's phone" {
		t.Fatalf("alice's device as bob sees it: %s", devs["A1"])
	}
	if signatures(t, devs["A1"], alice.UserID)["ed25519:A1"] == "" {
		t.Fatalf("device self-signature lost: %s", devs["A1"])
	}
	if master == nil || self == nil || usk != nil {
		t.Fatalf("bob sees master %s, self-signing %s, user-signing %s; want the first two only", master, self, usk)
	}
	if _, _, _, usk := queryOne(t, n, alice.UserID, alice.UserID); usk == nil {
		t.Fatal("alice does not see her own user-signing key")
	}
	if devs, _, _, _ := queryOne(t, n, bob.UserID, alice.UserID, "NOPE"); len(devs) != 0 {
		t.Fatalf("unknown device returned: %v", devs)
	}

	// Alice's self-signing key signs her device; her device signs her master
	// key; bob's user-signing key signs alice's master key.
	var devObj, masterObj map[string]any
	_ = json.Unmarshal(aKeys, &devObj)
	masterRaw := crossSigningKeyFor(t, acs.master, alice.UserID, e2ee.UsageMaster, nil)
	_ = json.Unmarshal(masterRaw, &masterObj)
	signedDev := acs.self.sign(t, alice.UserID, acs.self.pub, devObj)
	signedMaster := aDev.sign(t, alice.UserID, "A1", masterObj)
	bobSignedMaster := bcs.user.sign(t, bob.UserID, bcs.user.pub, masterObj)
	badSig := newTestKey(t).sign(t, alice.UserID, acs.self.pub, devObj)
	changedDev := map[string]any{}
	for k, v := range devObj {
		changedDev[k] = v
	}
	changedDev["algorithms"] = []string{"other"}

	sigTests := []struct {
		name   string
		signer string
		target string
		keyID  string
		obj    json.RawMessage
		want   error
	}{
		{"own device by self-signing key", alice.UserID, alice.UserID, "A1", signedDev, nil},
		{"own master key by a device", alice.UserID, alice.UserID, acs.master.pub, signedMaster, nil},
		{"another's master key by user-signing key", bob.UserID, alice.UserID, acs.master.pub, bobSignedMaster, nil},
		{"bad signature", alice.UserID, alice.UserID, "A1", badSig, core.ErrInvalidSignature},
		{"object not matching the stored key", alice.UserID, alice.UserID, "A1", acs.self.sign(t, alice.UserID, acs.self.pub, changedDev), core.ErrInvalidParam},
		{"unknown key", alice.UserID, alice.UserID, "NOPE", signedDev, core.ErrNotFound},
		{"another's device", bob.UserID, alice.UserID, "A1", bcs.user.sign(t, bob.UserID, bcs.user.pub, devObj), core.ErrNotFound},
		{"remote user", alice.UserID, "@x:elsewhere", "K", signedDev, core.ErrNotFound},
	}
	for _, tc := range sigTests {
		t.Run(tc.name, func(t *testing.T) {
			failures, err := n.UploadSignatures(ctx, tc.signer, map[string]map[string]json.RawMessage{tc.target: {tc.keyID: tc.obj}})
			if err != nil {
				t.Fatal(err)
			}
			got := failures[tc.target][tc.keyID]
			if (tc.want == nil && got != nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
				t.Fatalf("failure %v, want %v", got, tc.want)
			}
		})
	}

	// Signatures by alice are visible to all; bob's on alice's master key
	// only to bob.
	views := []struct {
		name      string
		requester string
		bobSig    bool
	}{
		{"bob", bob.UserID, true},
		{"carol", carol.UserID, false},
		{"alice", alice.UserID, false},
	}
	for _, v := range views {
		t.Run("as "+v.name, func(t *testing.T) {
			devs, master, _, _ := queryOne(t, n, v.requester, alice.UserID)
			if signatures(t, devs["A1"], alice.UserID)["ed25519:"+acs.self.pub] == "" {
				t.Errorf("self-signing signature on the device missing: %s", devs["A1"])
			}
			if signatures(t, master, alice.UserID)["ed25519:A1"] == "" {
				t.Errorf("device signature on the master key missing: %s", master)
			}
			if got := signatures(t, master, bob.UserID)["ed25519:"+bcs.user.pub] != ""; got != v.bobSig {
				t.Errorf("bob's signature visible: %v, want %v: %s", got, v.bobSig, master)
			}
		})
	}

	// New device keys drop the signatures on the old ones.
	if _, err := n.UploadKeys(ctx, alice.UserID, "A1", deviceKeysFor(t, newTestKey(t), alice.UserID, "A1"), nil, nil); err != nil {
		t.Fatal(err)
	}
	devs, _, _, _ = queryOne(t, n, bob.UserID, alice.UserID)
	if signatures(t, devs["A1"], alice.UserID)["ed25519:"+acs.self.pub] != "" {
		t.Fatalf("signature on replaced device keys kept: %s", devs["A1"])
	}
}
