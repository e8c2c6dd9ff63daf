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

// cmdCeiling serves the loopback ceiling (a fixed 200 answer to every claim, the node's server
// settings) until interrupted: Setup A's upper bound, for wrk (scripts/setup-a.sh).
func cmdCeiling(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o bench.CeilingOptions
	fs := flag.NewFlagSet("bench ceiling", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.HTTP, "http", "127.0.0.1:8080", "listen address")
	err := flagenv.ParseLookup(fs, args, "REDRAIN_", os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: bench ceiling [flags]\n\nAnswers every POST /v1/rains/{code}/claim with the same 200 body until interrupted (the loopback ceiling).\n\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	} else if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if code, ok := parsed("bench ceiling", err, stderr); !ok {
		return code
	}
	c, err := bench.NewCeiling(o)
	if err != nil {
		fmt.Fprintf(stderr, "bench ceiling: %v\n", err)
		return exitFailed
	}
	served := make(chan error, 1)
	go func() { served <- c.Serve() }()
	fmt.Fprintf(stdout, "ceiling: serving a fixed answer on http://%s/v1/rains/{code}/claim; Ctrl-C stops\n", c.Addr())
	select {
	case <-ctx.Done():
		c.Close()
		return exitOK
	case err := <-served:
		c.Close()
		fmt.Fprintf(stderr, "bench ceiling: %v\n", err)
		return exitFailed
	}
}
