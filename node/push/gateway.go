package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// The gateway worker: events that notify a user with pushers are handed,
// once their commit is durable, to a bounded queue (never blocking the
// commit: when it is full they are dropped and counted), and a few
// goroutines post them to each pusher's gateway in the push gateway API's
// format (POST /_matrix/push/v1/notify). A failed post (no answer, 5xx,
// 429) is retried with exponential backoff, a bounded number of times; a
// gateway that answers with the pusher's pushkey in "rejected" has the
// pusher deleted.
//
// Gateways on loopback or the LAN are allowed: the URL is the user's own
// choice for their own devices (a Pi node's owner running a gateway next to
// it), not something a remote party controls. What is bounded instead is
// each post: its time, the answer's size, and no redirects.

// Bounds of the gateway worker.
const (
	// PusherQueue bounds the notifications waiting for the workers.
	PusherQueue = 1024
	// pusherWorkers post in parallel, so one slow gateway does not hold up
	// every notification.
	pusherWorkers   = 2
	pushAttempts    = 6
	pushBackoff     = 200 * time.Millisecond
	pushMaxBackoff  = 10 * time.Second
	pushPostTimeout = 15 * time.Second
	maxGatewayReply = 64 << 10
)

// pushJob is one event that notifies one user with pushers.
type pushJob struct {
	userID  string
	pdu     gomatrixserverlib.PDU
	state   *core.State // the room's state as of the event
	verdict Verdict
}

// pusherState is the gateway worker's side of Push.
type pusherState struct {
	mu    sync.Mutex
	users map[string]bool // users with pushers (a superset: see recount)
	jobs  chan pushJob
	stop  context.CancelFunc
	wg    sync.WaitGroup

	dropped atomic.Int64
	client  *http.Client
}

// has reports whether userID may have pushers.
func (s *pusherState) has(userID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[userID]
}

// recount refreshes whether userID has pushers after a change.
func (s *pusherState) recount(n *Push, userID string) {
	recs, err := n.loadPushers(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]bool{}
	}
	if err != nil || len(recs) > 0 {
		s.users[userID] = true // on error, keep looking: the worker checks
	} else {
		delete(s.users, userID)
	}
}

// enqueue hands jobs to the workers without blocking.
func (s *pusherState) enqueue(jobs []pushJob) {
	s.mu.Lock()
	ch := s.jobs
	s.mu.Unlock()
	for _, j := range jobs {
		select {
		case ch <- j:
		default:
			s.dropped.Add(1)
		}
	}
}

// PushesDropped counts the notifications not sent to gateways because the
// queue was full.
func (n *Push) PushesDropped() int64 { return n.pushers.dropped.Load() }

// StartPushers loads which users have pushers and starts the gateway
// workers; node calls it once in New, and StopPushers on close.
func (n *Push) StartPushers() error {
	users := map[string]bool{}
	err := n.DB.View(func(tx *kv.Txn) error {
		return tx.Each(kv.Scan{Prefix: kv.Key(tPusher), KeysOnly: true}, func(k, _ []byte) (bool, error) {
			_, parts, err := kv.DecodeKey(k)
			if err != nil || len(parts) != 3 {
				return false, fmt.Errorf("pusher key %x: %v", k, err)
			}
			u, _ := parts[0].(string)
			users[u] = true
			return true, nil
		})
	})
	if err != nil {
		return err
	}
	s := &n.pushers
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	s.users, s.jobs, s.stop = users, make(chan pushJob, PusherQueue), cancel
	s.client = &http.Client{
		Timeout: pushPostTimeout,
		// A gateway answers itself; following redirects would post the
		// event elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	jobs := s.jobs
	s.mu.Unlock()
	for range pusherWorkers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			n.runPushers(ctx, jobs)
		}()
	}
	return nil
}

// StopPushers stops the workers (abandoning posts under way) and waits for
// them, so none reads the database once it closes.
func (n *Push) StopPushers() {
	s := &n.pushers
	s.mu.Lock()
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	s.wg.Wait()
}

func (n *Push) runPushers(ctx context.Context, jobs <-chan pushJob) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-jobs:
			if err := n.push(ctx, j); err != nil && ctx.Err() == nil {
				n.Logger().Warn("push gateway", "user_id", j.userID, "event_id", j.pdu.EventID(), "err", err)
			}
		}
	}
}

// push sends one notification to each of the user's pushers.
func (n *Push) push(ctx context.Context, j pushJob) error {
	var recs []pusherRecord
	var note gatewayNotification
	err := n.DB.View(func(tx *kv.Txn) error {
		var err error
		if recs, err = readPushers(tx, j.userID); err != nil || len(recs) == 0 {
			return err
		}
		note, err = n.buildNotification(tx, j)
		return err
	})
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		n.pushers.recount(n, j.userID)
		return nil
	}
	var errs []error
	for _, p := range recs {
		if err := n.pushTo(ctx, j.userID, p, note, j.verdict); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.AppID, err))
		}
	}
	return errors.Join(errs...)
}

