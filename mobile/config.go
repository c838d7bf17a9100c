package mobile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/p2ptransport"
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
	// MediaPrefetch fetches the media other servers' messages reference
	// (thumbnails, avatars, files up to the profile's size) as they
	// arrive, so a picture opens later even if its sender's phone is
	// asleep. Unset is true; false on a metered network (SetMediaPrefetch
	// changes it while the node runs).
	MediaPrefetch *bool `json:"media_prefetch"`
	// Config holds the libp2p settings, at the top level of the JSON under
	// the keys p2ptransport.Config's tags name (their one definition):
	// p2p_listen (default QUIC and TCP on all interfaces, on ports the
	// system picks), peers (static peers, multiaddrs ending in
	// /p2p/<peer ID>), mdns (default true; it fails harmlessly where the
	// OS denies interface listing, as on Android 11+), dht (default true),
	// dht_mode (client, server or auto; default by profile: client on a
	// phone), relays, relay_service and reachability (auto by default,
	// private or public).
	p2ptransport.Config
}

// parseConfig decodes a NewNode config. An empty string is the defaults.
// Unknown keys are errors, so a misspelt key does not pass silently.
func parseConfig(s string) (config, error) {
	cfg := config{ClientListen: "127.0.0.1:0", StorageProfile: "phone", LogLevel: "info",
		Config: p2ptransport.Config{MDNS: true, DHT: true}}
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

// mediaPrefetch is MediaPrefetch with its default, true.
func (c config) mediaPrefetch() bool { return c.MediaPrefetch == nil || *c.MediaPrefetch }

// p2p is the app's libp2p configuration, nil without federation.
func (c config) p2p() *app.P2PConfig {
	if c.NoP2P {
		return nil
	}
	return &app.P2PConfig{Config: c.Config}
}
