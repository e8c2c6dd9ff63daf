package gossip

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Options configure a Cluster member. Zero values mean the default noted on each field, except
// where a field is required.
type Options struct {
	Meta          Meta     // required: this member's id (unique in the cluster), role and HTTP address
	BindAddr      string   // gossip host:port (UDP and TCP); "127.0.0.1:7946"; port 0 picks one
	AdvertiseAddr string   // host:port peers should use, when not BindAddr (NAT, 0.0.0.0); port 0 = the bound port; "" = bound address
	Secret        string   // cluster secret; the gossip key is derived from it. Required unless Insecure.
	Insecure      bool     // allow an empty Secret: gossip in clear text (never in production)
	Join          []string // host:port of members to join; retried every RejoinInterval while not live members

	RejoinInterval      time.Duration // pace of the join retry loop; 3s
	DeadNodeReclaimTime time.Duration // after this long dead, a member's id may come back from a new address; 2s
	NewsRetention       time.Duration // news whose rain ended longer ago than this is dropped and refused; 48h
	MemberRetention     time.Duration // dead/left members are forgotten after this long; 24h
	MaxNews             int           // most rains kept (those ending last win); 10000

	// TrackSuspects pings every live member each probe interval and reports a member whose two
	// pings in a row go unanswered as StateSuspect until it answers or memberlist declares it
	// dead. memberlist does not expose its own suspect state (Members() hands out pointers that
	// race with its updates, and v0.5.4 never fills Node.State), so without this a member goes
	// from alive straight to dead. Costs one ping per member per probe interval: meant for the
	// coordinator, not for every node.
	TrackSuspects bool
	Fast          bool // memberlist local timings shrunk for tests: a crash is declared dead in ~1-2 s

	Logger *slog.Logger // memberlist's log is routed here too (by its level tags); nil = slog.Default()

	// Callbacks, each may be nil. They run one at a time on a goroutine of their own, never under
	// a lock, and are coalesced: while one waits, a newer event for the same member (or rain)
	// replaces it, so a slow callback sees the latest state. They must not call Shutdown.
	OnMember func(Member) // a member joined, changed, became suspect, died or left (us included)
	OnNews   func(News)   // a newer version of a rain's news arrived from a peer
}

// Defaults and limits of Options.
const (
	DefaultBindAddr = "127.0.0.1:7946"
	MaxIDLen        = 128 // bytes of Meta.ID
	MaxJoin         = 64  // entries of Options.Join
)

// DefaultOptions returns production timings (memberlist's LAN config); Meta and Secret are left
// for the caller.
func DefaultOptions() Options {
	return Options{
		BindAddr:            DefaultBindAddr,
		RejoinInterval:      3 * time.Second,
		DeadNodeReclaimTime: 2 * time.Second,
		NewsRetention:       48 * time.Hour,
		MemberRetention:     24 * time.Hour,
		MaxNews:             10000,
	}
}

// LocalOptions returns options for tests: a kernel-picked port on 127.0.0.1 and Fast timings.
func LocalOptions() Options {
	o := DefaultOptions()
	o.BindAddr = "127.0.0.1:0"
	o.RejoinInterval = 200 * time.Millisecond
	o.DeadNodeReclaimTime = 500 * time.Millisecond
	o.Fast = true
	return o
}

// Errors returned by New and the Cluster's methods.
var (
	// ErrOptions is wrapped by every validation error of Options; the message names the field.
	ErrOptions = errors.New("gossip: bad options")
	// ErrNoSecret: Options.Secret is empty and Options.Insecure is not set.
	ErrNoSecret = errors.New("gossip: no cluster secret (refusing to gossip in clear text)")
	// ErrMetaTooLarge: the encoded Meta exceeds memberlist.MetaMaxSize (512 bytes).
	ErrMetaTooLarge = errors.New("gossip: node meta too large")
	// ErrInvalidNews: Publish got News with an empty or too long code, an unknown kind or version 0.
	ErrInvalidNews = errors.New("gossip: invalid news")
	// ErrStaleNews: Publish got a version older than the one known (or the same version, changed).
	ErrStaleNews = errors.New("gossip: stale news version")
	// ErrClosed: the Cluster was shut down, or a Bound was already started or closed.
	ErrClosed = errors.New("gossip: cluster shut down")
)

// GossipKeyLabel is the derivation label of the gossip encryption key.
const GossipKeyLabel = "redrain/gossip/v1"

// GossipKey derives the 32-byte memberlist key (AES-256) from the cluster secret, so the secret
// itself never goes on the wire or into memberlist.
func GossipKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(GossipKeyLabel))
	return m.Sum(nil)
}

