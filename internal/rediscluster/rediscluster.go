// Package rediscluster runs a local Redis Cluster of real redis-server processes on 127.0.0.1 for
// the tests and the bench tool: start it (redis-cli --cluster create), find who serves a key's
// slot, kill or pause a member, wait for a failover, empty every master.
package rediscluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/proc"
	"redrain/internal/redisconn"
)

// Options describe a local Redis Cluster: redis-server --cluster-enabled yes
// processes on 127.0.0.1, without persistence, joined by redis-cli --cluster create.
type Options struct {
	Dir         string        // data, cluster config files and logs go here; required
	Masters     int           // 0 means 3 (a Redis Cluster needs at least 3)
	Replicas    int           // replicas per master; 0 means none
	ServerBin   string        // "" = redis-server from PATH
	CLIBin      string        // "" = redis-cli from PATH
	NodeTimeout time.Duration // cluster-node-timeout; 0 means 1 s (a failover within a few seconds)
}

// Member is one redis-server of a Cluster.
type Member struct {
	Addr    string // "127.0.0.1:port" (clients)
	BusPort int    // the cluster bus port
	Proc    *proc.Proc
}

// Cluster is a local Redis Cluster of real redis-server processes.
type Cluster struct {
	Opts    Options
	Members []*Member // in start order; redis-cli makes the first Masters of them masters
	rdb     *redis.ClusterClient
}

// StartTimeout bounds the start of a Redis Cluster: the members, the create, the wait
// for cluster_state:ok everywhere.
const StartTimeout = 60 * time.Second

// Start starts Masters*(1+Replicas) members on free ports, creates the cluster and
// waits until every member says cluster_state:ok, knows every other member and every replica's
// link to its master is up. On error everything started is stopped.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("rediscluster: Options.Dir is required")
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.Masters < 3 || o.Replicas < 0 {
		return nil, fmt.Errorf("rediscluster: a Redis Cluster needs >= 3 masters and >= 0 replicas, not %d and %d", o.Masters, o.Replicas)
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = time.Second
	}
	for _, b := range []struct {
		p    *string
		name string
	}{{&o.ServerBin, "redis-server"}, {&o.CLIBin, "redis-cli"}} {
		if *b.p != "" {
			continue
		}
		p, err := exec.LookPath(b.name)
		if err != nil {
			return nil, fmt.Errorf("rediscluster: %s not found (apt-get install -y redis-server): %w", b.name, err)
		}
		*b.p = p
	}
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	rc := &Cluster{Opts: o}
	if err := rc.start(ctx); err != nil {
		rc.Stop()
		return nil, err
	}
	return rc, nil
}

func (rc *Cluster) start(ctx context.Context) error {
	for range rc.Opts.Masters * (1 + rc.Opts.Replicas) {
		m, err := rc.startMember(ctx)
		if err != nil {
			return err
		}
		rc.Members = append(rc.Members, m)
	}
	args := append([]string{"--cluster", "create"}, rc.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(rc.Opts.Replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, rc.Opts.CLIBin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, tailString(string(out), 2048))
	}
	return rc.WaitHealthy(ctx)
}

