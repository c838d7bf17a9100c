package mobile

import (
	"context"
	"fmt"

	"github.com/edgenode/edgenode/node"
)

// Session is a logged-in device: what a Matrix client needs besides
// BaseURL, so the app makes no extra HTTP round trip to log in.
type Session struct {
	// UserID is the full Matrix user ID, @localpart:server name.
	UserID string
	// AccessToken authenticates the device's client API requests.
	AccessToken string
	// DeviceID identifies the device (for end-to-end encryption).
	DeviceID string
}

func newSession(s node.Session) *Session {
	return &Session{UserID: s.UserID, AccessToken: s.AccessToken, DeviceID: s.DeviceID}
}

// CreateAccount creates a local account and logs its first device in. It
// works whether or not open registration is on: the app owns the node.
// password may be empty (the account then cannot log in with a password
// later); deviceDisplayName may be empty.
func (n *Node) CreateAccount(localpart, password, deviceDisplayName string) (s *Session, err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), accountTimeout)
	defer cancel()
	sess, err := a.CreateAccount(ctx, localpart, password, deviceDisplayName)
	if err != nil {
		return nil, fmt.Errorf("mobile: %w", err)
	}
	return newSession(sess), nil
}

// Login logs a new device of an existing account in. user is a localpart
// or a full user ID; deviceID may be empty (a new one is picked) or an
// existing device's ID (its old token is replaced).
func (n *Node) Login(user, password, deviceID, deviceDisplayName string) (s *Session, err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), accountTimeout)
	defer cancel()
	sess, err := a.Login(ctx, user, password, deviceID, deviceDisplayName)
	if err != nil {
		return nil, fmt.Errorf("mobile: %w", err)
	}
	return newSession(sess), nil
}
