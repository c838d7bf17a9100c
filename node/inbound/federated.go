package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/internal/jsontext"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/node/core"
	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"
)

// ErrMissingEvents: an inbound PDU names prev or auth events the node does
// not have, and fetching them from the sending server (get_missing_events,
// fedmissing.go; then /event_auth and the state at the missing prev
// events, fedgap.go; when an EventFetcher is set) did not bring them. Such
// a PDU is refused and not stored; the sender may send it again.
var ErrMissingEvents = errors.New("missing prev or auth events")

// FederatedInput is a batch of PDUs received from another server.
type FederatedInput struct {
	// Origin is the authenticated server the PDUs came from (for logs; each
	// PDU's signatures are checked on their own, whoever relayed it).
	Origin string
	PDUs   []json.RawMessage
	// AllowNewRooms lets an m.room.create PDU start a room the node does not
	// know yet. Without it, PDUs for unknown rooms are refused: rooms become
	// known by joining them (make_join/send_join, fedjoin.go). /send never
	// sets it; it exists for tests.
	AllowNewRooms bool

	// noFetch: do not fetch missing prev events (set on the input of what
	// a fetch brought: the rounds are the fetcher's to count).
	noFetch bool
}

// FederatedPDUResult is the outcome of one inbound PDU, in input order.
type FederatedPDUResult struct {
	// EventID is "" when the PDU could not be parsed far enough to have one
	// (not JSON, unknown room or version, too large).
	EventID string
	RoomID  string
	// Err is nil when the event was accepted or was already stored.
	// Otherwise: ErrBadInput (does not parse), ErrTooLarge, ErrNotFound
	// (unknown room), ErrUnsupportedRoomVersion, ErrInvalidSignature (not
	// stored), ErrMissingEvents (not stored), ErrForbidden for a room no
	// local user is joined to (not stored, fedunjoined.go), or an
	// *InputError: rejected by auth (not stored; the verdict is remembered,
	// rejectedmarks.go) or soft-failed (stored, not served).
	Err error
	// Redacted is true when the content hash did not match: the event was
	// kept in its redacted form, as the spec says.
	Redacted bool
}

// pduHeader is what is read from a PDU before its room version is known.
type pduHeader struct {
	RoomID   string  `json:"room_id"`
	Type     string  `json:"type"`
	StateKey *string `json:"state_key"`
	Content  struct {
		RoomVersion *string `json:"room_version"`
	} `json:"content"`
}

func (h *pduHeader) isCreate() bool {
	return h.Type == spec.MRoomCreate && h.StateKey != nil && *h.StateKey == ""
}

// InputFederatedPDUs checks and inputs PDUs received over federation. Each
// PDU is parsed with its room's version (over maxEventSize bytes refused); a
// content-hash mismatch keeps the redacted form; signatures are checked
// against keys derived from the signing servers' names, and an event with a
// bad signature is dropped. The rest go through the same room input as local
// events (auth against their own auth events and the state before them,
// soft-fail against current state), in topological order per room, in
// batches (one transaction each) of at most federatedBatchEvents. Events
// already stored are no-ops.
// PDUs whose prev events are unknown get them fetched from in.Origin
// (bounded rounds of get_missing_events per room, see fetchMissingPrevs)
// when the node has an EventFetcher, and are input again with them; those
// still missing some get their auth events and the state at their prev
// events fetched (fillGaps) and are input once more.
//
// A problem with one PDU is its result's Err and never stops the others; the
// returned error is for a cancelled ctx or a storage failure only.
func (n *Inbound) InputFederatedPDUs(ctx context.Context, in FederatedInput) ([]FederatedPDUResult, error) {
	results, headers := readPDUHeaders(in.PDUs)

	versions, err := n.federatedRoomVersions(headers, in.AllowNewRooms)
	if err != nil {
		return nil, err
	}
	if n.awaitJoins(ctx, headers, versions) {
		if versions, err = n.federatedRoomVersions(headers, in.AllowNewRooms); err != nil {
			return nil, err
		}
	}

	unjoined, err := n.roomsWithoutLocalJoin(ctx, headers, versions, in.AllowNewRooms)
	if err != nil {
		return nil, err
	}

	p := n.parseFederatedPDUs(ctx, in, headers, versions, unjoined, results)
	if err := n.inputParsedPDUs(ctx, p, results); err != nil {
		return nil, err
	}
	if err := n.fetchMissingPrevs(ctx, in, results); err != nil {
		return nil, err
	}
	if err := n.fillGaps(ctx, in, results); err != nil {
		return nil, err
	}
	return results, nil
}

