// Command bench is redrain's load harness: `bench run` starts a local cluster (or targets a
// running one), runs a rain under load and checks every invariant; `bench compare` measures it
// against the seed's Redis-list design, which `bench baseline` serves. Every flag can also be set
// by environment variable REDRAIN_<FLAG> (upper case, '-' as '_'); the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"redrain/bench"
	"redrain/internal/attack"
	"redrain/internal/cli"
	"redrain/internal/flagenv"
	"redrain/internal/redisconn"
	"redrain/rain"
)

const usage = `bench drives red-packet rains at a redrain cluster and checks every invariant.

Usage:
  bench run [flags]      run a rain under load on a local cluster (or a running one), check it,
                         print a results table; exit 1 on any invariant violation
  bench compare [flags]  redrain against the seed's Redis-list design, interleaved rounds under
                         the same load: claims/s, latency, CPU and memory per claim, prepare time;
                         a table with ratios, results.json and a chart (--out)
  bench baseline [flags] serve the seed's design (one Redis list per rain, one RPOP per claim)
                         until interrupted, e.g. for wrk or hey
  bench load [flags]     drive claims at running claim servers with the load driver alone (no
                         set-up, no checks): answers/s, latency, bench's own CPU per answer
  bench ceiling [flags]  serve a fixed 200 answer to every claim (the loopback ceiling) until
                         interrupted, for wrk (scripts/setup-a.sh)
  bench chaos [flags]    a rain on a local 3-node cluster through a node crash, a Redis loss and
                         a node leaving, claims flowing throughout; every invariant checked
  bench events [flags]   viewers subscribed to a room's event stream on a local cluster: how many
                         hear a rain's start, how fast, memory per viewer, claims/s beside them
  bench scale [flags]    N nodes in one process (real node code, production gossip) and a
                         coordinator: membership, prepare, start reaching every node, report,
                         the coordinator's memory; a table and results.json (--out)
  bench help [command]   show help

Run 'bench <command> --help' for its flags. Every flag can also be set by environment variable
REDRAIN_<FLAG> (upper case, '-' as '_'); the command line wins.
`

// Exit codes.
const (
	exitOK        = 0
	exitFailed    = 1 // an error, or an invariant violated
	exitUsage     = 2
	exitInterrupt = 130
)

