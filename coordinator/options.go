package coordinator

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

// Options configure a coordinator. Zero values mean the default noted on each field, except
// where a field is required.
type Options struct {
	HTTPAddr   string   // admin API; "127.0.0.1:9090"; port 0 picks one (see Addr)
	GossipAddr string   // memberlist bind address; "127.0.0.1:7000"; port 0 picks one
	Join       []string // gossip addresses to join, retried while not live members
	DataDir    string   // required: holds coordinator.db
	RedisURL   string   // redis://host:port/db, read for totals; redrain:rains is written; this or RedisCluster is required
	// RedisCluster: host:port seeds of a Redis Cluster, instead of RedisURL (exactly one of the two).
	RedisCluster []string
	Secret       string // required, >= 8 bytes: cluster secret (gossip key, internal API HMAC)
	AdminToken   string // required, >= 8 bytes: the admin API bearer token
	UserKey      string // optional, >= usertoken.MinKeyLen bytes: the nodes' --user-key; enables POST /v1/tokens (test tokens)
	ID           string // gossip member id; "coordinator"
	Advertise    string // IP peers reach it at (a pod IP behind 0.0.0.0), with the bound ports; "" = bound

	PrepareTimeout time.Duration // every slice acked within this, or the prepare fails; 10s
	PollInterval   time.Duration // pace of the finish/settle loop; 500ms
	FastGossip     bool          // memberlist local timings (tests)

	// Webhook, if set, receives every rain transition as a signed POST (see webhook.go);
	// WebhookSecret (required with it, >= MinWebhookSecret bytes) signs it. It is not the cluster
	// secret: the platform's receiver must not hold the key of the cluster's internal API.
	Webhook       string
	WebhookSecret string
	WebhookRetry  time.Duration // delay before the first retry, doubled each time (at most 30s); 500ms
	Logger        *slog.Logger  // nil = slog.Default()
}

// DefaultOptions returns the SPEC.md defaults (the required fields are left empty).
func DefaultOptions() Options {
	return Options{
		HTTPAddr:       "127.0.0.1:9090",
		GossipAddr:     "127.0.0.1:7000",
		ID:             "coordinator",
		PrepareTimeout: 10 * time.Second,
		PollInterval:   500 * time.Millisecond,
	}
}

// Errors of New that are the operator's to fix; cmd/coordinator exits 2 on either. New returns
// them before it creates or opens anything on disk.
var (
	// ErrOptions is wrapped by every validation error of Options; the message names the field.
	ErrOptions = errors.New("coordinator: bad options")
	// ErrListen is wrapped when HTTPAddr or GossipAddr cannot be bound: malformed, the port in
	// use, or a host that is not an address of this machine. The message names the field and the
	// address.
	ErrListen = errors.New("coordinator: cannot listen")
)

// Limits of Options.
const (
	MinSecretLen      = 8
	MaxPrepareTimeout = 10 * time.Minute
	MinPollInterval   = time.Millisecond
)

// validate checks o and fills in the defaults of zero fields.
func (o *Options) validate() error {
	bad := func(field, msg string) error { return fmt.Errorf("%w: %s: %s", ErrOptions, field, msg) }
	switch {
	case o.DataDir == "":
		return bad("DataDir", "required")
	case len(o.Secret) < MinSecretLen:
		return bad("Secret", fmt.Sprintf("required, at least %d bytes", MinSecretLen))
	case len(o.AdminToken) < MinSecretLen:
		return bad("AdminToken", fmt.Sprintf("required, at least %d bytes", MinSecretLen))
	case o.PrepareTimeout < 0 || o.PrepareTimeout > MaxPrepareTimeout:
		return bad("PrepareTimeout", fmt.Sprintf("must be in 0..%v", MaxPrepareTimeout))
	case o.PollInterval < 0 || (o.PollInterval > 0 && o.PollInterval < MinPollInterval):
		return bad("PollInterval", fmt.Sprintf("must be 0 or >= %v", MinPollInterval))
	case o.UserKey != "" && len(o.UserKey) < usertoken.MinKeyLen:
		return bad("UserKey", fmt.Sprintf("at least %d bytes when given (the nodes' rule)", usertoken.MinKeyLen))
	case len(o.ID) > 64:
		return bad("ID", "at most 64 bytes")
	case o.Advertise != "" && net.ParseIP(o.Advertise) == nil:
		return bad("Advertise", fmt.Sprintf("%q is not an IP address", o.Advertise))
	case len(o.Join) > gossip.MaxJoin:
		return bad("Join", fmt.Sprintf("at most %d addresses", gossip.MaxJoin))
	case o.Webhook != "" && len(o.WebhookSecret) < MinWebhookSecret:
		return bad("WebhookSecret", fmt.Sprintf("required with Webhook, at least %d bytes", MinWebhookSecret))
	case o.WebhookRetry < 0:
		return bad("WebhookRetry", "must be >= 0")
	}
	if o.Webhook != "" {
		if err := checkWebhookURL(o.Webhook); err != nil {
			return bad("Webhook", err.Error())
		}
	}
	if err := redisconn.Check(o.RedisURL, o.RedisCluster); err != nil {
		field := "RedisURL"
		if errors.Is(err, redisconn.ErrAddr) {
			field = "RedisCluster"
		}
		return bad(field, err.Error())
	}
	o.fillDefaults()
	if err := gossip.CheckID(o.ID); err != nil {
		return bad("ID", err.Error())
	}
	if err := gossip.CheckAddr(o.GossipAddr); err != nil {
		return bad("GossipAddr", err.Error())
	}
	for _, a := range o.Join {
		if err := gossip.CheckAddr(a); err != nil {
			return bad("Join", err.Error())
		}
	}
	return nil
}

func (o *Options) fillDefaults() {
	d := DefaultOptions()
	if o.HTTPAddr == "" {
		o.HTTPAddr = d.HTTPAddr
	}
	if o.GossipAddr == "" {
		o.GossipAddr = d.GossipAddr
	}
	if o.ID == "" {
		o.ID = d.ID
	}
	if o.PrepareTimeout == 0 {
		o.PrepareTimeout = d.PrepareTimeout
	}
	if o.PollInterval == 0 {
		o.PollInterval = d.PollInterval
	}
	if o.WebhookRetry == 0 {
		o.WebhookRetry = webhookFirstDelay
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// LocalOptions returns options for tests: kernel-picked ports on 127.0.0.1, fast gossip, a
// short prepare deadline and a quick loop.
func LocalOptions(dataDir, redisURL, secret, adminToken string) Options {
	o := DefaultOptions()
	o.HTTPAddr, o.GossipAddr = "127.0.0.1:0", "127.0.0.1:0"
	o.DataDir, o.RedisURL, o.Secret, o.AdminToken = dataDir, redisURL, secret, adminToken
	o.PrepareTimeout = 2 * time.Second
	o.PollInterval = 50 * time.Millisecond
	o.FastGossip = true
	return o
}
