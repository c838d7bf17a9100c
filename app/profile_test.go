package app

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/p2ptransport"
)

// TestUnsetProfileSizesStorageAndLibp2pAlike: an App configured without a
// profile sizes Badger and libp2p by the same one. kv defaulted to pi and
// p2ptransport to phone, so such an app ran Pi-sized storage beside
// phone-sized libp2p.
func TestUnsetProfileSizesStorageAndLibp2pAlike(t *testing.T) {
	for _, profile := range []string{"", "phone"} {
		name := profile
		if name == "" {
			name = "unset"
		}
		t.Run(name, func(t *testing.T) {
			cfg := loopbackConfig(t.TempDir(), nil)
			cfg.Node.StorageProfile = profile
			a, err := Start(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer closeApp(t, a)
			storage, err := kv.ProfileByName(a.node.Config().StorageProfile)
			if err != nil {
				t.Fatal(err)
			}
			if storage.Name != a.p2p.Profile() {
				t.Errorf("storage profile %q, libp2p profile %q", storage.Name, a.p2p.Profile())
			}
			if profile != "" && storage.Name != profile {
				t.Errorf("asked for %q, storage got %q", profile, storage.Name)
			}
		})
	}
}

// TestP2PConfigRefusesTheAppsFields: the node's key, the host and the
// profile are the app's to set; a P2PConfig setting them otherwise is
// refused, not silently overridden.
func TestP2PConfigRefusesTheAppsFields(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name    string
		cfg     p2ptransport.Config
		wantErr string
	}{
		{name: "nothing of the app's", cfg: p2ptransport.Config{MDNS: true}},
		{name: "the storage's profile", cfg: p2ptransport.Config{Profile: "pi"}},
		{name: "a key", cfg: p2ptransport.Config{PrivateKey: key}, wantErr: "PrivateKey"},
		{name: "another profile", cfg: p2ptransport.Config{Profile: "phone"}, wantErr: "Profile"},
	}
	for _, tt := range tests {
		err := (&P2PConfig{Config: tt.cfg}).check("pi")
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %v, want error %q", tt.name, err, tt.wantErr)
		}
	}
}
