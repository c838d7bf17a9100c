package mobile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/kv"
)

// config is the JSON config of NewNode. Every field is optional.
type config struct {
	// ClientListen is the client API's HOST:PORT; the host must be a
	// loopback address (an earlier P2P Matrix app bound all interfaces with
	// open registration). Default 127.0.0.1:0: a free port, see BaseURL.
	ClientListen string `json:"client_listen"`
	// StorageProfile is phone (default), pi or server; it sizes Badger and
	// libp2p.
	StorageProfile string `json:"storage_profile"`
	// OpenRegistration lets clients register over HTTP. Default false: the
	// app creates its account with CreateAccount.
	OpenRegistration bool `json:"open_registration"`
	// WebOrigins are the web origins whose pages (a web client in a
	// WebView or the phone's browser) may log in and register through the
	// client API; "*" allows any. Default none: native clients send no
	// Origin and need nothing here.
	WebOrigins []string `json:"web_origins"`
	// NoSyncWrites skips fsync per commit (faster; a crash of the phone may
	// lose the last writes).
	NoSyncWrites bool `json:"no_sync_writes"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `json:"log_level"`
	// NoP2P runs without federation.
	NoP2P bool `json:"no_p2p"`
	// P2PListen are libp2p multiaddrs; default QUIC and TCP on all
	// interfaces, on ports the system picks.
	P2PListen []string `json:"p2p_listen"`
	// Peers are static peers, multiaddrs ending in /p2p/<peer ID>.
	Peers []string `json:"peers"`
	// MDNS finds peers on the LAN (default true; it fails harmlessly where
	// the OS denies interface listing, as on Android 11+).
	MDNS *bool `json:"mdns"`
	// DHT finds peers beyond the LAN (default true).
	DHT *bool `json:"dht"`
	// DHTMode is client, server or auto; default by profile (client on a
	// phone).
	DHTMode string `json:"dht_mode"`
	// Relays are circuit relays, multiaddrs ending in /p2p/<peer ID>.
	Relays []string `json:"relays"`
	// Reachability is auto (default), private or public.
	Reachability string `json:"reachability"`
}

// parseConfig decodes a NewNode config. An empty string is the defaults.
// Unknown keys are errors, so a misspelt key does not pass silently.
func parseConfig(s string) (config, error) {
	cfg := config{ClientListen: "127.0.0.1:0", StorageProfile: "phone", LogLevel: "info"}
	if s != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return config{}, fmt.Errorf("mobile: config: %w", err)
		}
	}
	if _, err := kv.ProfileByName(cfg.StorageProfile); err != nil {
		return config{}, fmt.Errorf("mobile: config: storage_profile: %w", err)
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return config{}, err
	}
	host, _, err := net.SplitHostPort(cfg.ClientListen)
	if err != nil {
		return config{}, fmt.Errorf("mobile: config: client_listen %q: %w", cfg.ClientListen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return config{}, fmt.Errorf("mobile: config: client_listen %q: the client API must stay on a loopback address", cfg.ClientListen)
	}
	return cfg, nil
}

// p2p is the app's libp2p configuration, nil without federation.
func (c config) p2p() *app.P2PConfig {
	if c.NoP2P {
		return nil
	}
	return &app.P2PConfig{
		ListenAddrs:  c.P2PListen,
		StaticPeers:  c.Peers,
		MDNS:         c.MDNS == nil || *c.MDNS,
		DHT:          c.DHT == nil || *c.DHT,
		DHTMode:      c.DHTMode,
		Relays:       c.Relays,
		Reachability: c.Reachability,
	}
}
