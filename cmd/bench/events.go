package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"redrain/bench"
	"redrain/internal/flagenv"
)

// cmdEvents measures the nodes' room event streams: N viewers subscribed across a local
// cluster, a rain of their room started, delivery latency, memory per viewer, and (with
// --claim-time) claims/s with and without the idle viewers.
func cmdEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o bench.EventsOptions
	var out string
	fs := flag.NewFlagSet("bench events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.Subscribers, "subscribers", 1000, "viewers subscribed, round robin over the nodes")
	fs.IntVar(&o.LocalNodes, "nodes", 1, "node processes of the local cluster")
	fs.Int64Var(&o.Room, "room", 1, "the viewers' room")
	fs.IntVar(&o.Dialers, "dialers", 64, "subscriptions opened at once")
	fs.DurationVar(&o.Wait, "wait", 10*time.Second, "how long the viewers are waited for after the start")
	fs.DurationVar(&o.ClaimTime, "claim-time", 0, "> 0: also a claim load of this long on the first node without, then with the idle viewers")
	fs.IntVar(&o.Load.Users, "users", 20_000, "simulated users of the claim loads")
	fs.IntVar(&o.Load.Conns, "conns", 64, "concurrent requests of the claim loads")
	fs.StringVar(&o.Dir, "dir", "", "data and logs directory (default: temporary, removed after)")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory of the node and coordinator binaries (default: bench's)")
	fs.StringVar(&out, "out", "", "write OUT/events.json")
	if err := flagenv.Parse(fs, args, "REDRAIN_"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, "Usage: bench events [flags]\n\nViewers subscribe to a room's event stream across a local cluster; a rain of the room starts;\nprints how many heard the start, the delivery latency, the first node's memory per viewer and,\nwith --claim-time, its claims/s with and without the idle viewers (every invariant checked).\n\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		fmt.Fprintf(stderr, "bench events: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench events: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	res, err := bench.Events(ctx, o)
	switch {
	case errors.Is(err, bench.ErrEventsOptions):
		fmt.Fprintf(stderr, "bench events: %v\n", err)
		return exitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "bench events: interrupted; everything started was stopped")
		return exitInterrupt
	case err != nil:
		fmt.Fprintf(stderr, "bench events: %v\n", err)
		return exitFailed
	}
	bench.EventsTable(stdout, res)
	if out != "" {
		if err := writeEvents(out, res); err != nil {
			fmt.Fprintf(stderr, "bench events: %v\n", err)
			return exitFailed
		}
	}
	if !res.Verified || res.Received < res.Connected {
		return exitFailed
	}
	return exitOK
}

func writeEvents(dir string, res *bench.EventsResult) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	return os.WriteFile(filepath.Join(dir, "events.json"), append(b, '\n'), 0o644)
}