// readPDUHeaders reads each PDU's header (its room ID and what decides its
// room version), refusing a PDU over maxEventSize or without a valid room
// ID in its result. A refused PDU's header is nil.
func readPDUHeaders(pdus []json.RawMessage) ([]FederatedPDUResult, []*pduHeader) {
	results := make([]FederatedPDUResult, len(pdus))
	headers := make([]*pduHeader, len(pdus))
	for i, raw := range pdus {
		if len(raw) > core.MaxEventSize {
			results[i].Err = fmt.Errorf("PDU is %d bytes: %w", len(raw), core.ErrTooLarge)
			continue
		}
		var h pduHeader
		if err := json.Unmarshal(raw, &h); err != nil {
			results[i].Err = fmt.Errorf("%w: PDU: %v", core.ErrBadInput, err)
			continue
		}
		if h.RoomID == "" {
			results[i].Err = fmt.Errorf("%w: PDU has no room_id", core.ErrBadInput)
			continue
		}
		if _, err := spec.NewRoomID(h.RoomID); err != nil {
			// The library's PDU.RoomID panics on such an ID (its parser lets
			// "!:" through), so it must never reach it.
			results[i].Err = fmt.Errorf("%w: PDU room_id: %v", core.ErrBadInput, err)
			continue
		}
		results[i].RoomID = h.RoomID
		headers[i] = &h
	}
	return results, headers
}

// parsedPDUs are the PDUs of one federated input that parsed and verified,
// by index into the input, grouped by room.
type parsedPDUs struct {
	rooms  []string         // in order of first appearance
	byRoom map[string][]int // room ID -> indexes
	parsed map[int]gomatrixserverlib.PDU
	dupOf  map[int]int // a repeat of an event -> its first index
}

// parseFederatedPDUs parses and verifies each PDU with a header on its own,
// with its room's version, setting its result's event ID and Redacted, and
// Err when it is refused: a room unknown here, a room no local user is in
// (unless the PDU is about a local member), a parse or signature failure.
func (n *Inbound) parseFederatedPDUs(ctx context.Context, in FederatedInput, headers []*pduHeader, versions map[string]gomatrixserverlib.RoomVersion, unjoined map[string]bool, results []FederatedPDUResult) *parsedPDUs {
	p := &parsedPDUs{byRoom: map[string][]int{}, parsed: map[int]gomatrixserverlib.PDU{}, dupOf: map[int]int{}}
	seen := map[string]int{}
	for i, h := range headers {
		if h == nil {
			continue
		}
		version, ok := versions[h.RoomID]
		if !ok {
			results[i].Err = fmt.Errorf("room %s: %w", h.RoomID, core.ErrNotFound)
			continue
		}
		if unjoined[h.RoomID] && !n.aboutLocalMember(h) {
			results[i].Err = fmt.Errorf("%w: no user of this server is in room %s", core.ErrForbidden, h.RoomID)
			continue
		}
		ev, redacted, err := n.parseFederatedPDU(ctx, version, in.PDUs[i])
		if ev != nil {
			results[i].EventID = ev.EventID()
		}
		results[i].Redacted = redacted
		if err != nil {
			results[i].Err = err
			continue
		}
		if ev.RoomID().String() != h.RoomID {
			results[i].Err = fmt.Errorf("%w: room_id does not parse consistently", core.ErrBadInput)
			continue
		}
		if j, dup := seen[ev.EventID()]; dup {
			p.dupOf[i] = j // the same event twice: input once, same result
			continue
		}
		seen[ev.EventID()] = i
		if redacted {
			n.Logger().Debug("inbound PDU failed its content hash; keeping the redacted form",
				"origin", in.Origin, "event_id", ev.EventID())
		}
		if _, ok := p.byRoom[h.RoomID]; !ok {
			p.rooms = append(p.rooms, h.RoomID)
		}
		p.byRoom[h.RoomID] = append(p.byRoom[h.RoomID], i)
		p.parsed[i] = ev
	}
	return p
}

