package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgenode/edgenode/app"
	"github.com/edgenode/edgenode/kv"
	"github.com/edgenode/edgenode/p2ptransport"
	"gopkg.in/yaml.v3"
)

// Config is the command's configuration. Every field has an embedded default,
// so no file is needed; a YAML file (--config) may set any of them, and flags
// override the file.
type Config struct {
	// DataDir holds the node's key and database. Default: $EDGENODE_DATA, else
	// <user config dir>/edgenode, else ./edgenode-data. A relative path in a
	// config file is relative to that file's directory.
	DataDir string `yaml:"data_dir"`
	// ClientListen is the client API's HOST:PORT. Default: 127.0.0.1:8008.
	ClientListen string `yaml:"client_listen"`
	// ServerName overrides the server name derived from the node's key.
	ServerName string `yaml:"server_name"`
	// StorageProfile is "phone", "pi" (default) or "server".
	StorageProfile string `yaml:"storage_profile"`
	// OpenRegistration lets anyone who reaches the client API register.
	// Default false: accounts are made with "edgenode account create".
	OpenRegistration bool `yaml:"open_registration"`
	// RegistrationBurst and RegistrationEvery bound open registration per
	// client address: RegistrationBurst accounts at once, then one more
	// every RegistrationEvery (the node's default: 10, then one a minute;
	// node.DefaultRegistrationBurst). Zero takes the default.
	RegistrationBurst int           `yaml:"registration_burst"`
	RegistrationEvery time.Duration `yaml:"registration_every"`
	// NoRegistrationLimit turns that limit off: for load tools that
	// register many users, never on a node a browser can reach.
	NoRegistrationLimit bool `yaml:"no_registration_limit"`
	// FreezeUnauthenticatedMedia freezes the deprecated unauthenticated
	// media endpoints (/_matrix/media/v3/download and thumbnail) as the
	// spec suggests: media uploaded while it is set are served only by the
	// authenticated /_matrix/client/v1/media endpoints. Default false.
	FreezeUnauthenticatedMedia bool `yaml:"freeze_unauthenticated_media"`
	// MediaPrefetch fetches the media other servers' events reference
	// (thumbnails, avatars, files up to the profile's size) as the events
	// arrive, so they open even when the sender's node is offline later.
	// Unset is true; false for a metered network.
	MediaPrefetch *bool `yaml:"media_prefetch"`
	// WebOrigins are the web origins whose pages in a browser may log in or
	// register through the client API ("*": any). Default none: native
	// clients send no Origin and are not affected.
	WebOrigins []string `yaml:"web_origins"`
	// URLPreview turns on URL previews (the client API's preview_url):
	// the node then fetches web pages its users name, public addresses
	// only. Default false.
	URLPreview bool `yaml:"url_preview"`
	// NoSyncWrites skips fsync on commit: faster, but a power loss may lose
	// the last acknowledged writes.
	NoSyncWrites bool `yaml:"no_sync_writes"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level"`
	// NoP2P runs the node without federation (no libp2p host).
	NoP2P bool `yaml:"no_p2p"`
	// P2P are the libp2p settings, at the top level of the file under the
	// keys p2ptransport.Config's tags name (their one definition):
	// p2p_listen (default QUIC and TCP on all interfaces, on ports the
	// system picks), peers (static peers, dialled at start), mdns (default
	// true), dht (default true), dht_mode (empty: client on the phone
	// profile, server otherwise), relays, relay_service and reachability
	// (auto by default, private or public).
	P2P p2ptransport.Config `yaml:",inline"`
}

// mediaPrefetch is MediaPrefetch with its default (true) for unset.
func (c Config) mediaPrefetch() bool { return c.MediaPrefetch == nil || *c.MediaPrefetch }

// defaultConfig is the embedded configuration before the file and flags.
func defaultConfig() Config {
	return Config{
		ClientListen:   app.DefaultClientListen,
		StorageProfile: kv.DefaultProfile,
		LogLevel:       "info",
		P2P:            p2ptransport.Config{MDNS: true, DHT: true},
	}
}

// configFlags binds a command's configuration flags. After the flag set is
// parsed, load merges defaults, the config file and the flags that were set.
type configFlags struct {
	fs   *flag.FlagSet
	path string
	vals Config

	// getenv and userConfigDir are os.Getenv and os.UserConfigDir, replaced
	// in tests so the default data directory is predictable.
	getenv        func(string) string
	userConfigDir func() (string, error)
}

