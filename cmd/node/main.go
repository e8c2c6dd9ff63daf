// Command node runs one redrain claim node. Every flag can also be set by environment variable
// REDRAIN_<FLAG> (upper case, '-' as '_'); the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

	"redrain/internal/cli"
	"redrain/internal/flagenv"
	"redrain/internal/redisconn"
	"redrain/node"
)

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		cli.BadUsage("node", err)
	}
	opts.Logger = cli.NewLogger(os.Stderr)
	n, err := node.New(opts)
	if errors.Is(err, node.ErrOptions) || errors.Is(err, node.ErrListen) {
		cli.BadUsage("node", err) // before anything was created on disk
	}
	if err != nil {
		opts.Logger.Error("node failed to start", "err", err)
		os.Exit(1)
	}
	if pprofAddr != "" {
		go func() { opts.Logger.Error("pprof server", "err", http.ListenAndServe(pprofAddr, nil)) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := n.Run(ctx); err != nil {
		opts.Logger.Error("node stopped with error", "err", err)
		os.Exit(1)
	}
}

var pprofAddr string

// parseFlags maps flags (and REDRAIN_* env) onto Options; node.New validates the values.
func parseFlags(args []string) (node.Options, error) {
	o := node.DefaultOptions()
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.ID, "id", "", "unique node id, part of every claim_id (required)")
	fs.StringVar(&o.HTTPAddr, "http", o.HTTPAddr, "claim API listen address")
	fs.StringVar(&o.GossipAddr, "gossip", o.GossipAddr, "gossip bind address")
	fs.StringVar(&o.Advertise, "advertise", "", "IP peers reach this node at, when not the bound one (a pod's IP behind --http/--gossip 0.0.0.0)")
	join := fs.String("join", "", "comma-separated gossip addresses to join (retried)")
	fs.StringVar(&o.DataDir, "data", "", "data directory holding the journal (required)")
	fs.StringVar(&o.RedisURL, "redis", "", "Redis URL, e.g. redis://127.0.0.1:6379/0 (this or --redis-cluster)")
	cluster := fs.String("redis-cluster", "", "comma-separated host:port seeds of a Redis Cluster, instead of --redis")
	fs.StringVar(&o.Secret, "secret", "", "cluster secret (required)")
	fs.DurationVar(&o.ReadTimeout, "read-timeout", o.ReadTimeout, "a request (headers and body, the first on a connection included) must arrive within this")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", o.WriteTimeout, "an answer must be written within this")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", o.IdleTimeout, "a keep-alive connection may wait this long for its next request (0 = --read-timeout)")
	fs.IntVar(&o.MaxConnsPerIP, "max-conns-per-ip", o.MaxConnsPerIP, "connections one client address may hold (0 = no limit)")
	fs.DurationVar(&o.Retention, "retention", o.Retention, "keep a finished rain's journal records at least this long (and until the wallet acknowledged them)")
	walMiB := fs.Int64("wal-size-mib", 0, "size of each of the journal's two write-ahead log files, in MiB (0 = 16)")
	fs.DurationVar(&o.JanitorInterval, "janitor-interval", o.JanitorInterval, "pace of the retention check and of re-asserting compacted rains after a Redis loss")
	fs.DurationVar(&o.StockWait, "stock-wait", node.DefaultStockWait, "how long a claim on a node out of stock waits for a move from a node that holds some, before 410 exhausted (at most 1s)")
	fs.BoolVar(&o.NoStockMoves, "no-stock-moves", false, "serve this node's own slices only: no stock moves in or out (comparisons)")
	fs.StringVar(&o.WalletGroup, "wallet-group", o.WalletGroup, "the wallet's consumer group on the credit streams: records are dropped only once it acknowledged them")
	fs.StringVar(&o.Auth, "auth", node.AuthGateway, "who names the user: gateway (X-User-Id) or token (signed user tokens)")
	fs.StringVar(&o.UserKey, "user-key", "", "token mode: key the platform signs user tokens with")
	fs.Float64Var(&o.IPRate, "ip-rate", 0, "claims per second one client address may make, fractions too (0.5: one every 2 s; 0 = no limit)")
	fs.IntVar(&o.IPBurst, "ip-burst", 0, "burst of the per-address limit (0 = 2 x --ip-rate)")
	fs.IntVar(&o.MaxSubscribers, "max-subscribers", node.DefaultMaxSubscribers, "room event subscribers this node serves (503 too_many_subscribers beyond)")
	fs.IntVar(&o.MaxSubscribersPerIP, "max-subscribers-per-ip", node.DefaultMaxSubscribersPerIP, "room event subscribers one client address may hold (429 too_many_subscribers beyond)")
	fs.DurationVar(&o.Heartbeat, "heartbeat", node.DefaultHeartbeat, "pace of the heartbeat comment on room event streams")
	fs.DurationVar(&o.EventWriteTimeout, "event-write-timeout", node.DefaultEventWriteTimeout, "a room event subscriber whose write takes longer is dropped")
	proxies := fs.String("trusted-proxies", "", "comma-separated IPs/CIDRs whose X-Forwarded-For last hop is the client")
	fs.StringVar(&pprofAddr, "pprof", "", "serve net/http/pprof on this address (debugging; keep it private)")
	fs.DurationVar(&o.OwnerTimeout, "owner-timeout", o.OwnerTimeout, "bound of a claim's call to the node that counts its user's packets; past it the claim fails closed (503)")
	fs.StringVar(&o.OwnerHop, "owner-hop", node.OwnerHopForward, "a claim whose user's owner is another node: forward (the owner makes the claim) or reserve (the owner counts it, this node pays it)")
	fs.BoolVar(&o.FastGossip, "fast-gossip", false, "fast failure detection timings (tests, local clusters)")
	err := flagenv.Parse(fs, args, "REDRAIN_")
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.WALSize = *walMiB << 20
	o.Join = flagenv.List(*join)
	o.TrustedProxies = flagenv.List(*proxies)
	if o.RedisCluster, err = redisconn.ParseAddrs(*cluster); err != nil {
		return o, err
	}
	for _, f := range []struct{ name, v string }{{"id", o.ID}, {"data", o.DataDir}, {"secret", o.Secret}} {
		if f.v == "" {
			return o, fmt.Errorf("--%s is required (or %s)", f.name, flagenv.EnvName("REDRAIN_", f.name))
		}
	}
	return o, redisconn.CheckOne(o.RedisURL, o.RedisCluster)
}
