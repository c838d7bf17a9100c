package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

// Each bcrypt hash or check takes about 70 ms (over a second under the race
// detector), so these tests use as few as they can and run in parallel.

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := register(t, n, "alice")
	if alice.UserID != "@alice:"+n.ServerName() || alice.DeviceID == "" || alice.AccessToken == "" {
		t.Fatalf("session %+v", alice)
	}
	// All of these fail before any password is hashed.
	tests := []struct {
		localpart string
		want      error
	}{
		{"alice", core.ErrUserInUse},
		{"ALICE", core.ErrUserInUse}, // localparts are lowercased
		{"al ice", core.ErrInvalidUsername},
		{"al:ice", core.ErrInvalidUsername},
		{"@alice", core.ErrInvalidUsername},
		{"ünïcode", core.ErrInvalidUsername},
		{"a\x00b", core.ErrInvalidUsername},
		{strings.Repeat("a", 255), core.ErrInvalidUsername}, // the user ID would pass 255 bytes
	}
	for _, tc := range tests {
		name := tc.localpart
		if len(name) > 16 {
			name = name[:16] + "..."
		}
		t.Run(name, func(t *testing.T) {
			if _, err := n.Register(ctx, RegisterRequest{Localpart: tc.localpart, Password: "x"}); !errors.Is(err, tc.want) {
				t.Errorf("Register(%q): %v, want %v", tc.localpart, err, tc.want)
			}
			if err := n.CheckUsername(ctx, strings.ToLower(tc.localpart)); !errors.Is(err, tc.want) {
				t.Errorf("CheckUsername(%q): %v, want %v", tc.localpart, err, tc.want)
			}
		})
	}

	// Without a password no hash is made; the account cannot log in.
	s, err := n.Register(ctx, RegisterRequest{Localpart: "nopw", InhibitLogin: true})
	if err != nil || s.AccessToken != "" || s.DeviceID != "" {
		t.Fatalf("inhibited registration: %+v, %v", s, err)
	}
	if devs, err := n.Devices(ctx, s.UserID); err != nil || len(devs) != 0 {
		t.Fatalf("inhibited registration made devices: %v, %v", devs, err)
	}

	closed := newTestNodeWith(t, func(c *core.Config) { c.OpenRegistration = false })
	if _, err := closed.Register(ctx, RegisterRequest{Localpart: "bob"}); !errors.Is(err, core.ErrRegistrationDisabled) {
		t.Fatalf("closed registration: %v", err)
	}
	if _, err := closed.Register(ctx, RegisterRequest{Localpart: "bob", Admin: true}); err != nil {
		t.Fatalf("admin registration on a closed node: %v", err)
	}
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	n := newTestNode(t)
	alice := register(t, n, "alice")

	for _, tc := range []struct{ user, password string }{
		{"alice", "wrong"},
		{"nobody", "pw-alice"},
		{"@alice:elsewhere", "pw-alice"},
	} {
		if _, err := n.Login(ctx, tc.user, tc.password, "", ""); !errors.Is(err, core.ErrBadLogin) {
			t.Errorf("Login(%s, %s): %v, want ErrBadLogin", tc.user, tc.password, err)
		}
	}

	// Logging in twice on one device ID replaces that device's token.
	first, err := n.Login(ctx, alice.UserID, "pw-alice", "PHONE", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	second, err := n.Login(ctx, "alice", "pw-alice", "PHONE", "")
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken == second.AccessToken || second.DeviceID != "PHONE" {
		t.Fatalf("re-login: %+v after %+v", second, first)
	}
	if _, err := n.Authenticate(ctx, first.AccessToken); !errors.Is(err, core.ErrUnknownToken) {
		t.Errorf("replaced token: %v, want ErrUnknownToken", err)
	}
	dev, err := n.Authenticate(ctx, second.AccessToken)
	if err != nil || dev.UserID != alice.UserID || dev.DeviceID != "PHONE" || dev.DisplayName != "Phone" {
		t.Fatalf("new token: %+v, %v", dev, err)
	}
	devs, err := n.Devices(ctx, alice.UserID)
	if err != nil || len(devs) != 2 { // the registration's device and PHONE
		t.Fatalf("devices: %+v, %v", devs, err)
	}

	// Logging out one device ends its token only.
	if err := n.Logout(ctx, alice.UserID, "PHONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Authenticate(ctx, second.AccessToken); !errors.Is(err, core.ErrUnknownToken) {
		t.Errorf("logged-out token: %v, want ErrUnknownToken", err)
	}
	if _, err := n.Authenticate(ctx, alice.AccessToken); err != nil {
		t.Errorf("other device's token after logout: %v", err)
	}
	if err := n.Logout(ctx, alice.UserID, "PHONE"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("second logout: %v, want ErrNotFound", err)
	}
	if err := n.LogoutAll(ctx, alice.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Authenticate(ctx, alice.AccessToken); !errors.Is(err, core.ErrUnknownToken) {
		t.Errorf("token after logout-all: %v, want ErrUnknownToken", err)
	}
	if _, err := n.Authenticate(ctx, "edg_made_up"); !errors.Is(err, core.ErrUnknownToken) {
		t.Errorf("made-up token: %v", err)
	}
}
