package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/edgenode/edgenode/kv"
)

type aliasRecord struct {
	RoomID  string `json:"room_id"`
	Creator string `json:"creator"`
}

// checkAlias requires a well-formed alias on this server.
func (n *Node) checkAlias(alias string) error {
	local, server, ok := strings.Cut(strings.TrimPrefix(alias, "#"), ":")
	if !strings.HasPrefix(alias, "#") || !ok || local == "" || len(alias) > 255 {
		return fmt.Errorf("%w: malformed alias %q", ErrInvalidParam, alias)
	}
	if server != n.serverName {
		return fmt.Errorf("%w: alias %q is not on this server", ErrInvalidParam, alias)
	}
	return nil
}

// AliasName is the full alias for a local alias name.
func (n *Node) AliasName(local string) string { return "#" + local + ":" + n.serverName }

// SetAlias maps alias to roomID; a taken alias is ErrRoomInUse.
func (n *Node) SetAlias(ctx context.Context, creator, alias, roomID string) error {
	if err := n.checkAlias(alias); err != nil {
		return err
	}
	return n.DB.Update(func(tx *kv.Txn) error { return setAlias(tx, creator, alias, roomID) })
}

func setAlias(tx *kv.Txn, creator, alias, roomID string) error {
	if ok, err := tx.Has(RoomKey(roomID)); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("room %s: %w", roomID, ErrNotFound)
		}
		return err
	}
	if ok, err := tx.Has(aliasKey(alias)); err != nil || ok {
		if ok {
			err = fmt.Errorf("%s: %w", alias, ErrRoomInUse)
		}
		return err
	}
	if err := tx.SetJSON(aliasKey(alias), aliasRecord{RoomID: roomID, Creator: creator}); err != nil {
		return err
	}
	return tx.Set(roomAliasKey(roomID, alias), nil)
}

// ResolveAlias returns the room an alias points to, or ErrNotFound.
func (n *Node) ResolveAlias(ctx context.Context, alias string) (string, error) {
	var rec aliasRecord
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(aliasKey(alias), &rec) })
	if errors.Is(err, kv.ErrNotFound) {
		return "", fmt.Errorf("alias %s: %w", alias, ErrNotFound)
	}
	return rec.RoomID, err
}

// DeleteAlias removes an alias. Its creator, or a user with power to set
// m.room.canonical_alias in the room, may.
func (n *Node) DeleteAlias(ctx context.Context, userID, alias string) error {
	var rec aliasRecord
	err := n.DB.View(func(tx *kv.Txn) error { return tx.GetJSON(aliasKey(alias), &rec) })
	if errors.Is(err, kv.ErrNotFound) {
		return fmt.Errorf("alias %s: %w", alias, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if rec.Creator != userID {
		pl, err := n.powerLevels(ctx, rec.RoomID)
		if err != nil {
			return err
		}
		if pl.UserLevel(senderOf(userID)) < pl.EventLevel("m.room.canonical_alias", true) {
			return fmt.Errorf("%w: not the alias creator and not a room moderator", ErrForbidden)
		}
	}
	return n.DB.Update(func(tx *kv.Txn) error {
		if err := tx.Delete(aliasKey(alias)); err != nil {
			return err
		}
		return tx.Delete(roomAliasKey(rec.RoomID, alias))
	})
}

// RoomAliases lists the local aliases of a room.
func (n *Node) RoomAliases(ctx context.Context, roomID string) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(tRoomAliases, roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			a, err := kv.LastString(k)
			out = append(out, a)
			return err == nil, err
		})
	})
	return out, err
}

// RoomAlias is what an alias resolves to: the room and servers to join it
// through.
type RoomAlias struct {
	RoomID  string   `json:"room_id"`
	Servers []string `json:"servers"`
}
