package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"redrain/bench"
	"redrain/internal/flagenv"
)

// cmdScale measures a large cluster in one process: membership, prepare, start, report, memory.
func cmdScale(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o bench.ScaleOptions
	fs := flag.NewFlagSet("bench scale", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.Members, "members", 300, fmt.Sprintf("nodes, 1..%d, run in bench's own process (each a real node with its own gossip member, HTTP listener and Redis client; in-memory journal)", bench.MaxScaleMembers))
	fs.Int64Var(&o.Packets, "packets", bench.DefaultScalePackets, "packets of the rain prepared over them")
	fs.Int64Var(&o.Amount, "amount", 0, "its cents (0: 10 x packets)")
	fs.IntVar(&o.Reports, "reports", bench.DefaultScaleReports, "report calls timed")
	fs.DurationVar(&o.Timeout, "timeout", bench.DefaultScaleTimeout, "bound on each wait (membership, start reaching every node, one call)")
	fs.BoolVar(&o.FastGossip, "fast-gossip", false, "memberlist's test timings on every member (default: production's LAN timings)")
	fs.StringVar(&o.Dir, "dir", "", "data and logs directory (default: temporary, removed after a clean run)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory of the coordinator binary (default: bench's)")
	fs.StringVar(&o.Out, "out", "", "write DIR/results.json")
	fs.IntVar(&o.Wave, "wave", bench.DefaultScaleWave, "nodes started at once; the next wave once the coordinator lists them alive (>= --members: all at once)")
	fs.IntVar(&o.GCPercent, "gogc", bench.DefaultScaleGCPercent, "bench's GOGC while it hosts the nodes (-1: as the environment says); one process's collector serves them all")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write bench's heap profile (the nodes' side) after the reports to this file")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write bench's CPU profile (the nodes' side) over the run (pprof) to this file")
	if err := flagenv.Parse(fs, args, "REDRAIN_"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: bench scale [flags]\n\nN nodes in this process join a coordinator process (production gossip timings); measures\nfull membership, a prepare of --packets over them, the start reaching every node (directly\nand by gossip), the report, and the coordinator's memory. Exit 1 if a figure is missing or\nthe report does not balance; the targets (for N = 300) are printed, not enforced.\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "bench scale: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench scale: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	temp := o.Dir == ""
	if temp {
		d, err := os.MkdirTemp("", "redrain-scale-")
		if err != nil {
			fmt.Fprintf(stderr, "bench scale: %v\n", err)
			return exitFailed
		}
		o.Dir = d
	}
	o.Progress = stderr
	res, err := bench.Scale(ctx, o)
	if code, ok := finished(ctx, "bench scale", err, bench.ErrScaleOptions, "everything started was stopped", stderr); !ok {
		if code == exitUsage && temp {
			os.RemoveAll(o.Dir) // nothing was started
		} else if code != exitUsage {
			fmt.Fprintf(stderr, "bench scale: logs in %s\n", o.Dir)
		}
		return code
	}
	bench.ScaleTable(stdout, res)
	if err := res.Err(); err != nil {
		fmt.Fprintf(stderr, "bench scale: %v (logs in %s)\n", err, o.Dir)
		return exitFailed
	}
	if temp {
		os.RemoveAll(o.Dir)
	}
	return exitOK
}
