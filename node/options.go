package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"redrain/gossip"
	"redrain/internal/redisconn"
	"redrain/internal/usertoken"
)

// Options configure a node. Zero values mean the default noted on each field, except where
// a field is required.
type Options struct {
	ID         string   // required: unique member id, part of every claim_id
	HTTPAddr   string   // claim and internal API; "127.0.0.1:8080"; port 0 picks one
	GossipAddr string   // memberlist bind address; "127.0.0.1:7946"; port 0 picks one
	Join       []string // gossip addresses to join, retried while not live members
	DataDir    string   // required: holds journal.db
	RedisURL   string   // redis://host:port/db, flush target; this or RedisCluster is required
	// RedisCluster: host:port seeds of a Redis Cluster, the flush target instead of RedisURL
	// (exactly one of the two). Every key of a rain shares its hash tag, so its slot.
	RedisCluster []string
	Secret       string // required: cluster secret (gossip encryption, internal API HMAC)
	Advertise    string // IP peers reach this node at (a pod IP behind 0.0.0.0), with the bound ports; "" = bound

	// The connection timeouts (SPEC.md: "clients idle or slow past the read timeout are
	// disconnected"). ReadTimeout: a request's headers and body must arrive within it, the first
	// request on a new connection included (counted from the connection's opening); 5s.
	// IdleTimeout: how long a keep-alive connection may wait between an answer and the next
	// request's first byte; 0 = ReadTimeout (fasthttp's rule), so by default an idle client is
	// cut off after the read timeout. WriteTimeout: the answer must be written within it; 5s.
	ReadTimeout   time.Duration
	WriteTimeout  time.Duration
	IdleTimeout   time.Duration
	MaxConnsPerIP int // fasthttp per-IP connection limit; 0 = unlimited

	// Viewers' event streams (GET /v1/rooms/{room_id}/events, events.go). MaxSubscribers: at
	// most this many on the node (503 too_many_subscribers beyond); 0 = 10000.
	// MaxSubscribersPerIP: at most this many from one client address (429 too_many_subscribers);
	// 0 = 100. Heartbeat: pace of the comment line every subscriber gets; 0 = 15s.
	// EventWriteTimeout: a subscriber whose write (event or heartbeat) takes longer is dropped;
	// 0 = 500ms.
	MaxSubscribers      int
	MaxSubscribersPerIP int
	Heartbeat           time.Duration
	EventWriteTimeout   time.Duration

	// WALSize is the size of each of the journal's two write-ahead log files (preallocated, so a
	// claim's fdatasync writes no metadata); 0 = ledger.DefaultWALSize (16 MiB), at least 1 MiB.
	WALSize int64
	// ApplyEvery is how often logged claims move into bbolt in the background; 0 = 500ms.
	ApplyEvery time.Duration

	Auth           string   // "gateway" (X-User-Id from a trusted gateway) or "token"; "" = gateway
	UserKey        string   // token mode: the key user tokens are signed with (required there)
	IPRate         float64  // claims per second one client address may make; 0 = no limit
	IPBurst        int      // bucket size of the per-address limit; 0 = 2*IPRate
	TrustedProxies []string // IPs/CIDRs whose X-Forwarded-For last hop names the client

	Retention time.Duration // keep a finished rain's journal records at least this long; 24h
	// WalletGroup is the wallet's consumer group on the credit streams: a rain's records are
	// dropped only once it has acknowledged every entry holding them; "wallet".
	WalletGroup     string
	JanitorInterval time.Duration // pace of the retention check; 1m

	// StockWait bounds how long a claim on a node whose stock ran out waits for a move from a
	// node that holds packets, before it answers 410 exhausted; 0 = 50ms, at most 1s.
	StockWait time.Duration
	// NoStockMoves turns stock moves off: each node serves its own slices only (the behaviour
	// before stock followed demand; for comparisons).
	NoStockMoves bool

	FastGossip bool         // memberlist local timings (tests)
	Listener   net.Listener // optional: serve on this instead of binding HTTPAddr (tests)
	Logger     *slog.Logger // nil = slog.Default()

	// Redis, if set, is used instead of a client dialled from RedisURL (which may then be ""),
	// e.g. a ledger.MemRedis in handler tests; Close closes it. nil = dial RedisURL.
	Redis Redis
	// Cluster, if set, is used instead of memberlist: nothing is bound on GossipAddr and Join is
	// ignored, e.g. a LoneCluster in handler tests; Close leaves and shuts it down. nil =
	// memberlist on GossipAddr.
	Cluster Cluster
	// Journal, if set, is used instead of opening DataDir/journal.db (DataDir may then be ""),
	// e.g. a ledger.MemJournal of this node's ID; New recovers from it, Close closes it. WALSize
	// and ApplyEvery are then ignored. nil = open DataDir/journal.db.
	Journal Journal

	// OwnerTimeout bounds a claim's call to the node that counts its user's packets (owner.go):
	// past it the claim fails closed (503); 2s.
	OwnerTimeout time.Duration
	// OwnerHop is what a claim does when its user's owner is another node: OwnerHopForward
	// (""): the owner makes the whole claim (owner_forward.go); OwnerHopReserve: this node pops
	// and journals it after the owner's reservation (owner.go).
	OwnerHop string
	// OwnerJournal, if set, is used instead of opening DataDir/owners.db, the journal of the
	// reservations this node granted as an owner (a ledger.MemJournal of this node's ID in tests);
	// Close closes it. nil = DataDir/owners.db, or a new MemJournal when DataDir is "".
	OwnerJournal OwnerJournal
}

