// Package devprofile names the device profiles that size a node for its
// hardware (phone, pi, server) and decides, in this one place, which one an
// unset profile means. Storage (kv: Badger's tables and caches) and
// networking (p2ptransport: libp2p's limits and DHT mode) each size
// themselves by the profile; when each had its own default, an app
// configured without a profile got Pi-sized storage beside phone-sized
// libp2p. It imports nothing.
package devprofile

// The profiles' names, as written in configs and flags.
const (
	Phone  = "phone"
	Pi     = "pi"
	Server = "server"
)

// Default is what an unset profile means: a Raspberry Pi, the device the
// command is sized for.
const Default = Pi

// Resolve returns name, or Default if name is empty.
func Resolve(name string) string {
	if name == "" {
		return Default
	}
	return name
}
