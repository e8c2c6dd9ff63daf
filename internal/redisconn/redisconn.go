// Package redisconn turns the --redis and --redis-cluster flags of the node and the coordinator
// into one go-redis client: a single Redis (redis.NewClient) or a Redis Cluster
// (redis.NewClusterClient). Exactly one of the two is given; Check says which is wrong, and
// nothing is dialled before Open.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MaxClusterAddrs bounds the seed addresses of --redis-cluster (the client learns the rest of
// the cluster from any one of them).
const MaxClusterAddrs = 64

// Errors of Check, wrapped with the details.
var (
	// ErrNone: neither a Redis URL nor cluster addresses.
	ErrNone = errors.New("one of --redis and --redis-cluster is required (or REDRAIN_REDIS, REDRAIN_REDIS_CLUSTER)")
	// ErrBoth: a Redis URL and cluster addresses (from the flags or the environment).
	ErrBoth = errors.New("--redis and --redis-cluster exclude each other (flags or REDRAIN_REDIS, REDRAIN_REDIS_CLUSTER): give one")
	// ErrAddr: a cluster address that is not host:port.
	ErrAddr = errors.New("bad --redis-cluster address")
)

// Check reports whether exactly one of url (--redis) and addrs (--redis-cluster) is given and
// well formed: url as go-redis parses it, each address host:port with a port in 1..65535, no
// address twice, at most MaxClusterAddrs. The error does not start with a flag name; callers
// add theirs.
func Check(url string, addrs []string) error {
	if err := CheckOne(url, addrs); err != nil {
		return err
	}
	if url != "" {
		_, err := redis.ParseURL(url)
		return err
	}
	return CheckAddrs(addrs)
}

// ParseAddrs reads a --redis-cluster value: host:port items joined by commas (spaces around
// an item are ignored), checked as Check does. "" is no address and no error.
func ParseAddrs(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := CheckAddrs(out); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckOne reports only ErrNone and ErrBoth: which of the two flags is given, not their values
// (a main checks that much; the options' validation names the bad value).
func CheckOne(url string, addrs []string) error {
	switch {
	case url == "" && len(addrs) == 0:
		return ErrNone
	case url != "" && len(addrs) > 0:
		return ErrBoth
	}
	return nil
}

// CheckAddrs checks cluster seed addresses (see Check).
func CheckAddrs(addrs []string) error {
	if len(addrs) == 0 {
		return fmt.Errorf("%w: no address", ErrAddr)
	}
	if len(addrs) > MaxClusterAddrs {
		return fmt.Errorf("%w: %d addresses, at most %d", ErrAddr, len(addrs), MaxClusterAddrs)
	}
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return err
		}
		if seen[a] {
			return fmt.Errorf("%w: %q given twice", ErrAddr, a)
		}
		seen[a] = true
	}
	return nil
}

// CheckAddr checks one cluster address: host:port (an IPv6 host in brackets), a non-empty
// host without spaces, commas or slashes, a decimal port in 1..65535.
func CheckAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%w: %q: want host:port", ErrAddr, a)
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n,/@") {
		return fmt.Errorf("%w: %q: bad host", ErrAddr, a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return fmt.Errorf("%w: %q: port must be 1..65535", ErrAddr, a)
	}
	return nil
}

// Open returns the client for what Check accepted: a cluster client when addrs is given (reads
// and writes go to the masters: a replica may lag, and the flush markers must be read where
// they are written), else a client of url. It dials nothing until the first command. It panics
// on what Check refuses (programmer error: check first).
func Open(url string, addrs []string) redis.UniversalClient {
	if err := Check(url, addrs); err != nil {
		panic("redisconn: Open without Check: " + err.Error())
	}
	if len(addrs) > 0 {
		return NewCluster(addrs)
	}
	o, _ := redis.ParseURL(url) // checked
	return redis.NewClient(o)
}

// NewCluster returns a cluster client of the seeds addrs that reads and writes on masters only
// and reloads its slot map after a failed command. go-redis reloads it on MOVED, and otherwise
// only every 10 s: after a master dies, its client keeps sending the dead master's slots to the
// dead address until then, although a replica was promoted within a couple of seconds. A
// failed command (a refused connection, a timeout, CLUSTERDOWN) asks for a reload in the
// background (go-redis runs at most one at a time), so the caller's next retry finds the new
// master.
func NewCluster(addrs []string) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	c.AddHook(reloadHook{c})
	return c
}

// reloadHook asks its client for a slot-map reload when a command or a pipeline fails for any
// reason but an answer of the server about the data (redis.Nil, a script's error, a wrong type).
type reloadHook struct{ c *redis.ClusterClient }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, err)
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(ctx, err)
		return err
	}
}

func (h reloadHook) after(ctx context.Context, err error) {
	if err != nil && topologyError(err) {
		h.c.ReloadState(ctx)
	}
}

// topologyError reports whether err may mean the slot map is stale: any error but the
// server's answer about the data. The server's own errors that are about the cluster
// (CLUSTERDOWN, TRYAGAIN, MASTERDOWN, READONLY from a demoted master, LOADING) count.
func topologyError(err error) bool {
	if errors.Is(err, redis.Nil) {
		return false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return true // the network, a timeout, a closed pool
	}
	for _, p := range []string{"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "LOADING", "MOVED", "ASK"} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}