// Options.OwnerHop values.
const (
	OwnerHopForward = "forward"
	OwnerHopReserve = "reserve"
)

// DefaultStockWait is Options.StockWait's default.
const DefaultStockWait = 50 * time.Millisecond

// Limits on request bodies.
const (
	MaxClaimBody    = 4 << 10  // claim bodies over this get 413 body_too_large
	MaxInternalBody = 64 << 10 // largest internal request
)

// DefaultOptions returns the SPEC.md defaults.
func DefaultOptions() Options {
	return Options{
		HTTPAddr:     "127.0.0.1:8080",
		GossipAddr:   "127.0.0.1:7946",
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		IdleTimeout:  0, // the read timeout

		Retention:       24 * time.Hour,
		WalletGroup:     "wallet",
		JanitorInterval: time.Minute,
		OwnerTimeout:    DefaultOwnerTimeout,
	}
}

// LocalOptions returns options for tests: ports picked by the kernel, fast gossip.
func LocalOptions(id, dataDir, redisURL, secret string) Options {
	o := DefaultOptions()
	o.ID, o.DataDir, o.RedisURL, o.Secret = id, dataDir, redisURL, secret
	o.HTTPAddr, o.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	o.FastGossip = true
	o.WALSize = 1 << 20 // tests start many nodes
	return o
}

// Errors of New that are the operator's to fix; cmd/node exits 2 on either. New returns them
// before it creates or opens anything on disk.
var (
	// ErrOptions is wrapped by every validation error of Options; the message names the field
	// by its flag name.
	ErrOptions = errors.New("node: bad options")
	// ErrListen is wrapped when HTTPAddr or GossipAddr cannot be bound: malformed, the port in
	// use, or a host that is not an address of this machine. The message names the field by its
	// flag name and the address.
	ErrListen = errors.New("node: cannot listen")
)

