package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"redrain/bench"
	"redrain/internal/flagenv"
)

// cmdLoad drives claims at running claim servers (nodes, or `bench baseline`) with bench's load
// driver alone: no cluster, no rain set-up, no checks. It prints what the driver saw and its own
// CPU time per answer, to set beside wrk's against the same server (scripts/driver-vs-wrk.sh),
// also when interrupted.
func cmdLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseLoad(args, os.LookupEnv, stdout)
	if code, ok := parsed("bench load", err, stderr); !ok {
		return code
	}
	if o.cpuProfile != "" {
		stop, err := bench.StartCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "bench load: %v\n", err)
			return exitFailed
		}
		defer stop()
	}
	l := bench.Load(ctx, o.Load)
	res := &bench.Results{Code: o.Load.Code, Nodes: o.Load.Nodes, Load: bench.SpecOf(o.Load)}
	res.FillLoad(l)
	bench.LoadTable(stdout, res)
	if ctx.Err() != nil {
		return exitInterrupt
	}
	return exitOK
}

type loadArgs struct {
	Load       bench.LoadOptions
	cpuProfile string
}

func parseLoad(args []string, lookup func(string) (string, bool), helpOut io.Writer) (loadArgs, error) {
	var o loadArgs
	fs := flag.NewFlagSet("bench load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nodes := fs.String("nodes", "", "comma-separated claim addresses (host:port); --balance spreads the taps over them")
	balance := fs.String("balance", string(bench.BalanceSticky), balanceUsage)
	fs.StringVar(&o.Load.Code, "code", "", "the rain's code (it must be raining there)")
	fs.IntVar(&o.Load.Users, "users", 20_000, "simulated users")
	fs.Uint64Var(&o.Load.FirstUser, "first-user", 1, "the first user id (users are first-user .. first-user+users-1)")
	fs.IntVar(&o.Load.Conns, "conns", 64, "concurrent requests (closed loop: workers tapping back to back)")
	fs.Float64Var(&o.Load.Rate, "rate", 0, "open loop: taps per second (0: closed loop)")
	fs.DurationVar(&o.Load.Time, "time", 10*time.Second, "longest load")
	fs.IntVar(&o.Load.Procs, "load-procs", 1, "threads (GOMAXPROCS) of the load driver while it runs")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write bench's CPU profile (pprof) to this file")
	if err := flagenv.ParseLookup(fs, args, "REDRAIN_", lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(helpOut, "Usage: bench load --nodes ADDR[,ADDR...] --code CODE [flags]\n\n"+
				"Drives claims at running claim servers with bench's load driver alone (no set-up, no checks)\n"+
				"and prints what it saw and its own CPU per answer.\n\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *nodes == "" || o.Load.Code == "":
		return o, errors.New("--nodes and --code are required")
	case o.Load.Users < 1 || o.Load.Conns < 1 || o.Load.Procs < 1 || o.Load.Rate < 0 || o.Load.Time <= 0:
		return o, errors.New("--users, --conns and --load-procs must be >= 1, --rate >= 0, --time > 0")
	}
	o.Load.Nodes = flagenv.List(*nodes)
	var err error
	o.Load.Balance, err = bench.ParseBalance(*balance)
	return o, err
}
