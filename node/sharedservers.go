package node

import (
	"context"

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
	err := n.db.View(func(tx *kv.Txn) error {
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
			err := tx.Each(kv.Scan{Prefix: roomServerPrefix(room)}, func(k, _ []byte) (bool, error) {
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
