package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/node/e2ee"
	"github.com/edgenode/edgenode/node/push"
	"golang.org/x/crypto/bcrypt"
)

type accountRecord struct {
	PasswordHash string `json:"pw,omitempty"`
	CreatedTS    int64  `json:"created"`
	// Admin marks an account the operator created (RegisterRequest.Admin):
	// it may use the admin endpoints (IsAdmin).
	Admin bool `json:"admin,omitempty"`
}

type deviceRecord struct {
	DisplayName string `json:"display_name,omitempty"`
	TokenHash   string `json:"token,omitempty"`
	LastSeenTS  int64  `json:"last_seen_ts,omitempty"`
}

type tokenRecord struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// Device is a logged-in device of a user.
type Device struct {
	UserID      string
	DeviceID    string
	DisplayName string
	LastSeenTS  int64
}

// Session is what a successful registration or login returns.
type Session struct {
	UserID      string
	DeviceID    string
	AccessToken string // empty when login was inhibited
}

// RegisterRequest asks for a new account.
type RegisterRequest struct {
	// Localpart is the user's localpart; empty picks a random one.
	Localpart string
	// Password may be empty: the account then cannot log in with a password.
	Password string
	// DeviceID and DeviceDisplayName describe the first device; an empty
	// DeviceID picks a random one.
	DeviceID          string
	DeviceDisplayName string
	// InhibitLogin creates the account without a device or token.
	InhibitLogin bool
	// Admin bypasses OpenRegistration (the admin command) and makes the
	// account an administrator (IsAdmin).
	Admin bool
}

var localpartRE = regexp.MustCompile(`^[a-z0-9._=\-/+]+$`)

// UserID is the full user ID for a local localpart.
func (n *Node) UserID(localpart string) string { return "@" + localpart + ":" + n.ServerName() }

// CheckUsername returns ErrInvalidUsername or ErrUserInUse when localpart
// cannot be registered.
func (n *Node) CheckUsername(ctx context.Context, localpart string) error {
	if !localpartRE.MatchString(localpart) || len(n.UserID(localpart)) > 255 {
		return fmt.Errorf("%w: %q (allowed: a-z 0-9 . _ = - / +)", core.ErrInvalidUsername, localpart)
	}
	return n.DB.View(func(tx *kv.Txn) error {
		ok, err := tx.Has(core.AccountKey(localpart))
		if err == nil && ok {
			err = core.ErrUserInUse
		}
		return err
	})
}

// Register creates an account and, unless inhibited, logs its first device in.
func (n *Node) Register(ctx context.Context, req RegisterRequest) (Session, error) {
	if !req.Admin && !n.Config().OpenRegistration {
		return Session{}, core.ErrRegistrationDisabled
	}
	if req.Localpart == "" {
		req.Localpart = "u" + strings.ToLower(core.RandomString(8))
	}
	req.Localpart = strings.ToLower(req.Localpart)
	if err := n.CheckUsername(ctx, req.Localpart); err != nil {
		return Session{}, err
	}
	rec := accountRecord{CreatedTS: n.Now().UnixMilli(), Admin: req.Admin}
	if req.Password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(req.Password), bcrypt.DefaultCost)
		if err != nil {
			return Session{}, fmt.Errorf("%w: password: %v", core.ErrBadInput, err)
		}
		rec.PasswordHash = string(h)
	}
	userID := n.UserID(req.Localpart)
	var sess Session
	err := n.ChangeDevices(ctx, userID, func(tx *kv.Txn) error {
		if ok, err := tx.Has(core.AccountKey(req.Localpart)); err != nil || ok {
			if ok {
				return core.ErrUserInUse
			}
			return err
		}
		if err := tx.SetJSON(core.AccountKey(req.Localpart), rec); err != nil {
			return err
		}
		if err := tx.SetJSON(core.ProfileKey(userID), core.Profile{DisplayName: req.Localpart}); err != nil {
			return err
		}
		sess = Session{UserID: userID}
		if req.InhibitLogin {
			return nil
		}
		var err error
		sess, err = n.newDevice(tx, userID, req.DeviceID, req.DeviceDisplayName)
		return err
	})
	return sess, err
}

// Login checks a password and logs a device in. user is a localpart or a
// local user ID.
func (n *Node) Login(ctx context.Context, user, password, deviceID, displayName string) (Session, error) {
	localpart, err := n.LocalpartOf(user)
	if err != nil {
		return Session{}, core.ErrBadLogin
	}
	if err := n.checkPassword(localpart, password); err != nil {
		return Session{}, err
	}
	var sess Session
	err = n.ChangeDevices(ctx, n.UserID(localpart), func(tx *kv.Txn) error {
		var err error
		sess, err = n.newDevice(tx, n.UserID(localpart), deviceID, displayName)
		return err
	})
	return sess, err
}

// CheckPassword verifies a user's password (for user-interactive auth).
func (n *Node) CheckPassword(ctx context.Context, userID, password string) error {
	localpart, err := n.LocalpartOf(userID)
	if err != nil {
		return core.ErrBadLogin
	}
	return n.checkPassword(localpart, password)
}

func (n *Node) checkPassword(localpart, password string) error {
	var rec accountRecord
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(core.AccountKey(localpart), &rec) })
	if errors.Is(err, kv.ErrNotFound) {
		// Spend the same time as a real check so timing does not reveal users.
		_ = bcrypt.CompareHashAndPassword([]byte("$2a$10$0000000000000000000000000000000000000000000000000000."), []byte(password))
		return core.ErrBadLogin
	}
	if err != nil {
		return err
	}
	if rec.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(rec.PasswordHash), []byte(password)) != nil {
		return core.ErrBadLogin
	}
	return nil
}

