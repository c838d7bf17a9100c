package kv_test

import (
	"context"
	"slices"
	"testing"

	"github.com/edgenode/edgenode/kv"
)

func TestProfiles(t *testing.T) {
	tests := []struct {
		name     string
		wantName string // "" means an error is expected
	}{
		{"phone", "phone"},
		{"pi", "pi"},
		{"server", "server"},
		{"", "pi"},
		{"desktop", ""},
		{"PHONE", ""},
		{" pi", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := kv.ProfileByName(tt.name)
			if tt.wantName == "" {
				if err == nil {
					t.Fatalf("ProfileByName(%q) = %+v, want error", tt.name, p)
				}
				return
			}
			if err != nil || p.Name != tt.wantName {
				t.Fatalf("ProfileByName(%q) = %q, %v; want %q", tt.name, p.Name, err, tt.wantName)
			}
			db, err := kv.Open(context.Background(), kv.Options{Dir: t.TempDir(), Profile: p})
			if err != nil {
				t.Fatalf("Open with %q: %v", p.Name, err)
			}
			key := kv.Key("t", "k")
			if err := db.Update(func(tx *kv.Txn) error { return tx.Set(key, []byte("v")) }); err != nil {
				t.Fatal(err)
			}
			if v, ok := get(t, db, key); !ok || string(v) != "v" {
				t.Fatalf("Get = %q, %v", v, ok)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got, want := kv.ProfileNames(), []string{"phone", "pi", "server"}; !slices.Equal(got, want) {
		t.Errorf("ProfileNames = %v, want %v", got, want)
	}
	if kv.DefaultProfile != "pi" {
		t.Errorf("DefaultProfile = %q, want pi", kv.DefaultProfile)
	}
}

func TestOpen(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		opts    kv.Options
		wantErr bool
	}{
		{"zero profile uses default", context.Background(), kv.Options{Dir: t.TempDir()}, false},
		{"no sync writes", context.Background(), kv.Options{Dir: t.TempDir(), NoSyncWrites: true}, false},
		{"no directory", context.Background(), kv.Options{}, true},
		{"canceled context", canceled, kv.Options{Dir: t.TempDir()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := kv.Open(tt.ctx, tt.opts)
			if tt.wantErr {
				if err == nil {
					db.Close()
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
