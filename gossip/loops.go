package gossip

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"
)

// joinLoop joins, right away and then every RejoinInterval, each join address that is not the
// gossip address of a live member, so nodes may start before the coordinator and a restarted
// coordinator finds the cluster again. Each attempt is bounded by memberlist's TCPTimeout.
func (c *Cluster) joinLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.RejoinInterval)
	defer t.Stop()
	for {
		c.joinMissing()
		select {
		case <-c.stopJoin:
			return
		case <-t.C:
		}
	}
}

func (c *Cluster) joinMissing() {
	live := c.liveAddrs()
	for _, addr := range c.opts.Join {
		if anyIn(resolveJoin(addr), live) {
			continue
		}
		select {
		case <-c.stopJoin:
			return
		default:
		}
		c.joinAttempts.Add(1)
		if _, err := c.ml.Join([]string{addr}); err != nil {
			c.log.Debug("join failed; will retry", "addr", addr, "in", c.opts.RejoinInterval, "err", err)
		} else {
			c.log.Info("joined", "addr", addr)
		}
	}
}

// liveAddrs is the set of gossip addresses of members alive or suspect (us included).
func (c *Cluster) liveAddrs() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.members))
	for _, e := range c.members {
		if e.m.State == StateAlive || e.m.State == StateSuspect {
			out[e.m.GossipAddr] = true
		}
	}
	return out
}

func anyIn(addrs []string, set map[string]bool) bool {
	for _, a := range addrs {
		if set[a] {
			return true
		}
	}
	return false
}

// resolveLimit bounds the name lookup of a join address.
const resolveLimit = 2 * time.Second

// resolveJoin turns a join address into the ip:port forms a member could have. A name that does
// not resolve gives nothing, so the address counts as missing and memberlist gets to try (and log).
func resolveJoin(addr string) []string {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return nil
	}
	p := strconv.Itoa(port)
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), p)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveLimit)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip.IP.String(), p)
	}
	return out
}

// maxPings bounds the pings in flight of one suspect round.
const maxPings = 32

// suspectLoop pings every other live member once per probe interval (Options.TrackSuspects).
func (c *Cluster) suspectLoop(interval time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.pingRound()
		}
	}
}

type pingTarget struct {
	id   string
	addr *net.UDPAddr
	gen  uint64
}

// pingRound pings the live members concurrently (at most maxPings at a time; each ping waits at
// most memberlist's ProbeTimeout) and applies the answers.
func (c *Cluster) pingRound() {
	targets := c.pingTargets()
	answered := make([]bool, len(targets))
	sem := make(chan struct{}, maxPings)
	var wg sync.WaitGroup
	for i, t := range targets {
		select {
		case <-c.stop:
			wg.Wait()
			return
		case sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := c.ml.Ping(t.id, t.addr)
			answered[i] = err == nil
		}()
	}
	wg.Wait()
	for i, t := range targets {
		c.pingResult(t, answered[i])
	}
}

func (c *Cluster) pingTargets() []pingTarget {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []pingTarget
	for id, e := range c.members {
		live := e.m.State == StateAlive || e.m.State == StateSuspect
		if live && id != c.opts.Meta.ID && e.udp != nil {
			out = append(out, pingTarget{id: id, addr: e.udp, gen: e.gen})
		}
	}
	return out
}

// pingResult moves a member between alive and suspect; a memberlist event since the ping was
// sent (gen changed) has the last word.
func (c *Cluster) pingResult(t pingTarget, answered bool) {
	c.mu.Lock()
	e := c.members[t.id]
	if e == nil || e.gen != t.gen {
		c.mu.Unlock()
		return
	}
	next := suspectStep(e.m.State, &e.misses, answered)
	changed := next != e.m.State
	if changed {
		e.m.State, e.changed = next, time.Now()
	}
	m := e.m
	c.mu.Unlock()
	if changed {
		c.events.member(m)
	}
}

// suspectStep is the suspect state machine of one ping answer: alive becomes suspect after
// suspectAfter unanswered pings in a row, suspect becomes alive on an answer; dead and left are
// memberlist's to change.
func suspectStep(s State, misses *int, answered bool) State {
	if answered {
		*misses = 0
		if s == StateSuspect {
			return StateAlive
		}
		return s
	}
	*misses++
	if s == StateAlive && *misses >= suspectAfter {
		return StateSuspect
	}
	return s
}