// flagOverrides copies a set flag's value over the file's. Keyed by flag
// name; only flags that were given on the command line are applied, so an
// unset flag never clobbers the file with its zero value.
var flagOverrides = map[string]func(dst, src *Config){
	"data":                  func(d, s *Config) { d.DataDir = s.DataDir },
	"client-listen":         func(d, s *Config) { d.ClientListen = s.ClientListen },
	"server-name":           func(d, s *Config) { d.ServerName = s.ServerName },
	"profile":               func(d, s *Config) { d.StorageProfile = s.StorageProfile },
	"open-registration":     func(d, s *Config) { d.OpenRegistration = s.OpenRegistration },
	"registration-burst":    func(d, s *Config) { d.RegistrationBurst = s.RegistrationBurst },
	"registration-every":    func(d, s *Config) { d.RegistrationEvery = s.RegistrationEvery },
	"no-registration-limit": func(d, s *Config) { d.NoRegistrationLimit = s.NoRegistrationLimit },
	"web-origin":            func(d, s *Config) { d.WebOrigins = s.WebOrigins },
	"no-sync-writes":        func(d, s *Config) { d.NoSyncWrites = s.NoSyncWrites },
	"url-preview":           func(d, s *Config) { d.URLPreview = s.URLPreview },
	"log-level":             func(d, s *Config) { d.LogLevel = s.LogLevel },
	"p2p-listen":            func(d, s *Config) { d.P2P.ListenAddrs = s.P2P.ListenAddrs },
	"peer":                  func(d, s *Config) { d.P2P.StaticPeers = s.P2P.StaticPeers },
	"mdns":                  func(d, s *Config) { d.P2P.MDNS = s.P2P.MDNS },
	"no-p2p":                func(d, s *Config) { d.NoP2P = s.NoP2P },
	"dht":                   func(d, s *Config) { d.P2P.DHT = s.P2P.DHT },
	"dht-mode":              func(d, s *Config) { d.P2P.DHTMode = s.P2P.DHTMode },
	"relay":                 func(d, s *Config) { d.P2P.Relays = s.P2P.Relays },
	"relay-service":         func(d, s *Config) { d.P2P.RelayService = s.P2P.RelayService },
	"reachability":          func(d, s *Config) { d.P2P.Reachability = s.P2P.Reachability },
	// Multi-line so gofmt leaves the alignment of the entries above alone.
	"freeze-unauthenticated-media": func(d, s *Config) {
		d.FreezeUnauthenticatedMedia = s.FreezeUnauthenticatedMedia
	},
	"media-prefetch": func(d, s *Config) {
		d.MediaPrefetch = s.MediaPrefetch
	},
}

// listFlag is a flag that may be given several times; each adds a value.
type listFlag struct{ dst *[]string }

func (l listFlag) String() string {
	if l.dst == nil {
		return ""
	}
	return strings.Join(*l.dst, ",")
}

func (l listFlag) Set(v string) error {
	*l.dst = append(*l.dst, v)
	return nil
}

