package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgenode/edgenode/node/core"
	"github.com/edgenode/edgenode/p2ptransport"
)

func TestConfigLoad(t *testing.T) {
	const userCfg = "/home/u/.config"
	// {file} in want.DataDir stands for the config file's directory.
	tests := []struct {
		name    string
		file    string // config file contents; "" means no --config
		args    []string
		env     map[string]string
		noHome  bool // os.UserConfigDir fails
		serving bool // flags of "run" (client-listen, open-registration)
		want    Config
		wantErr string
	}{
		{
			name: "embedded defaults", serving: true,
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "EDGENODE_DATA is the default data dir", env: map[string]string{"EDGENODE_DATA": "/srv/en"},
			want: Config{DataDir: "/srv/en", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "no user config dir falls back to ./edgenode-data", noHome: true,
			want: Config{DataDir: "edgenode-data", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "file sets every key; relative data_dir is relative to the file", serving: true,
			file: "data_dir: data\nclient_listen: 127.0.0.1:9000\nserver_name: example.org\nstorage_profile: phone\n" +
				"open_registration: true\nno_sync_writes: true\nlog_level: debug\n" +
				"p2p_listen: [/ip4/0.0.0.0/tcp/4001]\npeers: [/ip4/10.0.0.1/tcp/4001/p2p/x]\nmdns: false\nno_p2p: true\n",
			want: Config{DataDir: "{file}/data", ClientListen: "127.0.0.1:9000", ServerName: "example.org", StorageProfile: "phone", OpenRegistration: true, NoSyncWrites: true, LogLevel: "debug", NoP2P: true, P2P: p2ptransport.Config{DHT: true, ListenAddrs: []string{"/ip4/0.0.0.0/tcp/4001"}, StaticPeers: []string{"/ip4/10.0.0.1/tcp/4001/p2p/x"}}},
		},
		{
			name: "flags override the file", serving: true,
			file: "data_dir: /from/file\nclient_listen: 127.0.0.1:9000\nstorage_profile: phone\nopen_registration: true\nlog_level: debug\n",
			args: []string{"--data", "/from/flag", "--client-listen", "127.0.0.1:0", "--profile", "server",
				"--open-registration=false", "--log-level", "warn"},
			want: Config{DataDir: "/from/flag", ClientListen: "127.0.0.1:0", StorageProfile: "server", LogLevel: "warn", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "unset flags keep the file's values", serving: true,
			file: "data_dir: /from/file\nopen_registration: true\n",
			args: []string{"--log-level", "error"},
			want: Config{DataDir: "/from/file", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", OpenRegistration: true, LogLevel: "error", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "file data_dir beats EDGENODE_DATA", file: "data_dir: /from/file\n", env: map[string]string{"EDGENODE_DATA": "/env"},
			want: Config{DataDir: "/from/file", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "empty file is all defaults", file: "# nothing here\n",
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "p2p settings: file, then repeatable flags replace the file's lists", serving: true,
			file: "p2p_listen: [/ip4/0.0.0.0/udp/4001/quic-v1]\npeers: [/ip4/10.0.0.1/udp/4001/quic-v1/p2p/x]\nmdns: false\n",
			args: []string{"--peer", "/ip4/1.2.3.4/tcp/4001/p2p/a", "--peer", "/ip4/1.2.3.5/tcp/4001/p2p/b"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, ListenAddrs: []string{"/ip4/0.0.0.0/udp/4001/quic-v1"}, StaticPeers: []string{"/ip4/1.2.3.4/tcp/4001/p2p/a", "/ip4/1.2.3.5/tcp/4001/p2p/b"}}},
		},
		{
			name: "--no-p2p", serving: true, args: []string{"--no-p2p", "--mdns=false"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", NoP2P: true, P2P: p2ptransport.Config{DHT: true}},
		},
		{
			name: "NAT and DHT settings: file, then flags", serving: true,
			file: "dht: false\ndht_mode: server\nrelays: [/ip4/10.0.0.9/udp/4001/quic-v1/p2p/r]\nreachability: private\n",
			args: []string{"--dht", "--relay-service", "--relay", "/ip4/1.2.3.4/tcp/4001/p2p/s"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, DHTMode: "server", Relays: []string{"/ip4/1.2.3.4/tcp/4001/p2p/s"}, RelayService: true, Reachability: "private", MDNS: true}},
		},
		{
			name: "DHT off in the file", file: "dht: false\nrelay_service: true\n",
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{RelayService: true, MDNS: true}},
		},
		{
			name: "registration limit: file, then flags", serving: true,
			file: "registration_burst: 3\nregistration_every: 30s\n",
			args: []string{"--registration-every", "2m"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", RegistrationBurst: 3, RegistrationEvery: 2 * time.Minute, P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "media freeze: file", file: "freeze_unauthenticated_media: true\n",
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", FreezeUnauthenticatedMedia: true, P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "media freeze: flag beats file", serving: true, file: "freeze_unauthenticated_media: true\n", args: []string{"--freeze-unauthenticated-media=false"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "media prefetch off in the file", file: "media_prefetch: false\n",
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", MediaPrefetch: new(bool), P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "media prefetch: flag beats file", serving: true, file: "media_prefetch: true\n", args: []string{"--media-prefetch=false"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", MediaPrefetch: new(bool), P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "--no-registration-limit", serving: true, args: []string{"--no-registration-limit"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", NoRegistrationLimit: true, P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "URL previews: file, then flags", serving: true,
			file: "url_preview: true\n",
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", URLPreview: true, P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "--url-preview=false overrides the file", serving: true,
			file: "url_preview: true\n", args: []string{"--url-preview=false"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{
			name: "--url-preview", serving: true, args: []string{"--url-preview"},
			want: Config{DataDir: userCfg + "/edgenode", ClientListen: "127.0.0.1:8008", StorageProfile: "pi", LogLevel: "info", URLPreview: true, P2P: p2ptransport.Config{DHT: true, MDNS: true}},
		},
		{name: "negative registration burst", serving: true, args: []string{"--registration-burst", "-1"}, wantErr: "no_registration_limit"},
		{name: "unknown key is an error", file: "data_dir: /x\nopen_registraton: true\n", wantErr: "open_registraton"},
		{name: "wrong type is an error", file: "open_registration: maybe\n", wantErr: "into bool"},
		{name: "unknown profile in file", file: "storage_profile: mainframe\n", wantErr: "mainframe"},
		{name: "unknown profile flag", args: []string{"--profile", "tiny"}, wantErr: "tiny"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: "log_level"},
		{name: "bad listen address", serving: true, args: []string{"--client-listen", "8008"}, wantErr: "client_listen"},
		{name: "run-only flag rejected elsewhere", args: []string{"--open-registration"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cf := addConfigFlags(fs, tt.serving)
			cf.getenv = func(k string) string { return tt.env[k] }
			cf.userConfigDir = func() (string, error) {
				if tt.noHome {
					return "", errors.New("no home")
				}
				return userCfg, nil
			}
			args := tt.args
			dir := t.TempDir()
			if tt.file != "" {
				path := filepath.Join(dir, "edgenode.yaml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", path}, args...)
			}
			got, err := func() (Config, error) {
				if err := fs.Parse(args); err != nil {
					return Config{}, err
				}
				return cf.load()
			}()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := tt.want
			want.DataDir = strings.Replace(want.DataDir, "{file}", dir, 1)
			want.DataDir = filepath.FromSlash(want.DataDir)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// TestNodeConfigRegistrations: the command's registration settings reach
// the node, and no_registration_limit turns the node's limit off.
func TestNodeConfigRegistrations(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want core.RateLimit
	}{
		{name: "default", want: core.RateLimit{}},
		{name: "set", cfg: Config{RegistrationBurst: 3, RegistrationEvery: time.Hour}, want: core.RateLimit{Burst: 3, Every: time.Hour}},
		{name: "off", cfg: Config{RegistrationBurst: 3, NoRegistrationLimit: true}, want: core.RateLimit{Burst: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeConfig(tt.cfg, nil).Registrations; got != tt.want {
				t.Errorf("Registrations = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, flag, file, env, stdin string
		want, wantErr                string
	}{
		{name: "flag", flag: "a", env: "b", want: "a"},
		{name: "file first line", file: pwFile, env: "b", want: "s3cret"},
		{name: "stdin", file: "-", stdin: "from-stdin\n", want: "from-stdin"},
		{name: "env", env: "b", want: "b"},
		{name: "both flag and file", flag: "a", file: pwFile, wantErr: "not both"},
		{name: "empty file", file: emptyFile, wantErr: "empty"},
		{name: "none", wantErr: "no password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "EDGENODE_PASSWORD" {
					return tt.env
				}
				return ""
			}
			got, err := readPassword(tt.flag, tt.file, getenv, strings.NewReader(tt.stdin))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestNodeConfigURLPreview: url_preview reaches the node, off unless set.
func TestNodeConfigURLPreview(t *testing.T) {
	if nodeConfig(Config{}, nil).URLPreview {
		t.Error("URL previews on by default")
	}
	if !nodeConfig(Config{URLPreview: true}, nil).URLPreview {
		t.Error("url_preview: true did not reach the node")
	}
}

// TestMediaPrefetchDefault: media prefetch is on unless media_prefetch is
// false.
func TestMediaPrefetchDefault(t *testing.T) {
	off, on := false, true
	for _, c := range []struct {
		v    *bool
		want bool
	}{{nil, true}, {&on, true}, {&off, false}} {
		if got := (Config{MediaPrefetch: c.v}).mediaPrefetch(); got != c.want {
			t.Errorf("media_prefetch %v: prefetch %v, want %v", c.v, got, c.want)
		}
	}
}