// inputParsedPDUs inputs the parsed PDUs room by room, in topological order
// and batches of federatedBatchEvents, setting each one's result (and its
// repeats'). The error is a storage failure or a cancelled ctx.
func (n *Inbound) inputParsedPDUs(ctx context.Context, p *parsedPDUs, results []FederatedPDUResult) error {
	for _, roomID := range p.rooms {
		// In order, a batch at a time: each batch's prev events are in
		// the batches before it.
		for idx := range slices.Chunk(topoOrder(p.byRoom[roomID], p.parsed), federatedBatchEvents) {
			_, err := n.WithRoom(ctx, roomID, func(b *core.Batch) error {
				for _, i := range idx {
					results[i].Err = inputFederated(b, p.parsed[i])
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	for i, j := range p.dupOf {
		results[i].Err = results[j].Err
	}
	return nil
}

// federatedBatchEvents bounds the events of one room input in one batch,
// that is one transaction: as many as one /send transaction carries. The
// events that fill a gap (fedmissing.go: up to 500 fetched, with the PDUs
// that needed them) are more than Badger takes in one transaction on the
// phone profile (about 300 KiB).
const federatedBatchEvents = 50

// federatedRoomVersions is the version of every room the headers name that
// the node knows, and (with allowNew) of rooms a create event in the batch
// starts.
func (n *Inbound) federatedRoomVersions(headers []*pduHeader, allowNew bool) (map[string]gomatrixserverlib.RoomVersion, error) {
	versions := map[string]gomatrixserverlib.RoomVersion{}
	err := n.DB.View(func(tx *kv.Txn) error {
		for _, h := range headers {
			if h == nil {
				continue
			}
			if _, ok := versions[h.RoomID]; ok {
				continue
			}
			room, err := core.LoadRoom(tx, h.RoomID)
			switch {
			case err == nil:
				versions[h.RoomID] = room.Version
			case !errors.Is(err, core.ErrNotFound):
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if allowNew {
		for _, h := range headers {
			if h == nil || !h.isCreate() {
				continue
			}
			if _, ok := versions[h.RoomID]; ok {
				continue
			}
			v := gomatrixserverlib.RoomVersionV1 // the spec's default
			if h.Content.RoomVersion != nil {
				v = gomatrixserverlib.RoomVersion(*h.Content.RoomVersion)
			}
			versions[h.RoomID] = v
		}
	}
	return versions, nil
}

// parseFederatedPDU parses raw as an event of the given room version and
// checks its signatures. redacted reports a content-hash mismatch (the
// event returned is then the redacted form, which is kept).
func (n *Inbound) parseFederatedPDU(ctx context.Context, version gomatrixserverlib.RoomVersion, raw []byte) (ev gomatrixserverlib.PDU, redacted bool, err error) {
	// gomatrixserverlib's PDU accessors panic on some malformed fields
	// instead of failing its parser. A peer's bytes must never crash the
	// node, so a panic here is that PDU's error.
	defer func() {
		if v := recover(); v != nil {
			ev, redacted, err = nil, false, fmt.Errorf("%w: PDU: %v", core.ErrBadInput, v)
		}
	}()
	verImpl, err := gomatrixserverlib.GetRoomVersion(version)
	if err != nil || !core.RoomVersionSupported(version) {
		return nil, false, fmt.Errorf("room version %q: %w", version, core.ErrUnsupportedRoomVersion)
	}
	if err := jsontext.Check(raw); err != nil {
		// A peer's event must be text every server and client reads the
		// same way: stored and served as it came, it would be refused by
		// strict parsers and by every other server (issue 13, finding 3).
		return nil, false, fmt.Errorf("%w: PDU %v", core.ErrBadInput, err)
	}
	ev, err = verImpl.NewEventFromUntrustedJSON(raw)
	if err != nil {
		var ve gomatrixserverlib.EventValidationError
		if errors.As(err, &ve) && ve.Code == gomatrixserverlib.EventValidationTooLarge {
			return nil, false, fmt.Errorf("%w: %v", core.ErrTooLarge, err)
		}
		return nil, false, fmt.Errorf("%w: PDU: %v", core.ErrBadInput, err)
	}
	ev.EventID() // cache the ID before the PDU is shared
	if err := jsontext.DuplicateKey(raw); err != nil {
		// The library keeps the last of two values, and its canonical
		// JSON both; another server may read the first.
		return ev, false, fmt.Errorf("%w: event %s: %v", core.ErrBadInput, ev.EventID(), err)
	}
	if len(ev.JSON()) > core.MaxEventSize {
		return ev, false, fmt.Errorf("event is %d bytes: %w", len(ev.JSON()), core.ErrTooLarge)
	}
	if err := core.CheckInboundPDU(ev); err != nil {
		return ev, false, err
	}
	if err := gomatrixserverlib.VerifyEventSignatures(ctx, ev, identity.KeyRing{}, core.UserIDForSender); err != nil {
		return ev, ev.Redacted(), fmt.Errorf("%w: event %s: %v", core.ErrInvalidSignature, ev.EventID(), err)
	}
	return ev, ev.Redacted(), nil
}

// topoOrder sorts the PDUs at idx so that every event comes after those of
// its prev events that are in the batch: by depth, then event ID, among
// those whose in-batch prevs are done. Anything left (a cycle, which hashed
// IDs make impossible in practice) follows in depth order.
func topoOrder(idx []int, pdus map[int]gomatrixserverlib.PDU) []int {
	sorted := slices.Clone(idx)
	slices.SortStableFunc(sorted, func(a, b int) int {
		if c := cmp.Compare(pdus[a].Depth(), pdus[b].Depth()); c != 0 {
			return c
		}
		return strings.Compare(pdus[a].EventID(), pdus[b].EventID())
	})
	inBatch := make(map[string]bool, len(idx))
	for _, i := range idx {
		inBatch[pdus[i].EventID()] = true
	}
	done := map[string]bool{}
	out := make([]int, 0, len(idx))
	used := make([]bool, len(sorted))
	for progress := true; progress; {
		progress = false
		for k, i := range sorted {
			if used[k] {
				continue
			}
			ready := true
			for _, p := range pdus[i].PrevEventIDs() {
				if inBatch[p] && !done[p] {
					ready = false
					break
				}
			}
			if !ready {
				continue
			}
			used[k], progress = true, true
			done[pdus[i].EventID()] = true
			out = append(out, i)
			break // restart: keep depth order among the ready
		}
	}
	for k, i := range sorted {
		if !used[k] {
			out = append(out, i)
		}
	}
	return out
}

// inputFederated inputs a checked PDU: a no-op when stored, refused without
// storing when prev or auth events are missing, else b.input.
func inputFederated(b *core.Batch, ev gomatrixserverlib.PDU) error {
	id := ev.EventID()
	if _, ok := b.ByID[id]; ok {
		return nil
	}
	if ok, err := b.Tx.Has(core.EventKey(id)); err != nil || ok {
		return err
	}
	if err := b.Node.RejectedError(id, b.RoomID); err != nil {
		return err // rejected before: the same verdict, without the work
	}
	if err := b.RejectedRefs(id, ev.PrevEventIDs(), ev.AuthEventIDs()); err != nil {
		return err
	}
	var missingPrev, missingAuth []string
	for _, p := range ev.PrevEventIDs() {
		if ok, err := knownWithState(b, p); err != nil {
			return err
		} else if !ok {
			missingPrev = append(missingPrev, p)
		}
	}
	for _, a := range ev.AuthEventIDs() {
		if ok, err := known(b, a); err != nil {
			return err
		} else if !ok {
			missingAuth = append(missingAuth, a)
		}
	}
	if len(missingPrev) > 0 || len(missingAuth) > 0 {
		var parts []string
		if len(missingPrev) > 0 {
			parts = append(parts, "prev_events "+strings.Join(missingPrev, ", "))
		}
		if len(missingAuth) > 0 {
			parts = append(parts, "auth_events "+strings.Join(missingAuth, ", "))
		}
		return fmt.Errorf("event %s: %w: %s (not fetched)", id, ErrMissingEvents, strings.Join(parts, "; "))
	}
	return b.Input(ev, core.InputOpts{})
}

// known reports whether an event is in the batch or stored.
func known(b *core.Batch, id string) (bool, error) {
	if _, ok := b.ByID[id]; ok {
		return true, nil
	}
	return b.Tx.Has(core.EventKey(id))
}

// Inbound federation transactions, remembered per origin so a retried
// transaction is answered without being processed again.
const (
	tInboundTxn     = "inboundtxn"     // origin, txn ID -> inboundTxnRecord
	tInboundTxnSeq  = "inboundtxnseq"  // origin, seq -> txn ID (oldest first)
	tInboundTxnNext = "inboundtxnnext" // origin -> next seq (uint64)
)

// inboundTxnTimeout bounds the processing of one inbound transaction
// (InboundTxn): its fetches of missing events are bounded in number, each
// by the federation client's timeout.
const inboundTxnTimeout = 3 * time.Minute

// InboundTxnRetention is how many transaction IDs are remembered per origin;
// past it the oldest are forgotten.
const InboundTxnRetention = 1000

type inboundTxnRecord struct {
	Seq      uint64          `json:"s"`
	Response json.RawMessage `json:"r"`
}

// InboundTxn runs process at most once per (origin, txnID), storing its
// response: a repeat of a remembered transaction gets the stored response
// without process being called. Transactions from one origin run one at a
// time. An error from process is returned and nothing is stored, so a retry
// processes again (room input is idempotent: stored events are no-ops). The
// last InboundTxnRetention transaction IDs per origin are remembered.
//
// Only a transaction that had an effect (process reports durable: an event
// accepted, an EDU applied) is remembered on disk. One that changed nothing
// (every PDU refused: a peer filling the disk through a room it is not in
// sends thousands) is remembered in memory, in a small bounded cache:
// processed again after that, it changes nothing again and gets the same
// answer (rejected events are remembered by rejectedmarks.go), so its
// response is not worth a phone's disk.
//
// Once started, process runs to its end even if ctx ends (the sender gave
// up waiting: its client timed out, or a reconnection cancelled the
// request), bounded by inboundTxnTimeout and by Close. A transaction whose
// gaps take long to fill would otherwise be cut short on every retry and
// never be answered; finished, its response is stored, and the sender's
// retry, waiting for the origin's turn meanwhile, gets it at once. Synapse
// keeps transactions it is processing in a response cache for the same
// reason.
func (n *Inbound) InboundTxn(ctx context.Context, origin, txnID string, process func(context.Context) (resp []byte, durable bool, err error)) ([]byte, error) {
	unlock, err := n.TxnLocks.Lock(ctx, origin)
	if err != nil {
		return nil, err
	}
	defer unlock()

	memKey := origin + "\x00" + txnID
	if resp, ok := n.TxnResponses.Get(memKey); ok {
		return resp, nil
	}
	var stored []byte
	err = n.DB.View(func(tx *kv.Txn) error {
		var rec inboundTxnRecord
		err := tx.GetJSON(kv.Key(tInboundTxn, origin, txnID), &rec)
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		}
		stored = rec.Response
		return err
	})
	if err != nil || stored != nil {
		return stored, err
	}
	pctx, cancel := n.Detached(ctx, inboundTxnTimeout)
	defer cancel()
	resp, durable, err := process(pctx)
	if err != nil {
		return nil, err
	}
	if !json.Valid(resp) {
		return nil, fmt.Errorf("inbound txn %s from %s: response is not JSON", txnID, origin)
	}
	if !durable {
		n.TxnResponses.Put(memKey, resp)
		return resp, nil
	}
	err = n.DB.Update(func(tx *kv.Txn) error {
		var next uint64
		if err := tx.GetJSON(kv.Key(tInboundTxnNext, origin), &next); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if next >= InboundTxnRetention {
			old := kv.Key(tInboundTxnSeq, origin, next-InboundTxnRetention)
			oldID, err := tx.Get(old)
			switch {
			case err == nil:
				if err := tx.Delete(kv.Key(tInboundTxn, origin, string(oldID))); err != nil {
					return err
				}
				if err := tx.Delete(old); err != nil {
					return err
				}
			case !errors.Is(err, kv.ErrNotFound):
				return err
			}
		}
		if err := tx.SetJSON(kv.Key(tInboundTxn, origin, txnID), inboundTxnRecord{Seq: next, Response: resp}); err != nil {
			return err
		}
		if err := tx.Set(kv.Key(tInboundTxnSeq, origin, next), []byte(txnID)); err != nil {
			return err
		}
		return tx.SetJSON(kv.Key(tInboundTxnNext, origin), next+1)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}