// commands are bench's subcommands.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"run":      cmdRun,
	"compare":  cmdCompare,
	"baseline": cmdBaseline,
	"chaos":    cmdChaos,
	"load":     cmdLoad,
	"ceiling":  cmdCeiling,
	"events":   cmdEvents,
	"scale":    cmdScale,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills bench at once; its children die with it (Pdeathsig)
	}()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && commands[args[1]] != nil {
			return commands[args[1]](ctx, []string{"--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd := commands[name]
	if cmd == nil {
		fmt.Fprintf(stderr, "bench: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// parsed maps a flag-parsing outcome to an exit code; proceed is true when there is nothing to
// report and the command should run.
func parsed(name string, err error, stderr io.Writer) (code int, proceed bool) {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUsage, false
	}
	return exitOK, true
}

// finished maps a command's error to an exit code: badOptions is a usage error, a cancelled
// ctx an interrupt; proceed is true when there are results to print.
func finished(ctx context.Context, name string, err, badOptions error, interrupted string, stderr io.Writer) (code int, proceed bool) {
	switch {
	case err != nil && errors.Is(err, badOptions):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUsage, false
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "%s: interrupted; %s\n", name, interrupted)
		return exitInterrupt, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFailed, false
	}
	return exitOK, true
}

// loggerFor logs to stderr when it is a file (text on a terminal, JSON otherwise).
func loggerFor(stderr io.Writer) *slog.Logger {
	if f, ok := stderr.(*os.File); ok {
		return cli.NewLogger(f)
	}
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRun(args, os.LookupEnv, stdout)
	if code, ok := parsed("bench run", err, stderr); !ok {
		return code
	}
	o.Logger, o.ProgressTo = loggerFor(stderr), stderr
	res, err := bench.Run(ctx, o)
	if code, ok := finished(ctx, "bench run", err, bench.ErrRunOptions, "cluster stopped", stderr); !ok {
		return code
	}
	bench.Table(stdout, res)
	if err := res.Err(); err != nil {
		fmt.Fprintf(stderr, "bench run: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// parseRun maps `bench run` flags (and REDRAIN_* env) onto RunOptions; bench.Run validates
// the combinations. --help prints the flags to helpOut and returns flag.ErrHelp.
func parseRun(args []string, lookup func(string) (string, bool), helpOut io.Writer) (bench.RunOptions, error) {
	var o bench.RunOptions
	fs := flag.NewFlagSet("bench run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.String("nodes", "3", "a number: local cluster size; or comma-separated claim addresses (host:port) of a running cluster (with --coordinator; default: the alive nodes it lists)")
	fs.StringVar(&o.Coordinator, "coordinator", "", "admin API URL of a running cluster to target instead of a local one")
	fs.StringVar(&o.AdminToken, "admin-token", "", "admin API token (required with --coordinator)")
	fs.StringVar(&o.Secret, "secret", "", "cluster secret (optional with --coordinator: read journal progress from the nodes)")
	fs.StringVar(&o.RedisURL, "redis", "", "the running cluster's Redis URL (with --coordinator, this or --redis-cluster)")
	redisCluster := fs.String("redis-cluster", "", "a Redis Cluster: host:port seeds of the running cluster's (with --coordinator) or of one the local cluster uses; "+
		"local: the local cluster starts its own (3 masters with a replica each)")
	fs.Int64Var(&o.Rain.TotalAmount, "amount", 10_000_000, "rain budget, cents")
	fs.Int64Var(&o.Rain.TotalCount, "count", 1_000_000, "packets")
	fs.IntVar(&o.Rain.MaxPerUser, "max-per-user", 50, "packets one user may claim")
	algorithm := fs.String("algorithm", string(rain.DoubleAverage), "double_average, line_cut or equal")
	duration := fs.Duration("duration", 0, "rain duration, whole seconds (0: --time + 30s; bench stops the rain when the load ends)")
	fs.Int64Var(&o.Rain.AnchorID, "anchor", 1, "anchor id of the rain")
	fs.IntVar(&o.Load.Users, "users", 20_000, "simulated users, ids 1..N")
	balance := fs.String("balance", string(bench.BalanceSticky), balanceUsage)
	fs.IntVar(&o.Load.Conns, "conns", 64, "concurrent requests (closed loop: workers tapping back to back)")
	fs.Float64Var(&o.Load.Rate, "rate", 0, "open loop: taps per second, latency from each tap's scheduled time (0: closed loop)")
	fs.DurationVar(&o.Load.Time, "time", 10*time.Second, "longest load; it ends earlier when every user is done or the rain is drained")
	fs.DurationVar(&o.Load.Interval, "interval", time.Second, "time-series and progress interval")
	fs.IntVar(&o.Load.Procs, "load-procs", 1, "threads (GOMAXPROCS) of the load driver while it runs")
	fs.DurationVar(&o.SettleTimeout, "settle-timeout", time.Minute, "longest wait for Redis to catch up with the journals")
	fs.StringVar(&o.Out, "out", "", "write DIR/results.json")
	fs.StringVar(&o.Progress, "progress", bench.ProgressAuto, "auto (a bar on a terminal, lines otherwise), bar, plain or off")
	fs.BoolVar(&o.FastGossip, "fast-gossip", false, "local cluster: fast failure detection")
	fs.StringVar(&o.Dir, "dir", "", "local cluster: data and logs directory (default: temporary, removed after a clean run)")
	fs.BoolVar(&o.Keep, "keep", false, "local cluster: keep --dir after a clean run too")
	fs.StringVar(&o.Attack.Kind, "attack", "", "run an abuse scenario beside the load: "+strings.Join(attack.Kinds, ", ")+
		" (local cluster in token mode with per-address limits; honest users use tokens from their own 127.0.x.y addresses; exit 1 if an attacker beat a limit)")
	fs.Float64Var(&o.Attack.Rate, "attack-rate", 2000, "attack requests per second")
	fs.DurationVar(&o.Attack.Window, "attack-window", 500*time.Millisecond, "the attack is on and off in turns of this (idle: at least 2s)")
	fs.Float64Var(&o.Attack.IPRate, "ip-rate", 50, "with --attack: node --ip-rate, claims/s per client address")
	fs.IntVar(&o.Attack.IPBurst, "ip-burst", 100, "with --attack: node --ip-burst")
	fs.IntVar(&o.Attack.MaxConnsPerIP, "max-conns-per-ip", 500, "with --attack: node --max-conns-per-ip")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write bench's CPU profile over the load (pprof) to this file")
	fs.StringVar(&o.BinDir, "bin-dir", "", "local cluster: directory of the node and coordinator binaries (default: bench's)")
	err := flagenv.ParseLookup(fs, args, "REDRAIN_", lookup)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(helpOut, "Usage: bench run [flags]\n\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.Rain.Algorithm = rain.Algorithm(*algorithm)
	if o.Load.Balance, err = bench.ParseBalance(*balance); err != nil {
		return o, err
	}
	if *duration < 0 {
		return o, errors.New("--duration must be positive")
	}
	o.Rain.DurationS = int((*duration + time.Second - 1) / time.Second)
	if *redisCluster == "local" {
		o.LocalRedisCluster = true
	} else if o.RedisCluster, err = redisconn.ParseAddrs(*redisCluster); err != nil {
		return o, err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "nodes" })
	return o, parseNodes(&o, *nodes, given)
}

// balanceUsage documents --balance (bench run and bench load).
const balanceUsage = "how taps are spread over the nodes: sticky (each user always to one node, by a hash of its id, " +
	"as a balancer routing by user), random (each tap to a random node), skew (80% of taps to the first 20% of the nodes, " +
	"at least one), one (every tap to the first node)"

// parseNodes reads --nodes: a count for a local cluster, or addresses with --coordinator
// (not given: the nodes the coordinator lists).
func parseNodes(o *bench.RunOptions, v string, given bool) error {
	if o.Coordinator != "" && !given {
		return nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		switch {
		case n < 1:
			return fmt.Errorf("--nodes %d: need at least 1 node", n)
		case o.Coordinator != "":
			return fmt.Errorf("--nodes %d: with --coordinator, --nodes lists claim addresses (host:port,...)", n)
		}
		o.LocalNodes = n
		return nil
	}
	if o.Coordinator == "" {
		return fmt.Errorf("--nodes %q: addresses need --coordinator (a count starts a local cluster)", v)
	}
	for _, a := range flagenv.List(v) {
		o.NodeAddrs = append(o.NodeAddrs, strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://"))
	}
	if len(o.NodeAddrs) == 0 {
		return errors.New("--nodes: no address")
	}
	return nil
}
