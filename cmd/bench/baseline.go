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

// cmdBaseline serves the seed's Redis-list design until interrupted (for wrk, hey, or bench
// compare, which runs it as a child to measure its CPU time).
func cmdBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, prep, err := parseBaseline(args, os.LookupEnv, stdout)
	if code, ok := parsed("bench baseline", err, stderr); !ok {
		return code
	}
	b, err := bench.NewBaseline(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "bench baseline: %v\n", err)
		return exitFailed
	}
	if prep.TotalCount > 0 {
		p, err := b.Prepare(ctx, prep)
		if err != nil {
			b.Close()
			fmt.Fprintf(stderr, "bench baseline: prepare: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "baseline: rain %s: %s packets, %s cents, max %d per user; generated in %.3fs, LPUSHed in %.3fs\n",
			p.Code, bench.Commas(p.TotalCount), bench.Commas(p.TotalAmount), p.MaxPerUser, p.GenerateS, p.PushS)
		fmt.Fprintf(stdout, "baseline: claim with: curl -X POST -H 'X-User-Id: 1' http://%s/v1/rains/%s/claim\n", b.Addr(), p.Code)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	fmt.Fprintf(stdout, "baseline: serving on http://%s (Redis %s); POST /v1/rains prepares a rain; Ctrl-C stops\n", b.Addr(), o.RedisURL)
	select {
	case <-ctx.Done():
		b.Close()
		return exitOK
	case err := <-served:
		b.Close()
		fmt.Fprintf(stderr, "bench baseline: %v\n", err)
		return exitFailed
	}
}

func parseBaseline(args []string, lookup func(string) (string, bool), helpOut io.Writer) (bench.BaselineOptions, bench.BaselinePrepare, error) {
	var o bench.BaselineOptions
	var p bench.BaselinePrepare
	fs := flag.NewFlagSet("bench baseline", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.HTTP, "http", "127.0.0.1:8080", "claim API listen address")
	fs.StringVar(&o.RedisURL, "redis", "redis://127.0.0.1:6379/0", "Redis holding the packet lists")
	fs.IntVar(&o.Pool, "pool", 256, "Redis connections")
	fs.StringVar(&o.AdminToken, "admin-token", "", "bearer token POST /v1/rains requires (empty: none)")
	fs.Int64Var(&p.TotalCount, "count", 0, "prepare a rain of this many packets at start (0: none)")
	fs.Int64Var(&p.TotalAmount, "amount", 0, "its budget, cents (0: 10 per packet)")
	fs.IntVar(&p.MaxPerUser, "max-per-user", 50, "its packets per user")
	fs.StringVar(&p.Code, "code", "", "its code (default: random), so a script knows the claim URL")
	if err := flagenv.ParseLookup(fs, args, "REDRAIN_", lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(helpOut, "Usage: bench baseline [flags]\n\nServes the seed's design (one Redis list per rain, one RPOP per claim) until interrupted.\n\n")
			fs.SetOutput(helpOut)
			fs.PrintDefaults()
		}
		return o, p, err
	}
	if fs.NArg() > 0 {
		return o, p, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if p.TotalCount < 0 || p.TotalAmount < 0 || o.Pool < 0 {
		return o, p, errors.New("--count, --amount and --pool must not be negative")
	}
	if p.TotalAmount == 0 {
		p.TotalAmount = 10 * p.TotalCount
	}
	return o, p, nil
}
