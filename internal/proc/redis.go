package proc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RedisName is the name StartRedis gives its process (Proc.Name).
const RedisName = "redis"

// StartRedis runs redis-server (bin) on addr without persistence, in dir/redis with its log in
// dir/redis.log, and waits until ping (a PING through a client of addr) succeeds.
func StartRedis(ctx context.Context, bin, addr, dir string, ping func(context.Context) error) (*Proc, error) {
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	p, err := Start(RedisName, bin, []string{"--port", port, "--bind", host, "--save", "",
		"--appendonly", "no", "--dir", rdir}, nil, filepath.Join(dir, "redis.log"))
	if err != nil {
		return nil, err
	}
	for {
		if err := ping(ctx); err == nil {
			return p, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("redis-server exited: %v\n%s", p.Err(), Tail(p.Log, 2048))
		}
		select {
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(PollInterval):
		}
	}
}
