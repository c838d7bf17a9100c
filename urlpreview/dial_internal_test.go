package urlpreview

import (
	"errors"
	"testing"
)

// TestDialerControl: the socket-level check, which holds whatever path an
// address took to the dialler, refuses what Allowed refuses.
func TestDialerControl(t *testing.T) {
	d := &dialer{allow: Allowed}
	cases := []struct {
		address string
		ok      bool
	}{
		{"93.184.216.34:443", true},
		{"[2606:4700:4700::1111]:80", true},
		{"127.0.0.1:80", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"[fe80::1%eth0]:80", false},
		{"10.1.2.3:8080", false},
		{"not-an-address", false},
	}
	for _, c := range cases {
		err := d.control("tcp", c.address, nil)
		if c.ok && err != nil {
			t.Errorf("%s: refused: %v", c.address, err)
		}
		if !c.ok && !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: got %v, want ErrForbidden", c.address, err)
		}
	}
}
