// Command coordinator runs redrain's coordinator: the admin API, the rain store and the
// orchestration of the node cluster. Every flag can also be set by environment variable
// REDRAIN_<FLAG> (upper case, '-' as '_'); the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"redrain/coordinator"
	"redrain/internal/cli"
	"redrain/internal/flagenv"
	"redrain/internal/redisconn"
)

func main() {
	opts, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		cli.BadUsage("coordinator", err)
	}
	opts.Logger = cli.NewLogger(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts); err != nil {
		if errors.Is(err, coordinator.ErrOptions) || errors.Is(err, coordinator.ErrListen) {
			cli.BadUsage("coordinator", err) // before anything was created on disk
		}
		opts.Logger.Error("coordinator stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts coordinator.Options) error {
	c, err := coordinator.New(opts)
	if err != nil {
		return err
	}
	opts.Logger.Info("coordinator listening", "http", c.Addr(), "gossip", c.GossipAddr())
	err = c.Run(ctx)
	if err == nil {
		opts.Logger.Info("coordinator stopped")
	}
	return err
}

// parseFlags maps flags (and REDRAIN_* env) onto Options.
func parseFlags(args []string) (coordinator.Options, error) {
	o := coordinator.DefaultOptions()
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.HTTPAddr, "http", o.HTTPAddr, "admin API listen address")
	fs.StringVar(&o.GossipAddr, "gossip", o.GossipAddr, "gossip bind address")
	fs.StringVar(&o.DataDir, "data", "", "data directory (required)")
	fs.StringVar(&o.RedisURL, "redis", "", "Redis URL, e.g. redis://127.0.0.1:6379/0 (this or --redis-cluster)")
	cluster := fs.String("redis-cluster", "", "comma-separated host:port seeds of a Redis Cluster, instead of --redis")
	fs.StringVar(&o.Secret, "secret", "", "cluster secret (required)")
	fs.StringVar(&o.AdminToken, "admin-token", "", "admin API bearer token (required)")
	fs.StringVar(&o.Advertise, "advertise", "", "IP peers reach the coordinator at, when not the bound one (a pod's IP behind --gossip 0.0.0.0)")
	join := fs.String("join", "", "comma-separated gossip addresses to join")
	fs.StringVar(&o.ID, "id", o.ID, "gossip member id")
	fs.DurationVar(&o.PrepareTimeout, "prepare-timeout", o.PrepareTimeout, "deadline for every node to acknowledge its slice")
	fs.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval, "pace of the finish/settle loop")
	fs.StringVar(&o.UserKey, "user-key", "", "the nodes' user-token key: enables POST /v1/tokens (test tokens)")
	fs.BoolVar(&o.FastGossip, "fast-gossip", false, "fast failure detection timings (tests, local clusters)")
	fs.StringVar(&o.Webhook, "webhook", "", "POST every rain transition to this URL, signed (optional)")
	fs.StringVar(&o.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key of the webhook's signature (required with --webhook, >= 16 bytes)")
	if err := flagenv.Parse(fs, args, "REDRAIN_"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Join = flagenv.List(*join)
	var err error
	if o.RedisCluster, err = redisconn.ParseAddrs(*cluster); err != nil {
		return o, err
	}
	return o, checkRequired(o)
}

// checkRequired names the first missing required flag (New checks the rest).
func checkRequired(o coordinator.Options) error {
	for _, f := range []struct{ name, v string }{
		{"data", o.DataDir}, {"secret", o.Secret}, {"admin-token", o.AdminToken},
	} {
		if f.v == "" {
			return fmt.Errorf("--%s is required (or %s)", f.name, flagenv.EnvName("REDRAIN_", f.name))
		}
	}
	return redisconn.CheckOne(o.RedisURL, o.RedisCluster)
}