// startMember starts one redis-server with its own client and bus ports (the bus port is given
// by cluster-port, not port+10000, so both come from proc.FreePort's range).
func (rc *Cluster) startMember(ctx context.Context) (*Member, error) {
	var last error
	for range 5 { // a free port can be taken between probing and binding
		port, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		bus, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		m := &Member{Addr: "127.0.0.1:" + strconv.Itoa(port), BusPort: bus}
		dir := filepath.Join(rc.Opts.Dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		m.Proc, err = proc.Start(proc.RedisName+"-"+strconv.Itoa(port), rc.Opts.ServerBin, []string{
			"--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(bus), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(rc.Opts.NodeTimeout.Milliseconds(), 10),
			// a replica may take over however long its link was down (tests cut it on purpose)
			"--cluster-replica-validity-factor", "0",
			"--repl-diskless-sync-delay", "0", // a replica's first sync at once, not after 5 s
			"--appendonly", "no", "--save", "", "--dir", dir}, nil, filepath.Join(dir, "redis.log"))
		if err != nil {
			return nil, err
		}
		if last = waitPing(ctx, m); last == nil {
			return m, nil
		}
		m.Proc.Kill()
	}
	return nil, last
}

func waitPing(ctx context.Context, m *Member) error {
	for {
		err := Do(ctx, m.Addr, "PING")
		if err == nil {
			return nil
		}
		if m.Proc.Exited() {
			return fmt.Errorf("redis-server %s exited: %v\n%s", m.Addr, m.Proc.Err(), proc.Tail(m.Proc.Log, 2048))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis-server %s: no PING answer: %w (%v)", m.Addr, ctx.Err(), err)
		case <-time.After(proc.PollInterval):
		}
	}
}

// Addrs are the members' client addresses, in start order.
func (rc *Cluster) Addrs() []string {
	out := make([]string, len(rc.Members))
	for i, m := range rc.Members {
		out[i] = m.Addr
	}
	return out
}

// Flag is the --redis-cluster value naming every member.
func (rc *Cluster) Flag() string { return strings.Join(rc.Addrs(), ",") }

// Client is a cluster client of the cluster as the node and the coordinator open it
// (redisconn.NewCluster); one, closed by Stop.
func (rc *Cluster) Client() *redis.ClusterClient {
	if rc.rdb == nil {
		rc.rdb = redisconn.NewCluster(rc.Addrs())
	}
	return rc.rdb
}

// Member returns the member with client address addr, or nil.
func (rc *Cluster) Member(addr string) *Member {
	for _, m := range rc.Members {
		if m.Addr == addr {
			return m
		}
	}
	return nil
}

// live are the members whose process runs.
func (rc *Cluster) live() []*Member {
	var out []*Member
	for _, m := range rc.Members {
		if m.Proc != nil && !m.Proc.Exited() {
			out = append(out, m)
		}
	}
	return out
}

// Healthy returns nil when every live member says cluster_state:ok, knows as many members as
// there are live ones or more, and, if it is a replica, has its link to its master up.
func (rc *Cluster) Healthy(ctx context.Context) error {
	live := rc.live()
	for _, m := range live {
		info, err := DoString(ctx, m.Addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", m.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state is not ok", m.Addr)
		}
		if n := infoInt(info, "cluster_known_nodes"); n < len(live) {
			return fmt.Errorf("%s knows %d members of %d", m.Addr, n, len(live))
		}
		repl, err := DoString(ctx, m.Addr, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", m.Addr, err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: a replica whose link to its master is not up", m.Addr)
		}
	}
	return nil
}

// WaitHealthy polls Healthy until it holds or ctx ends.
func (rc *Cluster) WaitHealthy(ctx context.Context) error {
	for {
		err := rc.Healthy(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster not healthy: %w (%v)", ctx.Err(), err)
		case <-time.After(proc.PollInterval):
		}
	}
}

// Shard is who serves a slot as one live member sees it: the master's and the replicas'
// client addresses.
type Shard struct {
	Master   string
	Replicas []string
}

// ShardOf returns who serves key's slot, as the first live member that answers sees it.
func (rc *Cluster) ShardOf(ctx context.Context, key string) (Shard, error) {
	var last error = errors.New("no live member")
	for _, m := range rc.live() {
		sh, err := shardOf(ctx, m.Addr, key)
		if err == nil {
			return sh, nil
		}
		last = err
	}
	return Shard{}, last
}

func shardOf(ctx context.Context, addr, key string) (Shard, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return Shard{}, err
	}
	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return Shard{}, err
	}
	return parseShard(nodes, int(slot))
}

// parseShard finds who serves slot in a CLUSTER NODES reply: lines of "id ip:port@bus flags
// master-id ping pong epoch link slot-range...", a replica naming its master's id. (CLUSTER
// SLOTS lists a replica only once gossip has carried its replication offset, seconds later.)
func parseShard(nodes string, slot int) (Shard, error) {
	type line struct{ id, addr, master string }
	var all []line
	var master *line
	for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		ln := line{id: f[0], addr: f[1], master: f[3]}
		if i := strings.IndexByte(ln.addr, '@'); i >= 0 {
			ln.addr = ln.addr[:i]
		}
		all = append(all, ln)
		for _, r := range f[8:] {
			if inRange(r, slot) && !strings.Contains(f[2], "fail") {
				master = &all[len(all)-1]
			}
		}
	}
	if master == nil {
		return Shard{}, fmt.Errorf("slot %d is not served", slot)
	}
	sh := Shard{Master: master.addr}
	for _, l := range all {
		if l.master == master.id {
			sh.Replicas = append(sh.Replicas, l.addr)
		}
	}
	return sh, nil
}

