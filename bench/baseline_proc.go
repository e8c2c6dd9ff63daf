package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/cluster"
	"redrain/internal/proc"
)

// LocalBaseline is a baseline served by child processes, so that their CPU time and memory
// can be measured as a cluster's are: redis-server and `bench baseline`.
type LocalBaseline struct {
	Addr       string // claim API address
	AdminToken string
	RedisAddr  string
	Redis      *proc.Proc
	Server     *proc.Proc
	rdb        *redis.Client
}

// BaselineProcOptions say how to start a LocalBaseline.
type BaselineProcOptions struct {
	BinDir   string // holds the bench binary; "" = beside the running executable
	Dir      string // logs and Redis's directory; required
	RedisBin string // "" = redis-server from PATH
	Pool     int    // the server's Redis connections (BaselineOptions.Pool)
}

// StartBaseline starts redis-server and `bench baseline` and waits until the server answers.
// On error everything started is stopped.
func StartBaseline(ctx context.Context, o BaselineProcOptions) (*LocalBaseline, error) {
	if o.Dir == "" {
		return nil, errors.New("bench: BaselineProcOptions.Dir is required")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	bin, redisBin, err := baselineBins(o)
	if err != nil {
		return nil, err
	}
	b := &LocalBaseline{AdminToken: cluster.RandomHex(16)}
	if err := b.start(ctx, o, bin, redisBin); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

func baselineBins(o BaselineProcOptions) (bin, redisBin string, err error) {
	dir := o.BinDir
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", "", err
		}
		dir = filepath.Dir(exe)
	}
	redisBin = o.RedisBin
	if redisBin == "" {
		if redisBin, err = exec.LookPath("redis-server"); err != nil {
			return "", "", fmt.Errorf("bench: redis-server not found (apt-get install -y redis-server): %w", err)
		}
	}
	return filepath.Join(dir, "bench"), redisBin, nil
}

func (b *LocalBaseline) start(ctx context.Context, o BaselineProcOptions, bin, redisBin string) error {
	var err error
	if b.RedisAddr, err = proc.FreeAddr(); err != nil {
		return err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: b.RedisAddr})
	ping := func(ctx context.Context) error { return b.rdb.Ping(ctx).Err() }
	if b.Redis, err = proc.StartRedis(ctx, redisBin, b.RedisAddr, o.Dir, ping); err != nil {
		return err
	}
	if b.Addr, err = proc.FreeAddr(); err != nil {
		return err
	}
	args := []string{"baseline", "--http", b.Addr, "--redis", "redis://" + b.RedisAddr + "/0", "--admin-token", b.AdminToken}
	if o.Pool > 0 {
		args = append(args, "--pool", fmt.Sprint(o.Pool))
	}
	if b.Server, err = proc.Start("baseline", bin, args, nil, filepath.Join(o.Dir, "baseline.log")); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, cluster.StartTimeout)
	defer cancel()
	return b.Server.WaitHTTP(wctx, "http://"+b.Addr+"/healthz")
}

// Prepare asks the server to generate and push a rain; took is the call's wall time.
func (b *LocalBaseline) Prepare(ctx context.Context, p BaselinePrepare) (BaselinePrepared, time.Duration, error) {
	var out BaselinePrepared
	began := time.Now()
	err := cluster.NewAdmin(b.Addr, b.AdminToken).Do(ctx, "POST", "/v1/rains", p, &out)
	return out, time.Since(began), err
}

// Client is a Redis client of the baseline's Redis.
func (b *LocalBaseline) Client() *redis.Client { return b.rdb }

// Procs are the server processes: the baseline server and its Redis.
func (b *LocalBaseline) Procs() []*proc.Proc { return []*proc.Proc{b.Server, b.Redis} }

// Stop stops the server (SIGTERM), then Redis. Safe twice.
func (b *LocalBaseline) Stop() {
	if b.Server != nil {
		b.Server.Term(10 * time.Second)
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.Redis != nil {
		b.Redis.Term(10 * time.Second)
	}
}
