package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// measureRun starts a node on an empty data directory, reads its idle
// memory, connects the peers, loads the rooms, reads its memory again and
// stops it.
func measureRun(ctx context.Context, o opts, data string, r *report) error {
	p, took, err := startNode(ctx, o.bin, data, nil)
	if err != nil {
		return err
	}
	r.firstStart = took
	defer p.stop()
	time.Sleep(o.settle)
	if r.idle, err = p.readMemory(); err != nil {
		return err
	}
	addr := p.peerAddrs[0]
	for _, a := range p.peerAddrs {
		if strings.Contains(a, "/quic-v1/") {
			addr = a
		}
	}
	hosts, err := connectPeers(ctx, o.peers, addr)
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()
	if err != nil {
		return err
	}
	c, err := register(ctx, p.base)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if r.messages, err = loadRooms(ctx, c, o.rooms, o.events); err != nil {
		return err
	}
	r.loadTime = time.Since(t0)
	if err := syncOnce(ctx, c); err != nil {
		return err
	}
	if r.afterLoad, err = p.readMemory(); err != nil {
		return err
	}
	time.Sleep(o.settle)
	if r.loadSettled, err = p.readMemory(); err != nil {
		return err
	}
	r.peersConnected = len(hosts)
	return p.stop()
}

// measureDisk sums the data directory after a clean shutdown: bytes
// allocated on disk (what du reports) and apparent file sizes.
func measureDisk(data string, r *report) error {
	return filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		r.diskApparent += info.Size()
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("disk: no block count on this system")
		}
		r.diskAllocated += st.Blocks * 512
		return nil
	})
}

// measureStartups restarts the node on the loaded database o.startups times,
// timing each from exec to the first answer of /versions; after the first
// it also reads idle memory on the loaded database.
func measureStartups(ctx context.Context, o opts, data string, r *report) error {
	for i := range o.startups {
		p, took, err := startNode(ctx, o.bin, data, nil)
		if err != nil {
			return fmt.Errorf("restart %d: %w", i, err)
		}
		r.startups = append(r.startups, took)
		if i == 0 {
			time.Sleep(o.settle)
			if r.idleLoaded, err = p.readMemory(); err != nil {
				_ = p.stop()
				return err
			}
		}
		if err := p.stop(); err != nil {
			return fmt.Errorf("restart %d: stop: %w", i, err)
		}
	}
	slices.Sort(r.startups)
	return nil
}
