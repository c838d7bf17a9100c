package mobile

import (
	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/node/push"
)

// eventQueue bounds the new-event calls waiting for the app.
const eventQueue = 1024

// EventListener hears of each event that reaches one of the node's users:
// another user's event (from this node or another) in a room the user is
// in, or an invite of the user; never the user's own events. An app that
// is in the background uses it to show local notifications. Its method is
// called from a goroutine of the node's, one event at a time; it should
// return promptly: while the app is behind, events are queued up to a bound
// and then dropped (DroppedEvents counts them; a sync catches up).
type EventListener interface {
	// OnEvent: eventID arrived in roomID from sender, for userID (the
	// local user it concerns). notify says whether it notifies the user by
	// their push rules (a message does, a reaction or an edit does not);
	// highlight whether it also highlights (a mention).
	OnEvent(userID, roomID, eventID, sender string, notify, highlight bool)
}

// SetEventListener registers l (nil removes it). It applies at once, to a
// running node too.
func (n *Node) SetEventListener(l EventListener) {
	defer swallowed()
	n.lmu.Lock()
	n.eventListener = l
	n.lmu.Unlock()
	if a, err := n.running(); err == nil {
		n.hookEvents(a)
	}
}

// hookEvents sets the app's new-event handler if a listener is set.
func (n *Node) hookEvents(a *app.App) {
	n.lmu.Lock()
	on := n.eventListener != nil
	n.lmu.Unlock()
	if !on {
		a.SetNewEventHandler(nil)
		return
	}
	a.SetNewEventHandler(func(ev push.NewEvent) {
		n.eventCalls.post(func() {
			n.lmu.Lock()
			l := n.eventListener
			n.lmu.Unlock()
			if l != nil {
				l.OnEvent(ev.UserID, ev.RoomID, ev.EventID, ev.Sender, ev.Notify, ev.Highlight)
			}
		})
	})
}

// DroppedEvents counts the events not given to the EventListener because
// the app was behind, since NewNode.
func (n *Node) DroppedEvents() int64 {
	defer swallowed()
	dropped := n.eventCalls.droppedCount()
	n.mu.Lock()
	defer n.mu.Unlock()
	dropped += n.eventsDroppedBefore
	if n.app != nil {
		dropped += n.app.NewEventsDropped()
	}
	return dropped
}
