package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
	"github.com/matrix-org/util"
	"github.com/sirupsen/logrus"
)

func TestPublicKeyFromServerName(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	name := ServerNameForKey(pub)
	got, err := PublicKeyFromServerName(name)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("PublicKeyFromServerName(%s) = %x, %v; want %x", name, got, err, pub)
	}
	for _, bad := range []string{
		"", "example.org", strings.ToUpper(name), name[:62], name + "00", name[:63] + "g",
		name + ":8448", " " + name[1:], name[:10] + "-" + name[11:],
	} {
		if _, err := PublicKeyFromServerName(bad); !errors.Is(err, ErrNotKeyDerived) {
			t.Errorf("PublicKeyFromServerName(%q) error = %v, want ErrNotKeyDerived", bad, err)
		}
	}
}

func TestKeyRing(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	name := ServerNameForKey(pub)
	// The library's KeyRing logs through the context's logger.
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	ctx := util.ContextWithLogger(context.Background(), logrus.NewEntry(quiet))
	now := time.Now()

	msg, err := gomatrixserverlib.SignJSON(name, KeyID, priv, []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := gomatrixserverlib.SignJSON(name, KeyID, otherPriv, []byte(`{"hello":"world"}`))
	otherKeyID, _ := gomatrixserverlib.SignJSON(name, "ed25519:other", priv, []byte(`{"hello":"world"}`))
	reqs := []gomatrixserverlib.VerifyJSONRequest{
		{ServerName: spec.ServerName(name), AtTS: spec.AsTimestamp(now), ValidityCheckingFunc: gomatrixserverlib.StrictValiditySignatureCheck, Message: msg},
		{ServerName: spec.ServerName(name), AtTS: spec.AsTimestamp(now), ValidityCheckingFunc: gomatrixserverlib.StrictValiditySignatureCheck, Message: forged},
		{ServerName: "example.org", AtTS: spec.AsTimestamp(now), ValidityCheckingFunc: gomatrixserverlib.StrictValiditySignatureCheck, Message: msg},
		{ServerName: spec.ServerName(name), AtTS: spec.AsTimestamp(now), ValidityCheckingFunc: gomatrixserverlib.StrictValiditySignatureCheck, Message: otherKeyID},
	}
	want := []bool{true, false, false, false}

	// Directly, and through the library's KeyRing backed by derived keys.
	for _, v := range []gomatrixserverlib.JSONVerifier{KeyRing{}, LibraryKeyRing()} {
		res, err := v.VerifyJSONs(ctx, reqs)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		for i, r := range res {
			if (r.Error == nil) != want[i] {
				t.Errorf("%T request %d: error = %v, want valid=%v", v, i, r.Error, want[i])
			}
		}
	}

	// FetchKeys answers for derived names only, valid beyond the asked time.
	later := spec.AsTimestamp(now.Add(30 * 24 * time.Hour))
	got, err := KeyRing{}.FetchKeys(ctx, map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp{
		{ServerName: spec.ServerName(name), KeyID: KeyID}:       later,
		{ServerName: "example.org", KeyID: KeyID}:               later,
		{ServerName: spec.ServerName(name), KeyID: "ed25519:x"}: later,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := got[gomatrixserverlib.PublicKeyLookupRequest{ServerName: spec.ServerName(name), KeyID: KeyID}]
	if len(got) != 1 || !ok || !ed25519.PublicKey(r.Key).Equal(pub) || r.ValidUntilTS <= later {
		t.Fatalf("FetchKeys = %+v", got)
	}
}
