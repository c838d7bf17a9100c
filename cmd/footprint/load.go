package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/edgenode/edgenode/p2ptransport"
	"golang.org/x/sync/errgroup"
)

// loadWorkers send in parallel: commits are serialised by the node, but
// parallel requests keep it busy while one request is in flight.
const loadWorkers = 8

// client is a Matrix client of the measured node.
type client struct {
	base  string
	token string
	http  *http.Client
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// register creates the load's user (the node runs with open registration).
func register(ctx context.Context, base string) (*client, error) {
	c := &client{base: base, http: &http.Client{Timeout: time.Minute}}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	err := c.do(ctx, "POST", "/_matrix/client/v3/register", map[string]any{
		"username": "footprint", "password": "footprint password",
		"auth": map[string]any{"type": "m.login.dummy"},
	}, &out)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	c.token = out.AccessToken
	return c, nil
}

// loadRooms creates rooms rooms and sends events messages into each, from
// loadWorkers workers. It returns the number of distinct events stored.
func loadRooms(ctx context.Context, c *client, rooms, events int) (int, error) {
	ids := make([]string, rooms)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(loadWorkers)
	for i := range ids {
		g.Go(func() error {
			var out struct {
				RoomID string `json:"room_id"`
			}
			if err := c.do(gctx, "POST", "/_matrix/client/v3/createRoom", map[string]any{"name": fmt.Sprintf("room %d", i)}, &out); err != nil {
				return err
			}
			ids[i] = out.RoomID
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var mu sync.Mutex
	sent := map[string]bool{} // event IDs: a replayed transaction would repeat one
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(loadWorkers)
	// Round-robin over rooms, as chat arrives.
	for e := range events {
		for r, id := range ids {
			g.Go(func() error {
				// Transaction IDs are per device, not per room: unique across the load.
				path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/r%d-e%d", url.PathEscape(id), r, e)
				body := map[string]any{"msgtype": "m.text", "body": fmt.Sprintf("message %d in room %d: a line of chat of a typical length, about eighty bytes", e, r)}
				var out struct {
					EventID string `json:"event_id"`
				}
				if err := c.do(gctx, "PUT", path, body, &out); err != nil {
					return err
				}
				mu.Lock()
				sent[out.EventID] = true
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if len(sent) != rooms*events {
		return 0, fmt.Errorf("load: %d distinct events for %d sends", len(sent), rooms*events)
	}
	return len(sent), nil
}

// syncOnce makes one initial /sync, as a client does when it opens.
func syncOnce(ctx context.Context, c *client) error {
	return c.do(ctx, "GET", "/_matrix/client/v3/sync?timeout=0", nil, nil)
}

// connectPeers starts n libp2p hosts in this process and connects each to
// the node at addr. The caller closes them.
func connectPeers(ctx context.Context, n int, addr string) ([]*p2ptransport.Host, error) {
	var hosts []*p2ptransport.Host
	quiet := slog.New(slog.DiscardHandler)
	for range n {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return hosts, err
		}
		h, err := p2ptransport.New(ctx, p2ptransport.Config{
			PrivateKey:  key,
			ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"},
			Logger:      quiet,
		})
		if err != nil {
			return hosts, err
		}
		hosts = append(hosts, h)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = h.Connect(cctx, addr)
		cancel()
		if err != nil {
			return hosts, fmt.Errorf("peer connect: %w", err)
		}
	}
	return hosts, nil
}
