package core

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/edgenode/edgenode/kv"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// SharedServersGen is a number that changes whenever room membership does:
// SharedServers may have changed since it was read under another number.
func (n *Node) SharedServersGen() uint64 { return n.membersGen.Load() }

// SharedServers is the set of other servers that have a joined member in a
// room where a local user is joined: the peers whose traffic the node's
// users want. Inbound federation gives them priority over strangers
// (federation/globallimits.go). Its size is bounded by the rooms' members.
func (n *Node) SharedServers(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := n.DB.View(func(tx *kv.Txn) error {
		var rooms []string
		last := ""
		err := tx.Each(kv.Scan{Prefix: kv.Key(tLocalMember)}, func(k, v []byte) (bool, error) {
			if string(v) != spec.Join {
				return true, nil
			}
			_, parts, err := kv.DecodeKey(k)
			if err != nil || len(parts) != 2 {
				return err == nil, err
			}
			if room, _ := parts[0].(string); room != last {
				rooms, last = append(rooms, room), room
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, room := range rooms {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := tx.Each(kv.Scan{Prefix: RoomServerPrefix(room)}, func(k, _ []byte) (bool, error) {
				server, err := kv.LastString(k)
				if err == nil && server != n.serverName {
					out[server] = true
				}
				return err == nil, err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func RoomServerKey(roomID, server string) []byte { return kv.Key(TableRoomServers, roomID, server) }

func RoomServerPrefix(roomID string) []byte { return kv.Key(TableRoomServers, roomID) }

// ServerOf is the server name part of a user ID ("" if it has none).
func ServerOf(userID string) string {
	_, server, ok := strings.Cut(userID, ":")
	if !ok || !strings.HasPrefix(userID, "@") {
		return ""
	}
	return server
}

// noteJoinedServer keeps the room's joined-servers index (tRoomServers: room
// ID, server -> number of joined members) as a member key's membership
// changes from was to now. Runs in the commit transaction.
func (b *Batch) noteJoinedServer(tx *kv.Txn, userID, was, now string) error {
	server := ServerOf(userID)
	if server == "" {
		return nil
	}
	wasJoined, isJoined := was == spec.Join, now == spec.Join
	if wasJoined == isJoined {
		return nil
	}
	key := RoomServerKey(b.RoomID, server)
	var count uint64
	v, err := tx.Get(key)
	switch {
	case err == nil && len(v) == 8:
		count = binary.BigEndian.Uint64(v)
	case err != nil && !errors.Is(err, kv.ErrNotFound):
		return err
	}
	if isJoined {
		count++
	} else if count > 0 {
		count--
	}
	if count == 0 {
		return tx.Delete(key)
	}
	return tx.Set(key, binary.BigEndian.AppendUint64(nil, count))
}

// MembershipOf is the membership a member event sets ("" for no event).
func (b *Batch) MembershipOf(tx *kv.Txn, eventID string) (string, error) {
	if eventID == "" {
		return "", nil
	}
	if p, ok := b.ByID[eventID]; ok {
		return p.PDU.Membership()
	}
	ev, err := b.Node.LoadPDU(tx, eventID)
	if err != nil {
		return "", err
	}
	return ev.Membership()
}

// JoinedServers lists the servers with a joined member in a room, this one
// included when it has one.
func (n *Node) JoinedServers(ctx context.Context, roomID string) ([]string, error) {
	var out []string
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: RoomServerPrefix(roomID), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			s, err := kv.LastString(k)
			out = append(out, s)
			return err == nil, err
		})
	})
	return out, err
}