func (o *Options) validate() error {
	bad := func(field, msg string) error { return fmt.Errorf("%w: %s: %s", ErrOptions, field, msg) }
	switch {
	case o.ID == "" || len(o.ID) > 64 || !urlSafe([]byte(o.ID)):
		return bad("id", "required, 1..64 characters of [A-Za-z0-9_-]")
	case o.HTTPAddr == "":
		return bad("http", "required")
	case o.GossipAddr == "":
		return bad("gossip", "required")
	case o.DataDir == "" && o.Journal == nil:
		return bad("data", "required")
	case o.Journal != nil && o.Journal.NodeID() != o.ID:
		return bad("id", fmt.Sprintf("the journal given belongs to node %q", o.Journal.NodeID()))
	case o.Advertise != "" && net.ParseIP(o.Advertise) == nil:
		return bad("advertise", fmt.Sprintf("%q is not an IP address", o.Advertise))
	case len(o.Join) > gossip.MaxJoin:
		return bad("join", fmt.Sprintf("at most %d addresses", gossip.MaxJoin))
	case len(o.Secret) < 8:
		return bad("secret", "required, at least 8 bytes")
	case o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.IdleTimeout < 0:
		return bad("timeouts", "must be >= 0")
	case o.WALSize != 0 && o.WALSize < 1<<20:
		return bad("wal-size", "at least 1 MiB")
	case o.ApplyEvery < 0:
		return bad("apply-every", "must be >= 0")
	case o.Retention < 0 || o.JanitorInterval < 0:
		return bad("retention", "must be >= 0")
	case len(o.WalletGroup) > 256:
		return bad("wallet-group", "at most 256 bytes")
	case o.Auth != "" && o.Auth != AuthGateway && o.Auth != AuthToken:
		return bad("auth", "must be gateway or token")
	case o.Auth == AuthToken && len(o.UserKey) < usertoken.MinKeyLen:
		return bad("user-key", fmt.Sprintf("required in token mode, at least %d bytes", usertoken.MinKeyLen))
	case o.StockWait < 0 || o.StockWait > time.Second:
		return bad("stock-wait", "must be in 0..1s")
	case o.OwnerTimeout < 0 || o.OwnerTimeout > time.Minute:
		return bad("owner-timeout", "must be in 0..1m")
	case o.OwnerHop != "" && o.OwnerHop != OwnerHopForward && o.OwnerHop != OwnerHopReserve:
		return bad("owner-hop", "must be forward or reserve")
	case o.OwnerJournal != nil && o.OwnerJournal.NodeID() != o.ID:
		return bad("id", fmt.Sprintf("the owners journal given belongs to node %q", o.OwnerJournal.NodeID()))
	case o.IPRate < 0 || o.IPRate > 1e9 || o.IPBurst < 0:
		return bad("ip-rate", "must be in 0..1e9, burst >= 0")
	case o.MaxSubscribers < 0 || o.MaxSubscribers > MaxSubscribersLimit:
		return bad("max-subscribers", fmt.Sprintf("must be in 0..%d", MaxSubscribersLimit))
	case o.MaxSubscribersPerIP < 0:
		return bad("max-subscribers-per-ip", "must be >= 0")
	case o.Heartbeat < 0 || (o.Heartbeat > 0 && o.Heartbeat < time.Millisecond):
		return bad("heartbeat", "must be 0 or >= 1ms")
	case o.EventWriteTimeout < 0:
		return bad("event-write-timeout", "must be >= 0")
	}
	if err := o.checkRedis(); err != nil {
		return err
	}
	if err := gossip.CheckAddr(o.GossipAddr); err != nil {
		return bad("gossip", err.Error())
	}
	for _, a := range o.Join {
		if err := gossip.CheckAddr(a); err != nil {
			return bad("join", err.Error())
		}
	}
	if _, err := ParseTrustedProxies(o.TrustedProxies); err != nil {
		return bad("trusted-proxies", err.Error())
	}
	o.fillDefaults()
	return nil
}

// checkRedis checks RedisURL and RedisCluster, unless Redis is given.
func (o *Options) checkRedis() error {
	if o.Redis != nil {
		return nil
	}
	err := redisconn.Check(o.RedisURL, o.RedisCluster)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redisconn.ErrNone), errors.Is(err, redisconn.ErrBoth):
		return fmt.Errorf("%w: redis: %v", ErrOptions, err)
	case errors.Is(err, redisconn.ErrAddr):
		return fmt.Errorf("%w: redis-cluster: %v", ErrOptions, err)
	}
	return fmt.Errorf("%w: redis: %v", ErrOptions, err)
}

// fillDefaults gives every zero field that has a default its default (validate has run).
func (o *Options) fillDefaults() {
	if o.Auth == "" {
		o.Auth = AuthGateway
	}
	d := DefaultOptions()
	if o.ReadTimeout == 0 {
		o.ReadTimeout = d.ReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = d.WriteTimeout
	}
	if o.Retention == 0 {
		o.Retention = d.Retention
	}
	if o.WalletGroup == "" {
		o.WalletGroup = d.WalletGroup
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = d.JanitorInterval
	}
	if o.StockWait == 0 {
		o.StockWait = DefaultStockWait
	}
	o.fillEventDefaults()
	if o.OwnerTimeout == 0 {
		o.OwnerTimeout = d.OwnerTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}
