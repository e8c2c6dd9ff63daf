package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"redrain/bench"
	"redrain/internal/flagenv"
)

func cmdCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseCompare(args, os.LookupEnv, stdout)
	if code, ok := parsed("bench compare", err, stderr); !ok {
		return code
	}
	o.Logger, o.ProgressTo = loggerFor(stderr), stderr
	res, err := bench.Compare(ctx, o)
	if code, ok := finished(ctx, "bench compare", err, bench.ErrCompareOptions, "everything started was stopped", stderr); !ok {
		return code
	}
	bench.CompareTable(stdout, res)
	if !res.Verified {
		fmt.Fprintln(stderr, "bench compare: a check failed (see the checks column and results.json)")
		return exitFailed
	}
	return exitOK
}

// parseCompare maps `bench compare` flags (and REDRAIN_* env) onto CompareOptions.
func parseCompare(args []string, lookup func(string) (string, bool), helpOut io.Writer) (bench.CompareOptions, error) {
	var o bench.CompareOptions
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.Nodes, "nodes", 3, "ours: local cluster size")
	fs.IntVar(&o.Rounds, "rounds", 2, "rounds per side, interleaved: ours, baseline, ours, baseline, ...")
	fs.Int64Var(&o.Rain.TotalAmount, "amount", 10_000_000, "each round's rain budget, cents")
	fs.Int64Var(&o.Rain.TotalCount, "count", 1_000_000, "each round's packets")
	fs.IntVar(&o.Rain.MaxPerUser, "max-per-user", 50, "packets one user may claim (both sides)")
	fs.Int64Var(&o.Rain.AnchorID, "anchor", 1, "anchor id of ours' rains")
	fs.IntVar(&o.Load.Users, "users", 20_000, "simulated users, ids 1..N")
	fs.IntVar(&o.Load.Conns, "conns", 64, "concurrent requests (closed loop), on both sides")
	fs.Float64Var(&o.Load.Rate, "rate", 0, "open loop: taps per second (0: closed loop)")
	fs.DurationVar(&o.Load.Time, "time", 10*time.Second, "each round's longest load")
	fs.DurationVar(&o.Load.Interval, "interval", time.Second, "time-series (chart) interval")
	fs.IntVar(&o.Load.Procs, "load-procs", 1, "threads (GOMAXPROCS) of the load driver while it runs")
	fs.Int64Var(&o.PrepareCount, "prepare-count", 10_000_000, "also time preparing this many packets on each side (0: skip)")
	fs.BoolVar(&o.Pin, "pin", false, "servers and Redis on the first cpu, the load generator on the others")
	fs.IntVar(&o.Pool, "pool", 256, "baseline: Redis connections of its server")
	fs.StringVar(&o.Out, "out", "", "write DIR/results.json and DIR/compare.png")
	fs.StringVar(&o.Dir, "dir", "", "data and logs directory (default: temporary, removed after a clean run)")
	fs.BoolVar(&o.Keep, "keep", false, "keep --dir after a clean run too")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory of the node, coordinator and bench binaries (default: bench's)")
	fs.BoolVar(&o.FastGossip, "fast-gossip", false, "ours: fast failure detection")
	fs.DurationVar(&o.SettleTimeout, "settle-timeout", time.Minute, "ours: longest wait for Redis to catch up with the journals")
	fs.StringVar(&o.Progress, "progress", bench.ProgressOff, "per round: auto, bar, plain or off")
	if err := flagenv.ParseLookup(fs, args, "REDRAIN_", lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(helpOut, "Usage: bench compare [flags]\n\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.Nodes < 1 || o.Rounds < 1 {
		return o, errors.New("--nodes and --rounds must be at least 1")
	}
	o.Command = strings.TrimSpace("bench compare " + strings.Join(args, " "))
	return o, nil
}
