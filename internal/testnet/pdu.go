package testnet

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// SignPDU builds proto as an event of room version verImpl, stamped at
// and signed as server with key (under identity.KeyID, the key ID every
// edgenode server uses): how a test plays another server, honest or
// hostile, whose events a node under test takes in over federation.
func SignPDU(tb testing.TB, verImpl gomatrixserverlib.IRoomVersion, proto gomatrixserverlib.ProtoEvent, at time.Time, server string, key ed25519.PrivateKey) gomatrixserverlib.PDU {
	tb.Helper()
	ev, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(at, spec.ServerName(server), identity.KeyID, key)
	if err != nil {
		tb.Fatalf("build %s event as %s: %v", proto.Type, server, err)
	}
	return ev
}
