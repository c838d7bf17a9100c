package app

import (
	"net/netip"

	"github.com/edgenode/edgenode/p2ptransport"
)

// CheckInterfaceAddrs reports whether P2PConfig.InterfaceAddrs and
// SetInterfaceAddrs would take addrs (see p2ptransport.CheckInterfaceAddrs).
func CheckInterfaceAddrs(addrs []netip.Addr) error {
	return p2ptransport.CheckInterfaceAddrs(addrs)
}

// SetInterfaceAddrs gives the libp2p host the device's IP addresses to
// advertise in place of interface listing (empty: list again). It does
// nothing without federation.
func (a *App) SetInterfaceAddrs(addrs []netip.Addr) error {
	if a.p2p == nil {
		return CheckInterfaceAddrs(addrs)
	}
	return a.p2p.SetInterfaceAddrs(addrs)
}

// NetworkChanged tells the libp2p host that the device's network changed
// (see p2ptransport.Host.NetworkChanged). It does nothing without
// federation.
func (a *App) NetworkChanged() {
	if a.p2p != nil {
		a.p2p.NetworkChanged()
	}
}