// addConfigFlags registers the configuration flags on fs. serving adds the
// flags that only matter to a running node (listen address, registration).
func addConfigFlags(fs *flag.FlagSet, serving bool) *configFlags {
	cf := &configFlags{fs: fs, getenv: os.Getenv, userConfigDir: os.UserConfigDir}
	fs.StringVar(&cf.path, "config", "", "YAML config `file` (optional; flags override it)")
	fs.StringVar(&cf.vals.DataDir, "data", "", "data `dir` (default $EDGENODE_DATA, else <user config dir>/edgenode)")
	fs.StringVar(&cf.vals.ServerName, "server-name", "", "server `name` (default: derived from the node's key)")
	fs.StringVar(&cf.vals.StorageProfile, "profile", kv.DefaultProfile, "storage `profile`: phone, pi or server")
	fs.BoolVar(&cf.vals.NoSyncWrites, "no-sync-writes", false, "skip fsync on commit (a power loss may lose recent writes)")
	fs.StringVar(&cf.vals.LogLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	if serving {
		fs.StringVar(&cf.vals.ClientListen, "client-listen", app.DefaultClientListen, "client API `address` (HOST:PORT; port 0 picks a free one)")
		fs.BoolVar(&cf.vals.OpenRegistration, "open-registration", false, "let anyone who reaches the client API register")
		fs.IntVar(&cf.vals.RegistrationBurst, "registration-burst", 0, "registrations a client address may make at once (0: the default, 10)")
		fs.DurationVar(&cf.vals.RegistrationEvery, "registration-every", 0, "after the burst, one more registration per `duration` (0: the default, 1m)")
		fs.BoolVar(&cf.vals.NoRegistrationLimit, "no-registration-limit", false, "do not rate-limit registration (load tests only)")
		fs.BoolVar(&cf.vals.URLPreview, "url-preview", false, "serve URL previews: the node fetches web pages its users name (public addresses only)")
		fs.BoolVar(&cf.vals.FreezeUnauthenticatedMedia, "freeze-unauthenticated-media", false, "serve media uploaded from now on only through the authenticated media endpoints")
		cf.vals.MediaPrefetch = new(bool)
		fs.BoolVar(cf.vals.MediaPrefetch, "media-prefetch", true, "fetch the media other servers' messages reference as they arrive (false on a metered network)")
		fs.Var(listFlag{&cf.vals.WebOrigins}, "web-origin", "web `origin` (scheme://host[:port], or *) whose pages may log in and register from a browser (repeatable)")
		fs.Var(listFlag{&cf.vals.P2P.ListenAddrs}, "p2p-listen", "libp2p `multiaddr` to listen on (repeatable; default QUIC and TCP on all interfaces)")
		fs.Var(listFlag{&cf.vals.P2P.StaticPeers}, "peer", "static peer `multiaddr` ending in /p2p/<peer ID> (repeatable)")
		fs.BoolVar(&cf.vals.P2P.MDNS, "mdns", true, "find peers on the local network with mDNS")
		fs.BoolVar(&cf.vals.NoP2P, "no-p2p", false, "run without federation (no libp2p host)")
		fs.BoolVar(&cf.vals.P2P.DHT, "dht", true, "find peers beyond the LAN by server name (Kademlia DHT)")
		fs.StringVar(&cf.vals.P2P.DHTMode, "dht-mode", "", "DHT `mode`: client, server or auto (default: client on the phone profile, else server)")
		fs.Var(listFlag{&cf.vals.P2P.Relays}, "relay", "circuit relay `multiaddr` ending in /p2p/<peer ID>, for reachability behind NAT (repeatable)")
		fs.BoolVar(&cf.vals.P2P.RelayService, "relay-service", false, "act as a relay for other nodes (implies --reachability public)")
		fs.StringVar(&cf.vals.P2P.Reachability, "reachability", "", "`auto`, private (behind NAT: use relays at once) or public")
	}
	return cf
}

// load returns the configuration: defaults, then the config file, then the
// flags given on the command line. Call it after fs.Parse.
func (cf *configFlags) load() (Config, error) {
	cfg := defaultConfig()
	if cf.path != "" {
		if err := loadFile(cf.path, &cfg); err != nil {
			return Config{}, err
		}
	}
	cf.fs.Visit(func(f *flag.Flag) {
		if o := flagOverrides[f.Name]; o != nil {
			o(&cfg, &cf.vals)
		}
	})
	if cfg.DataDir == "" {
		cfg.DataDir = defaultDataDir(cf.getenv, cf.userConfigDir)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// loadFile decodes a YAML config file over cfg. Unknown keys are errors: a
// misspelt key silently ignored would leave, say, registration open.
func loadFile(path string, cfg *Config) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	fileCfg := *cfg
	if err := dec.Decode(&fileCfg); err != nil && !errors.Is(err, io.EOF) { // EOF: empty file
		return fmt.Errorf("config %s: %w", path, err)
	}
	if fileCfg.DataDir != cfg.DataDir && !filepath.IsAbs(fileCfg.DataDir) {
		// Relative to the file, so the config means the same from any working directory.
		fileCfg.DataDir = filepath.Join(filepath.Dir(path), fileCfg.DataDir)
	}
	*cfg = fileCfg
	return nil
}

// defaultDataDir picks the data directory when none is configured. It is a
// config directory, not a cache directory: phones purge caches, and this
// holds the node's identity and every message.
func defaultDataDir(getenv func(string) string, userConfigDir func() (string, error)) string {
	if d := getenv("EDGENODE_DATA"); d != "" {
		return d
	}
	if d, err := userConfigDir(); err == nil && d != "" {
		return filepath.Join(d, "edgenode")
	}
	return "edgenode-data"
}

func (c Config) validate() error {
	if _, err := kv.ProfileByName(c.StorageProfile); err != nil {
		return fmt.Errorf("config: storage_profile: %w", err)
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		return err
	}
	if c.RegistrationBurst < 0 || c.RegistrationEvery < 0 {
		return fmt.Errorf("config: registration_burst %d, registration_every %s: may not be negative (no_registration_limit turns the limit off)", c.RegistrationBurst, c.RegistrationEvery)
	}
	if _, _, err := net.SplitHostPort(c.ClientListen); err != nil {
		return fmt.Errorf("config: client_listen %q: %w", c.ClientListen, err)
	}
	return nil
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("config: log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger returns a text logger to w at the configured level.
func newLogger(w io.Writer, cfg Config) *slog.Logger {
	l, _ := parseLogLevel(cfg.LogLevel) // validated by load
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
