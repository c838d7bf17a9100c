package syncapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"github.com/edgenode/edgenode/node/core"
)

// RelationFilter is the part of a RoomEventFilter about event
// relationships:
//
//   - related_by_rel_types and related_by_senders (the spec's, from
//     MSC3440) keep only events that some other event relates to, with one
//     of those rel_types and from one of those senders (the same relating
//     event must match both, as Synapse has it). They need the relations
//     index, so only /messages and /context apply them (as Synapse does);
//   - rel_types and not_rel_types (MSC3874, also under its unstable
//     org.matrix.msc3874 names, which Complement uses) keep or drop events
//     by their own relation's rel_type; an event that relates to nothing
//     fails rel_types and passes not_rel_types.
//
// An empty or absent list restricts nothing.
type RelationFilter struct {
	RelatedByRelTypes []string `json:"related_by_rel_types,omitempty"`
	RelatedBySenders  []string `json:"related_by_senders,omitempty"`
	// The names MSC3440 gave them first, which matrix-js-sdk sends to a
	// server without stable thread support.
	UnstableRelatedByRelTypes []string `json:"io.element.relation_types,omitempty"`
	UnstableRelatedBySenders  []string `json:"io.element.relation_senders,omitempty"`
	RelTypes                  []string `json:"rel_types,omitempty"`
	NotRelTypes               []string `json:"not_rel_types,omitempty"`
	UnstableRelTypes          []string `json:"org.matrix.msc3874.rel_types,omitempty"`
	UnstableNotRelTypes       []string `json:"org.matrix.msc3874.not_rel_types,omitempty"`
}

func (f *RelationFilter) validate(where string) error {
	if err := validateIDs(where+".related_by_senders", f.RelatedBySenders, '@'); err != nil {
		return err
	}
	return validateIDs(where+".io.element.relation_senders", f.UnstableRelatedBySenders, '@')
}

// relTypes and notRelTypes merge the stable and unstable names.
func (f *RelationFilter) relTypes() []string { return slices.Concat(f.RelTypes, f.UnstableRelTypes) }
func (f *RelationFilter) notRelTypes() []string {
	return slices.Concat(f.NotRelTypes, f.UnstableNotRelTypes)
}

// matchRelType applies rel_types and not_rel_types to an event's content.
func (f *RelationFilter) matchRelType(content []byte) bool {
	in, out := f.relTypes(), f.notRelTypes()
	if len(in) == 0 && len(out) == 0 {
		return true
	}
	var c struct {
		RelatesTo struct {
			RelType string `json:"rel_type"`
		} `json:"m.relates_to"`
	}
	_ = json.Unmarshal(content, &c) // malformed: relates to nothing
	rt := c.RelatesTo.RelType
	if rt != "" && slices.Contains(out, rt) {
		return false
	}
	return len(in) == 0 || (rt != "" && slices.Contains(in, rt))
}

// relatedBy merges the stable and unstable names of related_by_*; nil for
// no restriction.
func (f *RelationFilter) relatedBy() (relTypes, senders []string) {
	return nilIfEmpty(slices.Concat(f.RelatedByRelTypes, f.UnstableRelatedByRelTypes)),
		nilIfEmpty(slices.Concat(f.RelatedBySenders, f.UnstableRelatedBySenders))
}

// keepFor is the filter as a predicate for paginate, with the
// related_by_* part read from the relations index (nil keeps all). An
// index read that fails drops the event and is logged: the predicate has
// no error to return, and a page missing an event is the lesser harm.
func (a *api) keepFor(ctx context.Context, f *RoomEventFilter) func(*core.Event) bool {
	keep := f.keep()
	if f == nil {
		return keep
	}
	types, senders := f.relatedBy()
	if types == nil && senders == nil {
		return keep
	}
	return func(ev *core.Event) bool {
		if !keep(ev) {
			return false
		}
		ok, err := a.n.RelatedBy(ctx, ev.PDU.RoomID().String(), ev.PDU.EventID(), types, senders)
		if err != nil {
			slog.Warn("syncapi: related_by filter", "event", ev.PDU.EventID(), "err", err)
		}
		return ok
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
