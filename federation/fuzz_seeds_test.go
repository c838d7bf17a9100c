package federation

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/testnet"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// realisticTxnSeeds are /send bodies as a real server sends them: a signed
// room's first events (create, the creator's join), then the same
// truncated, with a PDU's fields of the wrong type, and with the PDU list
// over the limit, so fuzzing starts from inputs that reach deep into
// parsing and room input.
func realisticTxnSeeds(tb testing.TB) []string {
	tb.Helper()
	// A fixed key: the seeds are the same on every run.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	server := identity.ServerNameForKey(pub)
	user := "@alice:" + server
	verImpl, err := gomatrixserverlib.GetRoomVersion(gomatrixserverlib.RoomVersionV10)
	if err != nil {
		tb.Fatal(err)
	}
	roomID := "!seed:" + server
	build := func(typ, stateKey string, content string, prev []string, depth int64) gomatrixserverlib.PDU {
		proto := gomatrixserverlib.ProtoEvent{SenderID: user, RoomID: roomID, Type: typ, StateKey: &stateKey,
			PrevEvents: prev, AuthEvents: prev, Depth: depth, Content: spec.RawJSON(content)}
		ev := testnet.SignPDU(tb, verImpl, proto, time.UnixMilli(1_700_000_000_000), server, key)
		return ev
	}
	create := build(spec.MRoomCreate, "", `{"creator":"`+user+`","room_version":"10"}`, []string{}, 1)
	join := build(spec.MRoomMember, user, `{"membership":"join"}`, []string{create.EventID()}, 2)
	txn := func(pdus ...json.RawMessage) string {
		b, _ := json.Marshal(map[string]any{"origin": server, "origin_server_ts": int64(1_700_000_000_000), "pdus": pdus, "edus": []any{}})
		return string(b)
	}
	full := txn(create.JSON(), join.JSON())
	many := make([]json.RawMessage, MaxTxnPDUs+1)
	for i := range many {
		many[i] = join.JSON()
	}
	return []string{
		full,
		full[:len(full)/2],
		txn(create.JSON()),
		strings.Replace(full, `"depth":2`, `"depth":"2"`, 1),
		strings.Replace(full, `"prev_events":[`, `"prev_events":[5,`, 1),
		strings.Replace(full, `"content":{"membership":"join"}`, `"content":["join"]`, 1),
		txn(many...),
	}
}
