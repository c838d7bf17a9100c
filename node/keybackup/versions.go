package keybackup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
)

// Version is one backup version as GET /room_keys/version serves it.
type Version struct {
	Algorithm string          `json:"algorithm"`
	AuthData  json.RawMessage `json:"auth_data"`
	Count     int             `json:"count"`
	Etag      string          `json:"etag"`
	Version   string          `json:"version"`
}

// Counts are a backup's key count and etag, as a key upload or deletion
// answers them.
type Counts struct {
	Etag  string `json:"etag"`
	Count int    `json:"count"`
}

func (r versionRecord) counts() Counts {
	return Counts{Etag: formatVersion(r.Etag), Count: r.Count}
}

// checkVersionBody checks a version's algorithm and auth_data and returns
// the auth_data compacted. The algorithm is not checked against the spec's
// one (m.megolm_backup.v1.curve25519-aes-sha2): the server does nothing
// with it, and clients may use others (MSC3270's aes-hmac-sha2).
func checkVersionBody(algorithm string, authData json.RawMessage) ([]byte, error) {
	switch {
	case algorithm == "":
		return nil, fmt.Errorf("%w: algorithm is required", core.ErrMissingParam)
	case len(algorithm) > MaxIDBytes:
		return nil, fmt.Errorf("%w: algorithm longer than %d bytes", core.ErrInvalidParam, MaxIDBytes)
	case len(authData) == 0 || string(authData) == "null":
		return nil, fmt.Errorf("%w: auth_data is required", core.ErrMissingParam)
	case len(authData) > MaxAuthDataBytes:
		return nil, fmt.Errorf("%w: auth_data larger than %d bytes", core.ErrTooLarge, MaxAuthDataBytes)
	}
	return compactObject(authData, "auth_data")
}

// compactObject returns raw, which must be a JSON object, compacted.
func compactObject(raw json.RawMessage, what string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, fmt.Errorf("%w: %s must be a JSON object", core.ErrBadInput, what)
	}
	return buf.Bytes(), nil
}

// CreateKeyBackup creates a backup version for userID and makes it the
// current one; it returns the new version. When the user already has
// MaxVersions versions, the oldest is deleted.
func (b *KeyBackups) CreateKeyBackup(ctx context.Context, userID, algorithm string, authData json.RawMessage) (string, error) {
	auth, err := checkVersionBody(algorithm, authData)
	if err != nil {
		return "", err
	}
	var created uint64
	err = b.update(ctx, func(tx *kv.Txn) error {
		var meta userRecord
		if err := tx.GetJSON(metaKey(userID), &meta); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		meta.Last++
		created = meta.Last
		var existing []uint64
		err := tx.Each(kv.Scan{Prefix: versionPrefix(userID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			v, err := kv.LastUint(k)
			existing = append(existing, v)
			return err == nil, err
		})
		if err != nil {
			return err
		}
		for ; len(existing) >= MaxVersions; existing = existing[1:] {
			if err := dropVersion(tx, userID, existing[0]); err != nil {
				return err
			}
		}
		if err := tx.SetJSON(metaKey(userID), meta); err != nil {
			return err
		}
		return tx.SetJSON(versionKey(userID, created), versionRecord{Algorithm: algorithm, AuthData: auth})
	})
	if err != nil {
		return "", err
	}
	b.purgeUser(userID)
	return formatVersion(created), nil
}

// KeyBackupVersion returns one of userID's backup versions, or the current
// one when version is "".
func (b *KeyBackups) KeyBackupVersion(ctx context.Context, userID, version string) (Version, error) {
	var out Version
	err := b.db.View(func(tx *kv.Txn) error {
		v, err := lookupVersion(tx, userID, version)
		if err != nil {
			return err
		}
		rec, found, err := getVersion(tx, userID, v)
		if err != nil {
			return err
		}
		if !found {
			return unknownVersion(version)
		}
		c := rec.counts()
		out = Version{Algorithm: rec.Algorithm, AuthData: rec.AuthData, Count: c.Count, Etag: c.Etag, Version: formatVersion(v)}
		return nil
	})
	return out, err
}

// lookupVersion resolves a version string ("" for the current one) to a
// number; the version may not exist.
func lookupVersion(tx *kv.Txn, userID, version string) (uint64, error) {
	if version == "" {
		v, err := currentVersion(tx, userID)
		if err == nil && v == 0 {
			err = errNoBackup
		}
		return v, err
	}
	v, ok := parseVersion(version)
	if !ok {
		return 0, unknownVersion(version)
	}
	return v, nil
}

// UpdateKeyBackup replaces the auth_data of one of userID's backup
// versions; algorithm must be the version's own (the only other thing a
// client may send, and it may not change).
func (b *KeyBackups) UpdateKeyBackup(ctx context.Context, userID, version, algorithm string, authData json.RawMessage) error {
	auth, err := checkVersionBody(algorithm, authData)
	if err != nil {
		return err
	}
	v, ok := parseVersion(version)
	if !ok {
		return unknownVersion(version)
	}
	return b.update(ctx, func(tx *kv.Txn) error {
		rec, found, err := getVersion(tx, userID, v)
		if err != nil {
			return err
		}
		if !found {
			return unknownVersion(version)
		}
		if rec.Algorithm != algorithm {
			return fmt.Errorf("%w: algorithm does not match the backup's (%s)", core.ErrInvalidParam, rec.Algorithm)
		}
		rec.AuthData = auth
		return tx.SetJSON(versionKey(userID, v), rec)
	})
}

// DeleteKeyBackup deletes one of userID's backup versions and its keys.
// Deleting a version deleted before succeeds, as the spec asks; one that
// never existed is not found.
func (b *KeyBackups) DeleteKeyBackup(ctx context.Context, userID, version string) error {
	v, ok := parseVersion(version)
	if !ok {
		return unknownVersion(version)
	}
	err := b.update(ctx, func(tx *kv.Txn) error {
		_, found, err := getVersion(tx, userID, v)
		if err != nil {
			return err
		}
		if found {
			return dropVersion(tx, userID, v)
		}
		var meta userRecord
		if err := tx.GetJSON(metaKey(userID), &meta); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if v > meta.Last {
			return unknownVersion(version)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.purgeUser(userID)
	return nil
}

// dropVersion deletes version v's record and marks its keys for purging.
func dropVersion(tx *kv.Txn, userID string, v uint64) error {
	if err := tx.Delete(versionKey(userID, v)); err != nil {
		return err
	}
	return tx.Set(purgeKey(userID, v), nil)
}
