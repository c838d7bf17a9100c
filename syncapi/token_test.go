package syncapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/edgenode/edgenode/node/core"
)

func TestParseStreamToken(t *testing.T) {
	tests := []struct {
		in   string
		want StreamToken
		ok   bool
		out  string // String() of the parsed token
	}{
		{"s0", StreamToken{}, true, "s0"},
		{"s5", StreamToken{Room: 5}, true, "s5"},
		{"s18446744073709551615", StreamToken{Room: 1<<64 - 1}, true, "s18446744073709551615"},
		{"s007", StreamToken{Room: 7}, true, "s7"},
		// Parts for streams this version does not know are checked, then
		// ignored: tokens from a newer version still work.
		{"s5_0_0", StreamToken{Room: 5}, true, "s5"},
		{"s5_7_8_9_10_11_12", StreamToken{Room: 5, ToDevice: 7, Receipt: 8, Typing: 9, AccountData: 10, DeviceList: 11, Presence: 12}, true, "s5_7_8_9_10_11_12"},
		{"s5_7_8_9_10_11_12_3_14", StreamToken{Room: 5, ToDevice: 7, Receipt: 8, Typing: 9, AccountData: 10, DeviceList: 11, Presence: 12, StickyBehind: 3}, true, "s5_7_8_9_10_11_12_3"},
		{"s5_7", StreamToken{Room: 5, ToDevice: 7}, true, "s5_7"},
		{"s5_0_3", StreamToken{Room: 5, Receipt: 3}, true, "s5_0_3"},
		{"", StreamToken{}, false, ""},
		{"s", StreamToken{}, false, ""},
		{"5", StreamToken{}, false, ""},
		{"S5", StreamToken{}, false, ""},
		{"t5-6", StreamToken{}, false, ""},
		{"s-1", StreamToken{}, false, ""},
		{"s+1", StreamToken{}, false, ""},
		{"s 1", StreamToken{}, false, ""},
		{"s1 ", StreamToken{}, false, ""},
		{"s1_", StreamToken{}, false, ""},
		{"s_1", StreamToken{}, false, ""},
		{"s1__2", StreamToken{}, false, ""},
		{"s1_x", StreamToken{}, false, ""},
		{"s0x10", StreamToken{}, false, ""},
		{"s1e3", StreamToken{}, false, ""},
		{"s18446744073709551616", StreamToken{}, false, ""},
		{"s１", StreamToken{}, false, ""}, // a full-width digit
		{"s" + strings.Repeat("1_", 40) + "1", StreamToken{}, false, ""},
		{"s" + strings.Repeat("0", 600), StreamToken{}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseStreamToken(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, core.ErrInvalidParam) {
					t.Fatalf("error %v does not wrap core.ErrInvalidParam", err)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.out {
				t.Fatalf("String() = %q, want %q", s, tc.out)
			}
		})
	}
}

// TestStreamTokenStickyCursor: the sticky cursor is Room when the token has
// no sticky part (an old client's token), never beyond Room, and survives a
// round trip.
func TestStreamTokenStickyCursor(t *testing.T) {
	old, err := ParseStreamToken("s40_1_2")
	if err != nil {
		t.Fatal(err)
	}
	if got := old.StickyCursor(); got != 40 {
		t.Errorf("token without a sticky part: cursor %d, want the room position 40", got)
	}
	tok := StreamToken{Room: 40}.WithStickyCursor(25)
	again, err := ParseStreamToken(tok.String())
	if err != nil || again.StickyCursor() != 25 || again.Room != 40 {
		t.Errorf("round trip of %s: %+v, %v", tok, again, err)
	}
	if got := (StreamToken{Room: 40}).WithStickyCursor(99).StickyCursor(); got != 40 {
		t.Errorf("cursor beyond Room: %d, want 40", got)
	}
	if got := (StreamToken{Room: 5, StickyBehind: 9}).StickyCursor(); got != 0 {
		t.Errorf("behind more than Room: cursor %d, want 0", got)
	}
}

func TestStreamTokenWithRoom(t *testing.T) {
	tok := StreamToken{Room: 3}.WithRoom(9)
	if tok.Room != 9 || tok.String() != "s9" {
		t.Fatalf("WithRoom: %+v %s", tok, tok)
	}
}

// FuzzParseStreamToken: no input panics, and whatever parses round-trips.
func FuzzParseStreamToken(f *testing.F) {
	for _, s := range []string{"s0", "s5", "s5_6_7", "s18446744073709551615", "s", "s_", "s1__2", "t1-2", "s-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseStreamToken(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalidParam) {
				t.Fatalf("%q: error %v does not wrap core.ErrInvalidParam", s, err)
			}
			return
		}
		again, err := ParseStreamToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("%q -> %q -> %+v, %v", s, tok.String(), again, err)
		}
	})
}
