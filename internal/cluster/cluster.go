package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/proc"
	"redrain/internal/rediscluster"
	"redrain/internal/redisconn"
)

// ClusterOptions describe a local cluster of real processes on 127.0.0.1.
type ClusterOptions struct {
	Nodes      int    // node processes; 0 means 3
	BinDir     string // holds the node and coordinator binaries; "" = beside the running executable
	Dir        string // data and logs go here; required
	RedisBin   string // "" = redis-server from PATH
	Secret     string // cluster secret; "" = random
	AdminToken string // admin token; "" = random
	FastGossip bool   // fast failure detection (tests, demos)
	// RedisCluster: the processes use this Redis Cluster (--redis-cluster, host:port seeds)
	// instead of a redis-server the cluster starts.
	RedisCluster []string
	// LocalRedisCluster: start a Redis Cluster of three masters with a replica each on
	// 127.0.0.1 (rediscluster.Start) instead of one redis-server.
	LocalRedisCluster bool
	NodeArgs          []string // extra flags for every node
	CoordArgs         []string // extra flags for the coordinator
	// CoordinatorLast starts the nodes first (they keep retrying their join) and the
	// coordinator after them, with no join list of its own: the nodes must find it.
	CoordinatorLast bool
}

// LocalNode is one node process of a LocalCluster.
type LocalNode struct {
	ID, HTTP, Gossip, Data string
	Proc                   *proc.Proc
	Env                    []string // extra environment for this node's next start (tests' failpoints)
}

// LocalCluster is redis-server, one coordinator and N nodes running as child processes.
type LocalCluster struct {
	Opts        ClusterOptions
	RedisAddr   string
	Redis       *proc.Proc
	CoordHTTP   string
	CoordGossip string
	Coord       *proc.Proc
	Nodes       []*LocalNode
	// RedisCl is the Redis Cluster the cluster started (Opts.LocalRedisCluster), else nil.
	RedisCl *rediscluster.Cluster
	rdb     redis.UniversalClient
}

// StartTimeout bounds each process's readiness wait.
const StartTimeout = 60 * time.Second

// StartCluster starts redis-server, the coordinator and the nodes, and waits until every node
// is ready and the coordinator sees them all alive. On error everything started is stopped.
func StartCluster(ctx context.Context, o ClusterOptions) (*LocalCluster, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Dir == "" {
		return nil, errors.New("cluster: ClusterOptions.Dir is required")
	}
	if o.BinDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.BinDir = filepath.Dir(exe)
	}
	if o.RedisBin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, fmt.Errorf("cluster: redis-server not found (apt-get install -y redis-server, or make demo installs it): %w", err)
		}
		o.RedisBin = p
	}
	if o.Secret == "" {
		o.Secret = RandomHex(16)
	}
	if o.AdminToken == "" {
		o.AdminToken = RandomHex(16)
	}
	c := &LocalCluster{Opts: o}
	err := c.start(ctx)
	if err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *LocalCluster) start(ctx context.Context) error {
	if err := c.startRedis(ctx); err != nil {
		return err
	}
	var err error
	if c.CoordHTTP, err = proc.FreeAddr(); err != nil {
		return err
	}
	if c.CoordGossip, err = proc.FreeAddr(); err != nil {
		return err
	}
	if !c.Opts.CoordinatorLast {
		if err := c.StartCoordinator(ctx); err != nil {
			return err
		}
	}
	for i := 0; i < c.Opts.Nodes; i++ {
		n := &LocalNode{ID: fmt.Sprintf("n%d", i+1), Data: filepath.Join(c.Opts.Dir, fmt.Sprintf("n%d", i+1))}
		if n.HTTP, err = proc.FreeAddr(); err != nil {
			return err
		}
		if n.Gossip, err = proc.FreeAddr(); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, n)
		if err := c.startNode(ctx, i, !c.Opts.CoordinatorLast); err != nil {
			return err
		}
	}
	if c.Opts.CoordinatorLast {
		if err := c.startCoordinator(ctx, false); err != nil {
			return err
		}
		for _, n := range c.Nodes {
			if err := c.wait(ctx, n.Proc, "http://"+n.HTTP+"/readyz"); err != nil {
				return err
			}
		}
	}
	return c.WaitNodesAlive(ctx, len(c.Nodes))
}

