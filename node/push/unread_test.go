package push

import "testing"

// TestUnreadRecordEncoding: records round-trip, and a damaged one is an
// error rather than a wrong count.
func TestUnreadRecordEncoding(t *testing.T) {
	for _, r := range []unreadRecord{{1, 0}, {1000, 3}, {1 << 30, 1 << 20}} {
		got, err := decodeUnread(r.encode())
		if err != nil || got != r {
			t.Errorf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
	for _, b := range [][]byte{nil, {0x80}, {1}, {1, 2, 3}} {
		if _, err := decodeUnread(b); err == nil {
			t.Errorf("decodeUnread(%x) succeeded", b)
		}
	}
}