// validate checks o and fills in the defaults of zero fields.
func (o *Options) validate() error {
	bad := func(field, msg string) error { return fmt.Errorf("%w: %s: %s", ErrOptions, field, msg) }
	if err := o.Meta.validate(); err != nil {
		return err
	}
	if o.Secret == "" && !o.Insecure {
		return ErrNoSecret
	}
	d := DefaultOptions()
	if o.BindAddr == "" {
		o.BindAddr = d.BindAddr
	}
	if _, _, err := splitHostPort(o.BindAddr); err != nil {
		return bad("BindAddr", err.Error())
	}
	if o.AdvertiseAddr != "" {
		if _, _, err := splitHostPort(o.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr", err.Error())
		}
	}
	if len(o.Join) > MaxJoin {
		return bad("Join", fmt.Sprintf("at most %d addresses", MaxJoin))
	}
	for _, a := range o.Join {
		if _, _, err := splitHostPort(a); err != nil {
			return bad("Join", err.Error())
		}
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RejoinInterval", &o.RejoinInterval, d.RejoinInterval},
		{"DeadNodeReclaimTime", &o.DeadNodeReclaimTime, d.DeadNodeReclaimTime},
		{"NewsRetention", &o.NewsRetention, d.NewsRetention},
		{"MemberRetention", &o.MemberRetention, d.MemberRetention},
	}
	for _, f := range durations {
		if *f.v < 0 {
			return bad(f.name, "must be >= 0")
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.MaxNews < 0 {
		return bad("MaxNews", "must be >= 0")
	}
	if o.MaxNews == 0 {
		o.MaxNews = d.MaxNews
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// CheckAddr reports whether addr has the form every gossip address takes (BindAddr,
// AdvertiseAddr, each Join entry): host:port with a host and a numeric port 0..65535. Callers
// that take these from flags check them with it before acquiring anything.
func CheckAddr(addr string) error {
	_, _, err := splitHostPort(addr)
	return err
}

// splitHostPort parses "host:port" with a numeric port (0 allowed) and a non-empty host.
func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if host == "" {
		return "", 0, fmt.Errorf("missing host in %q", addr)
	}
	return host, port, nil
}

// memberlistConfig maps validated options onto a memberlist configuration that gossips on nt,
// bound to port.
func (o *Options) memberlistConfig(nt *memberlist.NetTransport, port int) *memberlist.Config {
	var cfg *memberlist.Config
	if o.Fast {
		cfg = fastConfig()
	} else {
		cfg = memberlist.DefaultLANConfig()
	}
	cfg.Name = o.Meta.ID
	cfg.Transport = nt
	cfg.BindAddr, _, _ = splitHostPort(o.BindAddr)
	cfg.BindPort = port // memberlist fills in this port where a peer's message leaves it out
	cfg.AdvertiseAddr, cfg.AdvertisePort = "", port
	if o.AdvertiseAddr != "" {
		cfg.AdvertiseAddr, cfg.AdvertisePort, _ = splitHostPort(o.AdvertiseAddr)
		if cfg.AdvertisePort == 0 { // the host alone was given (a pod's IP): the port bound
			cfg.AdvertisePort = port
		}
	}
	if o.Secret != "" {
		cfg.SecretKey = GossipKey(o.Secret)
		cfg.GossipVerifyIncoming = true
		cfg.GossipVerifyOutgoing = true
	}
	cfg.DeadNodeReclaimTime = o.DeadNodeReclaimTime
	// No LZW: memberlist compresses every packet after packing it (so it never fits more
	// broadcasts in one) with a fresh compress/lzw writer, a 64 KiB table allocated per packet
	// sent, to save a few hundred bytes of our small messages. With 300 members in one process
	// (bench scale) compress/lzw was 27% of the CPU profile before the collection of its garbage,
	// and probes timed out. Peers still read compressed messages, so old and new members mix.
	cfg.EnableCompression = false
	cfg.Logger = newMemberlistLogger(o.Logger.With("id", o.Meta.ID))
	return cfg
}

// fastConfig is memberlist's local config shrunk so that a test cluster converges and declares a
// crashed member dead within a second or two (suspicion lasts 4..8 probe intervals).
func fastConfig() *memberlist.Config {
	cfg := memberlist.DefaultLocalConfig()
	cfg.ProbeInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = 150 * time.Millisecond
	cfg.SuspicionMult = 4
	cfg.SuspicionMaxTimeoutMult = 2
	cfg.GossipInterval = 50 * time.Millisecond
	cfg.PushPullInterval = 500 * time.Millisecond
	cfg.GossipToTheDeadTime = 2 * time.Second
	cfg.TCPTimeout = 2 * time.Second
	return cfg
}