// startRedis starts the one redis-server, or the local Redis Cluster, or nothing (a Redis
// Cluster given).
func (c *LocalCluster) startRedis(ctx context.Context) error {
	switch {
	case c.Opts.LocalRedisCluster && len(c.Opts.RedisCluster) > 0:
		return errors.New("cluster: ClusterOptions.RedisCluster and LocalRedisCluster exclude each other")
	case c.Opts.LocalRedisCluster:
		rc, err := rediscluster.Start(ctx, rediscluster.Options{Dir: filepath.Join(c.Opts.Dir, "rediscluster"),
			ServerBin: c.Opts.RedisBin, Replicas: 1})
		if err != nil {
			return err
		}
		c.RedisCl, c.Opts.RedisCluster = rc, rc.Addrs()
		return nil
	case len(c.Opts.RedisCluster) > 0:
		return nil
	}
	var err error
	if c.RedisAddr, err = proc.FreeAddr(); err != nil {
		return err
	}
	return c.StartRedis(ctx)
}

// RedisURL is the cluster's Redis ("" with a Redis Cluster).
func (c *LocalCluster) RedisURL() string {
	if c.RedisAddr == "" {
		return ""
	}
	return "redis://" + c.RedisAddr + "/0"
}

// Client is a Redis client of the cluster's Redis: a *redis.Client of the one redis-server, or
// a cluster client (redisconn.NewCluster) of the Redis Cluster.
func (c *LocalCluster) Client() redis.UniversalClient {
	if c.rdb == nil {
		if len(c.Opts.RedisCluster) > 0 {
			c.rdb = redisconn.NewCluster(c.Opts.RedisCluster)
		} else {
			c.rdb = redis.NewClient(&redis.Options{Addr: c.RedisAddr})
		}
	}
	return c.rdb
}

// Admin is an admin API client of the coordinator.
func (c *LocalCluster) Admin() *Admin { return NewAdmin(c.CoordHTTP, c.Opts.AdminToken) }

// NodeAddrs are the nodes' claim API addresses, in node order.
func (c *LocalCluster) NodeAddrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.HTTP
	}
	return out
}

// env is what every process gets: the secret, and --redis or --redis-cluster (the other
// emptied, in case the caller's environment sets it).
func (c *LocalCluster) env() []string {
	if len(c.Opts.RedisCluster) > 0 {
		return []string{"REDRAIN_SECRET=" + c.Opts.Secret, "REDRAIN_REDIS=",
			"REDRAIN_REDIS_CLUSTER=" + strings.Join(c.Opts.RedisCluster, ",")}
	}
	return []string{"REDRAIN_SECRET=" + c.Opts.Secret, "REDRAIN_REDIS=" + c.RedisURL(), "REDRAIN_REDIS_CLUSTER="}
}

