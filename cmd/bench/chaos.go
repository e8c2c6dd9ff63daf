package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"redrain/internal/chaos"
	"redrain/internal/flagenv"
)

// cmdChaos runs the fault scenario on a local cluster and checks every invariant.
func cmdChaos(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o chaos.Options
	fs := flag.NewFlagSet("bench chaos", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Dir, "dir", "", "data and logs directory (default: temporary, removed after a clean run)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory of the node and coordinator binaries (default: bench's)")
	fs.Int64Var(&o.Count, "count", 30000, "packets")
	fs.Int64Var(&o.Amount, "amount", 0, "cents (0: 100 x count)")
	fs.IntVar(&o.MaxPerUser, "max-per-user", 5, "packets one user may claim")
	fs.IntVar(&o.Conns, "conns", 32, "concurrent requests")
	if err := flagenv.Parse(fs, args, "REDRAIN_"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: bench chaos [flags]\n\nA rain on a local 3-node cluster with claims flowing while a node is killed and restarted,\nRedis is killed and restarted empty, and a node is stopped with SIGTERM; then every invariant.\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "bench chaos: %v\n", err)
		return exitUsage
	}
	temp := o.Dir == ""
	if temp {
		d, err := os.MkdirTemp("", "redrain-chaos-")
		if err != nil {
			fmt.Fprintf(stderr, "bench chaos: %v\n", err)
			return exitFailed
		}
		o.Dir = d
	}
	o.Out = stdout
	res, err := chaos.Run(ctx, o)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench chaos: interrupted; everything started was stopped")
		return exitInterrupt
	case err != nil:
		fmt.Fprintf(stderr, "bench chaos: %v (logs in %s)\n", err, o.Dir)
		return exitFailed
	}
	chaos.Table(stdout, res)
	if res.Verdict.Err() != nil {
		fmt.Fprintf(stderr, "bench chaos: invariants violated (logs in %s)\n", o.Dir)
		return exitFailed
	}
	if temp {
		os.RemoveAll(o.Dir)
	}
	return exitOK
}