// newDevice creates (or re-logs-in) a device with a fresh access token. An
// existing device's old token stops working.
func (n *Node) newDevice(tx *kv.Txn, userID, deviceID, displayName string) (Session, error) {
	if deviceID == "" {
		deviceID = strings.ToUpper(core.RandomString(10))
	}
	var dev deviceRecord
	if err := tx.GetJSON(core.DeviceKey(userID, deviceID), &dev); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return Session{}, err
	}
	if dev.TokenHash != "" {
		if err := tx.Delete(core.TokenKey(dev.TokenHash)); err != nil {
			return Session{}, err
		}
	}
	token := "edg_" + core.RandomString(32)
	dev.TokenHash = hashToken(token)
	dev.LastSeenTS = n.Now().UnixMilli()
	if displayName != "" {
		dev.DisplayName = displayName
	}
	if err := tx.SetJSON(core.DeviceKey(userID, deviceID), dev); err != nil {
		return Session{}, err
	}
	if err := tx.SetJSON(core.TokenKey(dev.TokenHash), tokenRecord{UserID: userID, DeviceID: deviceID}); err != nil {
		return Session{}, err
	}
	return Session{UserID: userID, DeviceID: deviceID, AccessToken: token}, nil
}

// Authenticate maps an access token to its device.
func (n *Node) Authenticate(ctx context.Context, token string) (Device, error) {
	var dev Device
	err := n.DB.View(func(tx *kv.Txn) error {
		var tr tokenRecord
		if err := tx.GetJSON(core.TokenKey(hashToken(token)), &tr); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return core.ErrUnknownToken
			}
			return err
		}
		d, err := readDevice(tx, tr.UserID, tr.DeviceID)
		dev = d
		return err
	})
	return dev, err
}

// Logout ends the session of one access token.
func (n *Node) Logout(ctx context.Context, userID, deviceID string) error {
	return n.DeleteDevice(ctx, userID, deviceID)
}

// LogoutAll ends every session of a user and removes all their devices.
func (n *Node) LogoutAll(ctx context.Context, userID string) error {
	devs, err := n.Devices(ctx, userID)
	if err != nil {
		return err
	}
	// One transaction per device: a device's inbox and keys are deleted
	// with it, and all devices' together could outgrow a transaction.
	for _, d := range devs {
		if err := n.DeleteDevice(ctx, userID, d.DeviceID); err != nil && !errors.Is(err, core.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Devices lists a user's devices, by device ID.
func (n *Node) Devices(ctx context.Context, userID string) ([]Device, error) {
	var out []Device
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: core.DevicePrefix(userID)}, func(k, v []byte) (bool, error) {
			id, err := kv.LastString(k)
			if err != nil {
				return false, err
			}
			d, err := decodeDevice(userID, id, v)
			out = append(out, d)
			return err == nil, err
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out, err
}

// Device returns one device of a user, or ErrNotFound.
func (n *Node) Device(ctx context.Context, userID, deviceID string) (Device, error) {
	var d Device
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		d, err = readDevice(tx, userID, deviceID)
		return err
	})
	return d, err
}

// SetDeviceDisplayName renames a device.
func (n *Node) SetDeviceDisplayName(ctx context.Context, userID, deviceID, name string) error {
	return n.DB.Update(func(tx *kv.Txn) error {
		var dev deviceRecord
		if err := tx.GetJSON(core.DeviceKey(userID, deviceID), &dev); err != nil {
			if errors.Is(err, kv.ErrNotFound) {
				return fmt.Errorf("device %s: %w", deviceID, core.ErrNotFound)
			}
			return err
		}
		dev.DisplayName = name
		return tx.SetJSON(core.DeviceKey(userID, deviceID), dev)
	})
}

// DeleteDevice removes a device and invalidates its access token, then
// forgets its transaction IDs.
func (n *Node) DeleteDevice(ctx context.Context, userID, deviceID string) error {
	if err := n.ChangeDevices(ctx, userID, func(tx *kv.Txn) error { return deleteDevice(tx, userID, deviceID) }); err != nil {
		return err
	}
	return n.ForgetDeviceTxns(ctx, userID, deviceID)
}

func deleteDevice(tx *kv.Txn, userID, deviceID string) error {
	var dev deviceRecord
	if err := tx.GetJSON(core.DeviceKey(userID, deviceID), &dev); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("device %s: %w", deviceID, core.ErrNotFound)
		}
		return err
	}
	if dev.TokenHash != "" {
		if err := tx.Delete(core.TokenKey(dev.TokenHash)); err != nil {
			return err
		}
	}
	if err := e2ee.PurgeDevice(tx, userID, deviceID); err != nil {
		return err
	}
	if err := push.PurgeDevicePushers(tx, userID, deviceID); err != nil {
		return err
	}
	return tx.Delete(core.DeviceKey(userID, deviceID))
}

func readDevice(tx *kv.Txn, userID, deviceID string) (Device, error) {
	b, err := tx.Get(core.DeviceKey(userID, deviceID))
	if errors.Is(err, kv.ErrNotFound) {
		return Device{}, fmt.Errorf("device %s: %w", deviceID, core.ErrNotFound)
	}
	if err != nil {
		return Device{}, err
	}
	return decodeDevice(userID, deviceID, b)
}

func decodeDevice(userID, deviceID string, b []byte) (Device, error) {
	var rec deviceRecord
	if err := core.DecodeJSON(b, &rec); err != nil {
		return Device{}, err
	}
	return Device{UserID: userID, DeviceID: deviceID, DisplayName: rec.DisplayName, LastSeenTS: rec.LastSeenTS}, nil
}

// hashToken is how tokens are stored: a leaked database reveals no usable
// token. Tokens are 192 random bits, so a fast hash is enough.
func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