// gatewayNotification is the push gateway API's notification, less the
// devices (one per post).
type gatewayNotification struct {
	EventID           string          `json:"event_id"`
	RoomID            string          `json:"room_id"`
	Type              string          `json:"type,omitempty"`
	Sender            string          `json:"sender,omitempty"`
	SenderDisplayName string          `json:"sender_display_name,omitempty"`
	RoomName          string          `json:"room_name,omitempty"`
	UserIsTarget      bool            `json:"user_is_target,omitempty"`
	Prio              string          `json:"prio"`
	Content           json.RawMessage `json:"content,omitempty"`
	Counts            gatewayCounts   `json:"counts"`
	Devices           []gatewayDevice `json:"devices"`
}

type gatewayCounts struct {
	Unread int `json:"unread"`
}

type gatewayDevice struct {
	AppID     string          `json:"app_id"`
	PushKey   string          `json:"pushkey"`
	PushKeyTS int64           `json:"pushkey_ts"`
	Data      json.RawMessage `json:"data,omitempty"`
	Tweaks    map[string]any  `json:"tweaks"`
}

// buildNotification fills in what a full-format notification says of the
// event: its sender's name and the room's as of the event, and the user's
// unread count across their rooms.
func (n *Push) buildNotification(tx *kv.Txn, j pushJob) (gatewayNotification, error) {
	ev := j.pdu
	note := gatewayNotification{
		EventID: ev.EventID(), RoomID: ev.RoomID().String(), Type: ev.Type(), Sender: string(ev.SenderID()),
		Content: ev.Content(), Prio: "low",
		UserIsTarget: ev.Type() == spec.MRoomMember && ev.StateKeyEquals(j.userID),
	}
	switch {
	case j.verdict.Highlight, j.verdict.Sound != "", ev.Type() == "m.room.message", ev.Type() == "m.room.encrypted", ev.Type() == "m.call.invite":
		note.Prio = "high"
	}
	look := &pushLookup{load: func(id string) (gomatrixserverlib.PDU, error) { return n.LoadPDU(tx, id) }}
	if j.state != nil {
		note.SenderDisplayName = look.displayName(j.state, note.Sender)
		if id, ok := j.state.Get("m.room.name", ""); ok {
			if pdu, err := n.LoadPDU(tx, id); err == nil {
				var c struct {
					Name json.RawMessage `json:"name"`
				}
				_ = json.Unmarshal(pdu.Content(), &c) // a bad name is no name
				note.RoomName, _ = jsonString(c.Name)
			}
		}
	}
	if look.err != nil {
		return note, look.err
	}
	// The badge: unread notifications across the user's rooms.
	err := tx.Each(kv.Scan{Prefix: kv.Key(core.TableUnread, j.userID)}, func(_, v []byte) (bool, error) {
		rec, err := decodeUnread(v)
		note.Counts.Unread += rec.Notify
		return err == nil, err
	})
	return note, err
}

// pushTo posts note to one pusher, retrying failures with backoff.
func (n *Push) pushTo(ctx context.Context, userID string, p pusherRecord, note gatewayNotification, v Verdict) error {
	var data map[string]json.RawMessage
	if err := json.Unmarshal(p.Data, &data); err != nil {
		return err
	}
	gateway, _ := jsonString(data["url"])
	delete(data, "url") // the spec: forward data without url
	dataJSON, err := json.Marshal(data)
	if err != nil {
		return err
	}
	tweaks := map[string]any{}
	if v.Sound != "" {
		tweaks["sound"] = v.Sound
	}
	if v.Highlight {
		tweaks["highlight"] = true
	}
	if format, _ := jsonString(data["format"]); format == "event_id_only" {
		note = gatewayNotification{EventID: note.EventID, RoomID: note.RoomID, Prio: note.Prio, Counts: note.Counts}
	}
	note.Devices = []gatewayDevice{{AppID: p.AppID, PushKey: p.PushKey, PushKeyTS: p.TS / 1000, Data: dataJSON, Tweaks: tweaks}}
	body, err := json.Marshal(map[string]any{"notification": note})
	if err != nil {
		return err
	}
	backoff := pushBackoff
	for attempt := 1; ; attempt++ {
		rejected, retry, err := n.postOnce(ctx, gateway, body)
		if err == nil {
			if slices.Contains(rejected, p.PushKey) {
				n.Logger().Info("push gateway rejected a pushkey: pusher deleted", "user_id", userID, "app_id", p.AppID)
				if err := n.DB.Update(func(tx *kv.Txn) error { return deletePusher(tx, userID, p.AppID, p.PushKey) }); err != nil {
					return err
				}
				n.pushers.recount(n, userID)
			}
			return nil
		}
		if !retry || attempt >= pushAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, pushMaxBackoff)
	}
}

// postOnce posts body to a gateway and reads the pushkeys it rejected.
// retry says whether a failure may pass (no answer, 5xx, 429).
func (n *Push) postOnce(ctx context.Context, gateway string, body []byte) (rejected []string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gateway, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	n.pushers.mu.Lock()
	client := n.pushers.client
	n.pushers.mu.Unlock()
	res, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	defer res.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(res.Body, maxGatewayReply))
	if err != nil {
		return nil, true, err
	}
	if res.StatusCode/100 != 2 {
		retry := res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests
		return nil, retry, fmt.Errorf("gateway answered %d: %.200s", res.StatusCode, strings.TrimSpace(string(reply)))
	}
	var r struct {
		Rejected []string `json:"rejected"`
	}
	_ = json.Unmarshal(reply, &r) // a 2xx without a body we can read rejects nothing
	return r.Rejected, false, nil
}