// inRange reports whether a CLUSTER NODES slot item ("5", "0-5460"; "[...]" migrations are
// not ranges) holds slot.
func inRange(r string, slot int) bool {
	lo, hi, found := strings.Cut(r, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := a, error(nil)
	if found {
		b, err2 = strconv.Atoi(hi)
	}
	return err1 == nil && err2 == nil && a <= slot && slot <= b
}

// WaitMasterMoved polls until every live member says key's slot is served by a live master
// other than old, and the cluster is Healthy; it returns the new master.
func (rc *Cluster) WaitMasterMoved(ctx context.Context, key, old string) (string, error) {
	why := ""
	for {
		master, err := rc.agreedMaster(ctx, key)
		switch {
		case err != nil:
			why = err.Error()
		case master == old:
			why = "still served by " + old
		default:
			if err = rc.Healthy(ctx); err == nil {
				return master, nil
			}
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("slot of %q did not move from %s: %w (%s)", key, old, ctx.Err(), why)
		case <-time.After(proc.PollInterval):
		}
	}
}

// agreedMaster is key's master if every live member names the same live one.
func (rc *Cluster) agreedMaster(ctx context.Context, key string) (string, error) {
	master := ""
	for _, m := range rc.live() {
		sh, err := shardOf(ctx, m.Addr, key)
		if err != nil {
			return "", err
		}
		if master != "" && sh.Master != master {
			return "", fmt.Errorf("members disagree: %s and %s", master, sh.Master)
		}
		master = sh.Master
	}
	if mm := rc.Member(master); mm == nil || !slices.Contains(rc.live(), mm) {
		return "", fmt.Errorf("master %s is not live", master)
	}
	return master, nil
}

// FlushAll empties every master (FLUSHALL runs on one server only: a cluster's keys are on
// all of them); the replicas follow.
func (rc *Cluster) FlushAll(ctx context.Context) error {
	return rc.Client().ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	})
}

// Kill kills the member with client address addr (SIGKILL): no snapshot, no handover.
func (rc *Cluster) Kill(addr string) error {
	m := rc.Member(addr)
	if m == nil {
		return fmt.Errorf("no member %s", addr)
	}
	m.Proc.Kill()
	return nil
}

// Pause stops (SIGSTOP) or resumes (SIGCONT) the member with client address addr.
func (rc *Cluster) Pause(addr string, stop bool) error {
	m := rc.Member(addr)
	if m == nil {
		return fmt.Errorf("no member %s", addr)
	}
	if stop {
		return m.Proc.Signal(syscall.SIGSTOP)
	}
	return m.Proc.Signal(syscall.SIGCONT)
}

// Stop kills every member (nothing is persisted) and closes the client.
func (rc *Cluster) Stop() {
	if rc.rdb != nil {
		rc.rdb.Close()
	}
	for _, m := range rc.Members {
		if m.Proc != nil {
			m.Proc.Kill()
		}
	}
}

// Logs are the members' log files.
func (rc *Cluster) Logs() []string {
	var out []string
	for _, m := range rc.Members {
		if m.Proc != nil {
			out = append(out, m.Proc.Log)
		}
	}
	return out
}

// Do runs one command on a short-lived connection to addr (one server, not routed by slot).
func Do(ctx context.Context, addr string, args ...any) error {
	_, err := DoString(ctx, addr, args...)
	return err
}

// DoString runs one command on a short-lived connection to addr and returns its reply as text.
func DoString(ctx context.Context, addr string, args ...any) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// DoReadOnly runs one command on a short-lived connection to addr after READONLY, so a
// replica answers reads of its master's slots itself (what it has received so far).
func DoReadOnly(ctx context.Context, addr string, args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn := c.Conn()
	defer conn.Close()
	if err := conn.ReadOnly(ctx).Err(); err != nil {
		return nil, err
	}
	return conn.Do(ctx, args...).Result()
}

// infoInt reads "name:N" from an INFO-style reply; -1 if missing.
func infoInt(info, name string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}

func tailString(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
