// Package mediaref notices the media other servers' events reference, so
// the node can fetch it while the origin is reachable ("there when the
// sender sleeps"): an image's thumbnail and file, an encrypted
// attachment's, a member's avatar.
//
// It hangs off the room commit as an indexer that writes nothing
// (core.Indexer). Once a batch is durable, its action extracts the mxc://
// URIs of the batch's events sent by other servers' users in rooms with
// local members and puts them in a bounded queue, never waiting: when the
// queue is full they are dropped and counted. Whoever drains the queue
// (app's prefetch worker) decides what to fetch and within which budget.
// The queue is off until enabled, and then costs the commit nothing but
// the check.
package mediaref

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"

	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
)

// QueueSize bounds the references waiting to be fetched.
const QueueSize = 256

// Kind is what a reference is to.
type Kind int

// Kinds of references.
const (
	// Thumbnail is a message's thumbnail (info.thumbnail_url or
	// info.thumbnail_file.url): small, shown in the timeline.
	Thumbnail Kind = iota
	// Avatar is a member's avatar_url.
	Avatar
	// File is a message's file itself (url or file.url).
	File
)

// Ref is one media reference of another server's event.
type Ref struct {
	// Origin and ID are the mxc://<Origin>/<ID> parts.
	Origin, ID string
	Kind       Kind
	// Size is the size the event announces (info.size or
	// info.thumbnail_info.size); 0 if none.
	Size int64
}

// Queue is the bounded queue of references. The zero value is unusable;
// NewQueue makes one.
type Queue struct {
	serverName string
	c          chan Ref
	on         atomic.Bool
	dropped    atomic.Int64
}

// NewQueue returns a disabled queue for the node serverName (whose own
// media is never queued).
func NewQueue(serverName string) *Queue {
	return &Queue{serverName: serverName, c: make(chan Ref, QueueSize)}
}

// SetEnabled turns queueing on or off (off: commits queue nothing).
func (q *Queue) SetEnabled(on bool) { q.on.Store(on) }

// Enabled reports whether references are queued.
func (q *Queue) Enabled() bool { return q.on.Load() }

// C is the queue's channel, for the one draining it.
func (q *Queue) C() <-chan Ref { return q.c }

// Dropped counts the references dropped because the queue was full.
func (q *Queue) Dropped() int64 { return q.dropped.Load() }

// push queues refs without waiting, dropping (and counting) what does not fit.
func (q *Queue) push(refs []Ref) {
	for i, r := range refs {
		select {
		case q.c <- r:
		default:
			q.dropped.Add(int64(len(refs) - i))
			return
		}
	}
}

// Indexer queues the media references of each durable commit's events
// from other servers (core.Indexer); it writes nothing.
type Indexer struct {
	core.NoPrepare
	Queue *Queue
}

// Index returns the hand-over when the queue is enabled and the batch may
// reference remote media seen by local users.
func (x Indexer) Index(_ *kv.Txn, c *core.RoomCommit, _ core.IndexPlan) (func(), error) {
	if x.Queue == nil || !x.Queue.Enabled() || len(c.Members) == 0 || len(c.Events) == 0 {
		return nil, nil
	}
	var refs []Ref
	for _, ev := range c.Events {
		refs = x.Queue.appendRefs(refs, ev.PDU)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	return func() { x.Queue.push(refs) }, nil
}

// messageContent is what of an m.room.message (or m.sticker) names media.
type messageContent struct {
	MsgType string `json:"msgtype"`
	URL     string `json:"url"`
	File    *struct {
		URL string `json:"url"`
	} `json:"file"`
	Info *struct {
		Size          int64  `json:"size"`
		ThumbnailURL  string `json:"thumbnail_url"`
		ThumbnailFile *struct {
			URL string `json:"url"`
		} `json:"thumbnail_file"`
		ThumbnailInfo *struct {
			Size int64 `json:"size"`
		} `json:"thumbnail_info"`
	} `json:"info"`
}

// appendRefs appends the remote media references of ev, if another
// server's user sent it.
func (q *Queue) appendRefs(refs []Ref, ev gomatrixserverlib.PDU) []Ref {
	sender := string(ev.SenderID())
	if i := strings.IndexByte(sender, ':'); i < 0 || sender[i+1:] == q.serverName {
		return refs
	}
	// Most events name no media: skip them before decoding anything.
	// ("mxc:" and not "mxc://": JSON may escape the slashes.)
	if !bytes.Contains(ev.Content(), []byte("mxc:")) {
		return refs
	}
	add := func(uri string, kind Kind, size int64) {
		if origin, id, ok := parseMXC(uri); ok && origin != q.serverName {
			refs = append(refs, Ref{Origin: origin, ID: id, Kind: kind, Size: max(size, 0)})
		}
	}
	switch ev.Type() {
	case "m.room.member":
		if ev.StateKey() == nil || *ev.StateKey() != sender {
			return refs // only a member's own avatar
		}
		var m struct {
			Membership string `json:"membership"`
			AvatarURL  string `json:"avatar_url"`
		}
		if json.Unmarshal(ev.Content(), &m) == nil && m.Membership == "join" {
			add(m.AvatarURL, Avatar, 0)
		}
	case "m.room.message", "m.sticker":
		var m messageContent
		if json.Unmarshal(ev.Content(), &m) != nil {
			return refs
		}
		if ev.Type() == "m.room.message" {
			switch m.MsgType {
			case "m.image", "m.file", "m.audio", "m.video":
			default:
				return refs
			}
		}
		if m.Info != nil {
			var size int64
			if m.Info.ThumbnailInfo != nil {
				size = m.Info.ThumbnailInfo.Size
			}
			add(m.Info.ThumbnailURL, Thumbnail, size)
			if m.Info.ThumbnailFile != nil {
				add(m.Info.ThumbnailFile.URL, Thumbnail, size)
			}
		}
		var size int64
		if m.Info != nil {
			size = m.Info.Size
		}
		add(m.URL, File, size)
		if m.File != nil {
			add(m.File.URL, File, size)
		}
	}
	return refs
}

// parseMXC splits mxc://<origin>/<id>. It checks the shape only; the
// media store checks the parts.
func parseMXC(uri string) (origin, id string, ok bool) {
	rest, ok := strings.CutPrefix(uri, "mxc://")
	if !ok {
		return "", "", false
	}
	origin, id, ok = strings.Cut(rest, "/")
	if !ok || origin == "" || id == "" || strings.ContainsRune(id, '/') {
		return "", "", false
	}
	return origin, id, true
}
