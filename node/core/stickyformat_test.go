package core

import (
	"errors"
	"testing"
)

// TestStickyEnd: the expiry arithmetic. The start is the earlier of receipt
// and origin_server_ts; the duration is capped at one hour.
func TestStickyEnd(t *testing.T) {
	const recv = 1_800_000_000_000
	tests := []struct {
		name               string
		received, ots, dur int64
		want               int64
	}{
		{"ts equals receipt", recv, recv, 300_000, recv + 300_000},
		{"ts in the past starts earlier", recv, recv - 60_000, 300_000, recv - 60_000 + 300_000},
		{"ts far in the past is already expired", recv, recv - 2*3_600_000, 3_600_000, recv - 3_600_000},
		{"ts in the future gains nothing", recv, recv + 3_600_000, 300_000, recv + 300_000},
		{"one hour exactly", recv, recv, 3_600_000, recv + 3_600_000},
		{"over one hour is capped", recv, recv, 3_600_001, recv + 3_600_000},
		{"much over one hour is capped", recv, recv, 1 << 40, recv + 3_600_000},
		{"zero duration ends at the start", recv, recv - 5, 0, recv - 5},
		{"negative duration counts as zero", recv, recv, -10, recv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stickyEnd(tc.received, tc.ots, tc.dur); got != tc.want {
				t.Errorf("stickyEnd(%d, %d, %d) = %d, want %d", tc.received, tc.ots, tc.dur, got, tc.want)
			}
		})
	}
}

// TestStickyDuration: which event JSON makes an event sticky.
func TestStickyDuration(t *testing.T) {
	tests := []struct {
		json string
		want int64
		ok   bool
	}{
		{`{"msc4354_sticky":{"duration_ms":300000}}`, 300000, true},
		{`{"sticky":{"duration_ms":300000}}`, 300000, true},
		{`{"msc4354_sticky":{"duration_ms":0}}`, 0, true},
		{`{"msc4354_sticky":{"duration_ms":3600000}}`, 3600000, true},
		{`{"msc4354_sticky":{"duration_ms":3600001}}`, 0, false},
		{`{"msc4354_sticky":{"duration_ms":-1}}`, 0, false},
		{`{"msc4354_sticky":{"duration_ms":1.5}}`, 0, false},
		{`{"msc4354_sticky":{"duration_ms":1e3}}`, 0, false},
		{`{"msc4354_sticky":{"duration_ms":"300000"}}`, 0, false},
		{`{"msc4354_sticky":{"duration_ms":null}}`, 0, false},
		{`{"msc4354_sticky":{}}`, 0, false},
		{`{"msc4354_sticky":300000}`, 0, false},
		{`{"msc4354_sticky":[300000]}`, 0, false},
		{`{"content":{"msc4354_sticky":{"duration_ms":1000}}}`, 0, false},
		{`{"content":{"msc4354_sticky_key":"k"}}`, 0, false},
		{`{}`, 0, false},
	}
	for _, tc := range tests {
		got, ok := stickyDuration([]byte(tc.json))
		if got != tc.want || ok != tc.ok {
			t.Errorf("stickyDuration(%s) = %d, %v; want %d, %v", tc.json, got, ok, tc.want, tc.ok)
		}
	}
}

// TestParseStickyDuration: the query parameter accepts only plain integers
// from 0 to one hour.
func TestParseStickyDuration(t *testing.T) {
	for _, s := range []string{"0", "1", "300000", "3600000", "007"} {
		if _, err := ParseStickyDuration(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1.5", "1e3", "3600001", "99999999999999999999", "abc", " 1", "0x10"} {
		if _, err := ParseStickyDuration(s); !errors.Is(err, ErrInvalidParam) {
			t.Errorf("%q: err = %v, want ErrInvalidParam", s, err)
		}
	}
}
