package node

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

// Node is one homeserver: its database, its key and the services on them.
type Node struct {
	cfg        Config
	log        *slog.Logger
	db         *kv.DB
	key        ed25519.PrivateKey
	serverName string
	stream     *kv.Stream
	states     *stateStore
	pdus       *pduCache
	userBumps  *userBumpCache // sliding sync room lists (userbump_cache.go)
	roomLocks  *stripedLocks
	// txnLocks serialise inbound federation transactions per origin; apart
	// from roomLocks, which are taken while one is held.
	txnLocks *keyedLocks
	// joinLocks serialise remote joins of one room (fedjoin_chunks.go).
	joinLocks *keyedLocks
	notifier  *notifier
	now       func() time.Time
	closeOnce sync.Once
	closeErr  error
	// life ends when Close starts (endLife): work detached from its caller
	// (detached) ends then.
	life    context.Context
	endLife context.CancelFunc

	// toDevice numbers to-device messages and deviceLists device-list
	// changes: each is a stream of its own, so a sync token carries both.
	toDevice    *kv.Stream
	deviceLists *kv.Stream

	// accountData, receipts and presence number changes to account data,
	// receipts and presence; typing is in memory (see typing.go).
	accountData *kv.Stream
	receipts    *kv.Stream
	presence    *kv.Stream
	typing      *typingState

	// fed is the outbound federation queues' in-memory side (fedqueue.go).
	fed fedState
	// edu is the outbound EDU queues' in-memory side (eduqueue.go).
	edu eduState

	// remote reaches other servers: joins, leaves, invites, queries and
	// missing events (remote.go).
	remote guarded[Remote]
	// joining are the rooms being joined through the remote (joining.go).
	joining joiningRooms

	// sticky sweeps expired sticky events from their indexes (sticky_sweep.go).
	sticky *stickySweeper
	// presenceWatch decays presence: syncs in flight and the one timer
	// (presence_decay.go).
	presenceWatch *presenceWatch

	// Inbound federation against floods (issue 13): rejected remembers the
	// verdict on rejected events, which are not stored (rejectedmarks.go);
	// txnResponses are the responses of inbound transactions that changed
	// nothing, kept in memory only (InboundTxn); membersGen moves on
	// whenever a commit changes a room's members (SharedServersGen).
	rejected     *rejectedMarks
	txnResponses *lru[string, []byte]
	membersGen   atomic.Uint64

	// dirWatch checks the data directory (health.go); newEvents tells an
	// app of events for its users (newevents.go).
	dirWatch       *dataDirWatch
	storageWarning atomic.Pointer[string]
	storageWarned  chan struct{}
	newEvents      newEventHook

	// indexers keep the secondary indexes of room events in each room
	// commit, in this order (indexer.go).
	indexers []Indexer

	// vlogGC collects value-log garbage (vloggc.go); valueThreshold is the
	// profile's: smaller values are not in the value log.
	vlogGC         *valueLogGC
	valueThreshold int64
}

// New opens the node's data directory (creating it, its key and its database
// on first use). The node is usable as soon as New returns; Close releases it.
func New(ctx context.Context, cfg Config) (*Node, error) {
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
		db:         db,
		key:        key,
		serverName: cfg.ServerName,
		stream:     stream,
		states:     newStateStore(budget.states),
		pdus:       newSizedLRU[string](maxCachedPDUs, budget.pdus, pduCacheSize),
		userBumps:  newUserBumpCache(budget.bumps),
		roomLocks:  newStripedLocks(),
		txnLocks:   newKeyedLocks(),
		joinLocks:  newKeyedLocks(),
		notifier:   newNotifier(),
		now:        time.Now,

		storageWarned: make(chan struct{}, 1),
	}
	if cfg.Clock != nil {
		n.now = cfg.Clock
	}
	n.indexers = newIndexers(n)
	// Not derived from ctx, which only bounds opening.
	n.life, n.endLife = context.WithCancel(context.Background())
	n.rejected = newRejectedMarks()
	n.txnResponses = newLRU[string, []byte](maxTxnResponsesInMemory)
	if n.serverName == "" {
		n.serverName = identity.ServerNameForKey(key.Public().(ed25519.PublicKey))
	}
	if err := n.openE2EEStreams(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.openUserDataStreams(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.openEDUQueue(); err != nil {
		db.Close()
		return nil, err
	}
	if err := n.dropAbandonedJoins(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := n.openPresenceDecay(ctx); err != nil {
		n.stopPresenceDecay()
		db.Close()
		return nil, fmt.Errorf("node: presence: %w", err)
	}
	n.startStickySweeper()
	n.valueThreshold = db.ValueThreshold()
	n.startValueLogGC(cfg.ValueLogGCInterval, db.ValueLogFileSize())
	if err := n.startDataDirWatch(dbDir); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close waits for in-flight room input and closes the database. Calling it
// again returns the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.endLife()
		for _, mu := range n.roomLocks {
			mu <- struct{}{} // no input can start or be under way after this
		}
		n.stopTyping()        // its timer reads the database
		n.stopStickySweeper() // so does the sweeper
		n.stopPresenceDecay() // and the presence timer
		n.stopDataDirWatch()
		n.stopNewEvents()  // newevents.go
		n.stopValueLogGC() // and the value-log GC
		n.closeErr = n.db.Close()
	})
	return n.closeErr
}

// ServerName is the node's Matrix server name.
func (n *Node) ServerName() string { return n.serverName }

// PublicKey is the node's ed25519 public key (its Matrix signing key and its
// libp2p identity).
func (n *Node) PublicKey() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// Config returns the configuration the node was created with.
func (n *Node) Config() Config { return n.cfg }

// StreamPosition is the latest committed room-event stream position.
func (n *Node) StreamPosition() uint64 { return n.stream.Current() }

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// detached is a context for work that should finish even if its caller
// stops waiting: it keeps ctx's values but not its cancellation, and ends
// after timeout or when the node closes.
func (n *Node) detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	stop := context.AfterFunc(n.life, cancel)
	return dctx, func() { stop(); cancel() }
}
