package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrix"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/fclient"
	"github.com/matrix-org/gomatrixserverlib/spec"
	"github.com/matrix-org/util"
	"github.com/sirupsen/logrus"
)

// Client sends signed server-server requests from a node.
//
// Requests go through the RoundTripper given to NewClient with URLs of the
// form matrix://<server name>/<path>: the transport maps req.URL.Host (a
// key-derived server name) to the peer and may ignore the scheme.
type Client struct {
	n      ClientNode
	fc     fclient.FederationClient
	log    *slog.Logger
	liblog *logrus.Entry

	// stream sends the requests whose answers are streamed (media,
	// mediaclient.go): no overall timeout, as a large file may take long;
	// the caller's context and a stall timer bound them instead.
	stream *http.Client
}

// NewClient returns a client that signs requests with n's key and sends them
// through rt.
func NewClient(n ClientNode, rt http.RoundTripper) *Client {
	log := n.Logger().With("component", "federation-client")
	id := &fclient.SigningIdentity{
		ServerName: spec.ServerName(n.ServerName()),
		KeyID:      identity.KeyID,
		PrivateKey: n.SigningKey(),
	}
	return &Client{
		n:      n,
		fc:     fclient.NewFederationClient([]*fclient.SigningIdentity{id}, fclient.WithTransport(retryLimited{rt})),
		stream: newStreamClient(rt),
		log:    log,
		liblog: libraryLogger(log),
	}
}

// ctx routes the library's logs for a request into the node's logger.
func (c *Client) ctx(ctx context.Context) context.Context {
	return util.ContextWithLogger(ctx, c.liblog)
}

// checkServer refuses destinations that are not key-derived names (they could
// not be authenticated) and the node itself.
func (c *Client) checkServer(server string) error {
	if _, err := identity.PublicKeyFromServerName(server); err != nil {
		return err
	}
	if server == c.n.ServerName() {
		return fmt.Errorf("federation: %s is this server", server)
	}
	return nil
}

// RemoteError is an error response from a remote server.
type RemoteError struct {
	Status  int    // HTTP status
	Code    string // Matrix errcode; empty when the body was not a Matrix error
	Message string
	// RetryAfter is the wait a 429 M_LIMIT_EXCEEDED asked for (0 if none).
	RetryAfter time.Duration
}

func (e *RemoteError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("remote error %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("remote error %d %s: %s", e.Status, e.Code, e.Message)
}

// remoteError turns the library's HTTP errors into *RemoteError.
func remoteError(err error) error {
	var he gomatrix.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	re := &RemoteError{Status: he.Code, Message: string(he.Contents)}
	if me, ok := he.WrappedError.(gomatrix.RespError); ok {
		re.Code, re.Message = me.ErrCode, me.Err
	}
	var limited struct {
		RetryAfterMS int64 `json:"retry_after_ms"`
	}
	if he.Code == http.StatusTooManyRequests && json.Unmarshal(he.Contents, &limited) == nil && limited.RetryAfterMS > 0 {
		re.RetryAfter = time.Duration(min(limited.RetryAfterMS, int64(time.Hour/time.Millisecond))) * time.Millisecond
	}
	if len(re.Message) > 512 {
		re.Message = re.Message[:512]
	}
	return re
}

// QueryProfile asks server for the profile of one of its users; field is
// "", "displayname" or "avatar_url". An error response from the server is a
// *RemoteError in the returned error's chain, under the node error it means
// (queryError). It implements inbound.RemoteQuerier.
func (c *Client) QueryProfile(ctx context.Context, server, userID, field string) (core.Profile, error) {
	if err := c.checkServer(server); err != nil {
		return core.Profile{}, nodeError(err) // no way to reach it
	}
	res, err := c.fc.LookupProfile(c.ctx(ctx), spec.ServerName(c.n.ServerName()), spec.ServerName(server), userID, field)
	if err != nil {
		return core.Profile{}, fmt.Errorf("federation: query profile of %s on %s: %w", userID, server, nodeError(err))
	}
	return core.Profile{DisplayName: res.DisplayName, AvatarURL: res.AvatarURL}, nil
}

// SendTransaction sends a transaction of PDUs (and EDUs) to txn.Destination
// with PUT /_matrix/federation/v1/send/{txnID}. An error response from the
// server is a *RemoteError in the returned error's chain.
func (c *Client) SendTransaction(ctx context.Context, txn gomatrixserverlib.Transaction) (fclient.RespSend, error) {
	if err := c.checkServer(string(txn.Destination)); err != nil {
		return fclient.RespSend{}, err
	}
	res, err := c.fc.SendTransaction(c.ctx(ctx), txn)
	if err != nil {
		return res, fmt.Errorf("federation: send transaction %s to %s: %w", txn.TransactionID, txn.Destination, remoteError(err))
	}
	return res, nil
}

// nodeError maps a failed request to another server to the node error it
// means, for the node and then the client API: the server's 403 and 404
// are ErrForbidden and ErrNotFound, a refused room version is
// ErrUnsupportedRoomVersion, and anything else (no route to the server, a
// timeout, another status, an answer that is not what the spec says) is
// ErrRemoteUnavailable (502). A *RemoteError stays in the chain.
func nodeError(err error) error {
	err = remoteError(err)
	var re *RemoteError
	switch {
	case errors.As(err, &re) && re.Status == http.StatusForbidden:
		return fmt.Errorf("%w: %w", core.ErrForbidden, err)
	case errors.As(err, &re) && re.Status == http.StatusNotFound:
		return fmt.Errorf("%w: %w", core.ErrNotFound, err)
	case errors.As(err, &re) && (re.Code == "M_INCOMPATIBLE_ROOM_VERSION" || re.Code == "M_UNSUPPORTED_ROOM_VERSION"):
		return fmt.Errorf("%w: %w", core.ErrUnsupportedRoomVersion, err)
	case errors.Is(err, context.Canceled):
		return err // the caller gave up: not the remote's fault
	}
	return fmt.Errorf("%w: %w", core.ErrRemoteUnavailable, err)
}
