package mobile

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/edgenode/edgenode/app"
)

// maxInterfaceAddrsJSON bounds SetInterfaceAddrs's argument.
const maxInterfaceAddrsJSON = 16 << 10

// SetInterfaceAddrs gives the node the device's IP addresses, as a JSON
// array of strings (["192.168.1.23", "2001:db8::5"]), for Android 11+,
// which forbids an app to list its network interfaces: the node
// advertises its libp2p listen ports on these addresses instead (other
// nodes on the LAN can then dial it). "[]" goes back to listing
// interfaces. Call it before Start and whenever the addresses change
// (then call NetworkChanged). Malformed JSON, an unparseable, unspecified,
// multicast or zoned address, or more than 64 addresses is an error and
// changes nothing; IPv6 link-local addresses are skipped.
func (n *Node) SetInterfaceAddrs(addrsJSON string) (err error) {
	defer recovered(&err)
	addrs, err := parseInterfaceAddrs(addrsJSON)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.app != nil && n.app.Running() {
		if err := n.app.SetInterfaceAddrs(addrs); err != nil {
			return fmt.Errorf("mobile: interface addresses: %w", err)
		}
	}
	n.ifaceAddrs = addrs
	return nil
}

func parseInterfaceAddrs(s string) ([]netip.Addr, error) {
	if len(s) > maxInterfaceAddrsJSON {
		return nil, fmt.Errorf("mobile: interface addresses: %d bytes of JSON, at most %d", len(s), maxInterfaceAddrsJSON)
	}
	var strs []string
	if err := json.Unmarshal([]byte(s), &strs); err != nil {
		return nil, fmt.Errorf("mobile: interface addresses: want a JSON array of strings: %w", err)
	}
	addrs := make([]netip.Addr, 0, len(strs))
	for i, str := range strs {
		a, err := netip.ParseAddr(str)
		if err != nil {
			return nil, fmt.Errorf("mobile: interface addresses: [%d]: %w", i, err)
		}
		addrs = append(addrs, a)
	}
	if err := app.CheckInterfaceAddrs(addrs); err != nil {
		return nil, fmt.Errorf("mobile: interface addresses: %w", err)
	}
	return addrs, nil
}

// NetworkChanged tells the node that the device's network changed (the
// app's connectivity callback): connections that no longer answer are
// closed, configured peers and peers added with Connect are dialled again,
// and peer discovery refreshes. It returns at once. Call SetInterfaceAddrs
// first if the addresses changed.
func (n *Node) NetworkChanged() (err error) {
	defer recovered(&err)
	a, err := n.running()
	if err != nil {
		return err
	}
	a.NetworkChanged()
	return nil
}