// StartRedis (re)starts redis-server on the cluster's port, without persistence: a restart
// comes back empty, as after losing its data. Not for a Redis Cluster.
func (c *LocalCluster) StartRedis(ctx context.Context) error {
	if len(c.Opts.RedisCluster) > 0 {
		return errors.New("cluster: StartRedis: the cluster uses a Redis Cluster")
	}
	rdb := c.Client()
	p, err := proc.StartRedis(ctx, c.Opts.RedisBin, c.RedisAddr, c.Opts.Dir, func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
	if err != nil {
		return err
	}
	c.Redis = p
	return nil
}

// StartCoordinator (re)starts the coordinator on its addresses and data dir, joining the nodes.
func (c *LocalCluster) StartCoordinator(ctx context.Context) error {
	return c.startCoordinator(ctx, true)
}

func (c *LocalCluster) startCoordinator(ctx context.Context, join bool) error {
	args := []string{"--http", c.CoordHTTP, "--gossip", c.CoordGossip, "--data", filepath.Join(c.Opts.Dir, "coord"),
		"--admin-token", c.Opts.AdminToken}
	var peers []string
	for _, n := range c.Nodes {
		peers = append(peers, n.Gossip)
	}
	if join && len(peers) > 0 {
		args = append(args, "--join", strings.Join(peers, ","))
	}
	if c.Opts.FastGossip {
		args = append(args, "--fast-gossip")
	}
	args = append(args, c.Opts.CoordArgs...)
	p, err := proc.Start("coordinator", filepath.Join(c.Opts.BinDir, "coordinator"), args, c.env(),
		filepath.Join(c.Opts.Dir, "coordinator.log"))
	if err != nil {
		return err
	}
	c.Coord = p
	return c.wait(ctx, p, "http://"+c.CoordHTTP+"/healthz")
}

// StartNode (re)starts node i with its id, addresses and data dir, joining the coordinator,
// and waits until it is ready.
func (c *LocalCluster) StartNode(ctx context.Context, i int) error { return c.startNode(ctx, i, true) }

func (c *LocalCluster) startNode(ctx context.Context, i int, wait bool) error {
	n := c.Nodes[i]
	args := []string{"--id", n.ID, "--http", n.HTTP, "--gossip", n.Gossip, "--data", n.Data, "--join", c.CoordGossip}
	if c.Opts.FastGossip {
		args = append(args, "--fast-gossip")
	}
	args = append(args, c.Opts.NodeArgs...)
	p, err := proc.Start(n.ID, filepath.Join(c.Opts.BinDir, "node"), args, append(c.env(), n.Env...), filepath.Join(c.Opts.Dir, n.ID+".log"))
	if err != nil {
		return err
	}
	n.Proc = p
	if !wait {
		return nil
	}
	return c.wait(ctx, p, "http://"+n.HTTP+"/readyz")
}

func (c *LocalCluster) wait(ctx context.Context, p *proc.Proc, url string) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	return p.WaitHTTP(ctx, url)
}

// WaitNodesAlive waits until the coordinator lists want nodes alive.
func (c *LocalCluster) WaitNodesAlive(ctx context.Context, want int) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	for {
		nodes, err := c.Admin().Nodes(ctx)
		alive := 0
		for _, n := range nodes {
			if n.State == "alive" {
				alive++
			}
		}
		if err == nil && alive >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("coordinator sees %d of %d nodes alive (%v): %w", alive, want, err, ctx.Err())
		case <-time.After(proc.PollInterval):
		}
	}
}

// Stop stops the nodes and the coordinator with SIGTERM (graceful: nodes flush), then Redis.
func (c *LocalCluster) Stop() {
	for _, n := range c.Nodes {
		if n.Proc != nil {
			n.Proc.Term(30 * time.Second)
		}
	}
	if c.Coord != nil {
		c.Coord.Term(10 * time.Second)
	}
	if c.rdb != nil {
		c.rdb.Close()
	}
	if c.Redis != nil {
		c.Redis.Term(10 * time.Second)
	}
	if c.RedisCl != nil {
		c.RedisCl.Stop()
	}
}

// Logs are the log files of the cluster's processes: coordinator, Redis, then the nodes.
func (c *LocalCluster) Logs() []string {
	var out []string
	for _, p := range []*proc.Proc{c.Coord, c.Redis} {
		if p != nil {
			out = append(out, p.Log)
		}
	}
	for _, n := range c.Nodes {
		if n.Proc != nil {
			out = append(out, n.Proc.Log)
		}
	}
	if c.RedisCl != nil {
		out = append(out, c.RedisCl.Logs()...)
	}
	return out
}

// Kill kills every process at once (SIGKILL), for interrupted runs.
func (c *LocalCluster) Kill() {
	for _, n := range c.Nodes {
		if n.Proc != nil {
			n.Proc.Kill()
		}
	}
	for _, p := range []*proc.Proc{c.Coord, c.Redis} {
		if p != nil {
			p.Kill()
		}
	}
	if c.RedisCl != nil {
		c.RedisCl.Stop()
	}
}

// RandomHex is n random bytes in hex: a fresh secret or admin token.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
