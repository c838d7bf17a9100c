package core

import (
	"reflect"
	"testing"
)

func TestEventRecordCodecRoundTrip(t *testing.T) {
	tests := []EventRecord{
		{},
		{RoomID: "!r:x", Version: "10", Pos: 1},
		{RoomID: "!r:x", Version: "11", Pos: 1<<64 - 1, SoftFailed: true, StateBefore: "ab", StateAfter: "cd"},
		{RoomID: "!r:x", Version: "10", Rejected: "auth events: denied", RedactedBy: "$e", TxnID: "t\x00", DeviceID: "DEV"},
	}
	for _, want := range tests {
		var got EventRecord
		if err := got.unmarshalRecord(want.marshalRecord()); err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip: got %+v, want %+v", got, want)
		}
	}
}

func FuzzEventRecordCodec(f *testing.F) {
	f.Add((&EventRecord{RoomID: "!r:x", Version: "10", Pos: 7, StateAfter: "s"}).marshalRecord())
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r EventRecord
		if r.unmarshalRecord(b) != nil {
			return
		}
		var again EventRecord
		if err := again.unmarshalRecord(r.marshalRecord()); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v: %+v, %v", r, again, err)
		}
	})
}
