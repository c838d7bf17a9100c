package core

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgenode/edgenode/internal/identity"
	"github.com/edgenode/edgenode/kv"
)

// Node is a node's room core: its database, its key, room input and state,
// and the commit that runs the registered indexers. The node package wraps it
// with the concerns around it.
type Node struct {
	cfg        Config
	log        *slog.Logger
	DB         *kv.DB
	key        ed25519.PrivateKey
	serverName string
	Stream     *kv.Stream
	States     *stateStore
	pdus       *pduCache
	UserBumps  *userBumpCache // sliding sync room lists (userbump_cache.go)
	roomLocks  *stripedLocks
	// TxnLocks serialise inbound federation transactions per origin; apart
	// from roomLocks, which are taken while one is held.
	TxnLocks *keyedLocks
	// JoinLocks serialise remote joins of one room (node/inbound/fedjoin_chunks.go).
	JoinLocks *keyedLocks
	Notifier  *notifier
	Now       func() time.Time
	closeOnce sync.Once
	closeErr  error
	// Life ends when Close starts (endLife): work detached from its caller
	// (detached) ends then.
	Life    context.Context
	endLife context.CancelFunc

	// federation is the node's federation side (federation.go).
	federation Federation
	// onClose stop the node's timers and workers when it closes (OnClose).
	onClose []func()

	// Inbound federation against floods (issue 13): rejected remembers the
	// verdict on rejected events, which are not stored (rejectedmarks.go);
	// txnResponses are the responses of inbound transactions that changed
	// nothing, kept in memory only (InboundTxn); membersGen moves on
	// whenever a commit changes a room's members (SharedServersGen).
	rejected     *rejectedMarks
	TxnResponses *lru[string, []byte]
	membersGen   atomic.Uint64

	// dirWatch checks the data directory (health.go).
	dirWatch       *dataDirWatch
	storageWarning atomic.Pointer[string]
	storageWarned  chan struct{}

	// indexers keep the secondary indexes of room events in each room
	// commit, in this order (indexer.go).
	indexers []Indexer

	// vlogGC collects value-log garbage (vloggc.go); valueThreshold is the
	// profile's: smaller values are not in the value log.
	vlogGC         *valueLogGC
	valueThreshold int64
}

// Open opens the node's data directory (creating it, its key and its
// database on first use) and starts the room core's own workers. New adds the
// concerns around it before the node is used.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: no data directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultRoomVersion == "" {
		cfg.DefaultRoomVersion = DefaultRoomVersion
	}
	if !supportedRoomVersions[cfg.DefaultRoomVersion] {
		return nil, fmt.Errorf("node: default room version %q: %w", cfg.DefaultRoomVersion, ErrUnsupportedRoomVersion)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	key, err := loadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	profile, err := kv.ProfileByName(cfg.StorageProfile)
	if err != nil {
		return nil, err
	}
	dbDir := filepath.Join(cfg.DataDir, "db")
	db, err := kv.Open(ctx, kv.Options{
		Dir: dbDir, Profile: profile, NoSyncWrites: cfg.NoSyncWrites, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = DefaultCacheBytes(profile.Name)
	}
	budget := splitCacheBudget(cfg.CacheBytes)
	stream, err := db.Stream(streamRoomEvents)
	if err != nil {
		db.Close()
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		DB:         db,
		key:        key,
		serverName: cfg.ServerName,
		Stream:     stream,
		States:     newStateStore(budget.states),
		pdus:       newSizedLRU[string](maxCachedPDUs, budget.pdus, pduCacheSize),
		UserBumps:  newUserBumpCache(budget.bumps),
		roomLocks:  newStripedLocks(),
		TxnLocks:   newKeyedLocks(),
		JoinLocks:  newKeyedLocks(),
		Notifier:   newNotifier(),
		Now:        time.Now,

		storageWarned: make(chan struct{}, 1),
	}
	if cfg.Clock != nil {
		n.Now = cfg.Clock
	}
	// Not derived from ctx, which only bounds opening.
	n.Life, n.endLife = context.WithCancel(context.Background())
	n.rejected = newRejectedMarks()
	n.TxnResponses = newLRU[string, []byte](maxTxnResponsesInMemory)
	if n.serverName == "" {
		n.serverName = identity.ServerNameForKey(key.Public().(ed25519.PublicKey))
	}
	n.valueThreshold = db.ValueThreshold()
	n.startValueLogGC(cfg.ValueLogGCInterval, db.ValueLogFileSize())
	if err := n.startDataDirWatch(dbDir); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close waits for in-flight room input, stops what OnClose registered, and
// closes the database. Calling it again returns the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.endLife()
		for _, mu := range n.roomLocks {
			mu <- struct{}{} // no input can start or be under way after this
		}
		for _, stop := range n.onClose {
			stop() // timers and workers that read the database
		}
		n.stopDataDirWatch()
		n.stopValueLogGC() // the value-log GC too
		n.closeErr = n.DB.Close()
	})
	return n.closeErr
}

// OnClose registers stop to run when the node closes, after room input has
// stopped and before the database closes, in the order registered. Call it
// while the node is being assembled, not while it serves.
func (n *Node) OnClose(stop func()) { n.onClose = append(n.onClose, stop) }

// ServerName is the node's Matrix server name.
func (n *Node) ServerName() string { return n.serverName }

// PublicKey is the node's ed25519 public key (its Matrix signing key and its
// libp2p identity).
func (n *Node) PublicKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// Config returns the configuration the node was created with.
func (n *Node) Config() Config { return n.cfg }

// StreamPosition is the latest committed room-event stream position.
func (n *Node) StreamPosition() uint64 { return n.Stream.Current() }

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Detached is a context for work that should finish even if its caller
// stops waiting: it keeps ctx's values but not its cancellation, and ends
// after timeout or when the node closes.
func (n *Node) Detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	stop := context.AfterFunc(n.Life, cancel)
	return dctx, func() { stop(); cancel() }
}
