// Package testredis starts a real redis-server for tests: on a free 127.0.0.1 port, in the test's
// temporary directory, without persistence unless the test asks for a snapshot (Save), and killed
// when the test ends. Tests can kill it, restart it empty or from an older snapshot, which is how
// the ledger's exactly-once flusher is exercised. NewCluster starts a Redis Cluster (three masters
// with a replica each) the same way, for the cluster tests and failovers.
//
// redis-server (and redis-cli, for a cluster) must be on PATH: `make test` installs it (scripts/ensure-redis.sh), or
// `apt-get install -y redis-server`. A missing binary fails the test; it is never skipped.
package testredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/proc"
	"redrain/internal/rediscluster"
)

// InstallHint says how to get redis-server when it is missing.
const InstallHint = "redis-server not found on PATH: run `make test` (it installs it) or `apt-get install -y redis-server`"

// StartTimeout bounds how long Start waits for the server to answer PING.
const StartTimeout = 15 * time.Second

// Server is one redis-server process owned by a test. Its methods call tb.Fatal on failure, so
// call them from the test's goroutine. The port and directory stay the same across restarts.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu      sync.Mutex
	p       *proc.Proc // nil while stopped
	clients []*redis.Client
}

// New starts a redis-server on a free port and registers its kill (and the close of every client
// it handed out) with tb.Cleanup.
func New(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal(InstallHint)
	}
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	tb.Cleanup(s.cleanup)
	// A free port can be taken between probing and binding: try a few.
	var last error
	for range 5 {
		s.port, err = proc.FreePort()
		if err != nil {
			tb.Fatalf("testredis: free port: %v", err)
		}
		if last = s.start(); last == nil {
			return s
		}
	}
	tb.Fatalf("testredis: %v", last)
	return nil
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is "redis://127.0.0.1:port/0", the form of the --redis flag.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (where dump.rdb lives).
func (s *Server) Dir() string { return s.dir }

// RDBPath is the snapshot file the server loads at start and writes on Save.
func (s *Server) RDBPath() string { return filepath.Join(s.dir, "dump.rdb") }

// Client returns a new client for the server, closed at cleanup. It survives restarts: go-redis
// reconnects on the next command.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// Running reports whether the process is up (it may not answer yet).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p != nil
}

// Kill sends SIGKILL and waits for the process to exit. No snapshot is written. A stopped server
// is left alone.
func (s *Server) Kill() {
	s.tb.Helper()
	s.mu.Lock()
	p := s.p
	s.p = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.Kill()
}

// Start starts a stopped server on the same port; it loads dump.rdb if one is there.
func (s *Server) Start() {
	s.tb.Helper()
	if err := s.start(); err != nil {
		s.tb.Fatalf("testredis: %v", err)
	}
}

// Restart is Kill then Start: the data since the last Save is lost.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.Start()
}

// Wipe restarts the server empty: kill, delete the snapshot, start.
func (s *Server) Wipe() {
	s.tb.Helper()
	s.Kill()
	if err := os.Remove(s.RDBPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.tb.Fatalf("testredis: %v", err)
	}
	s.Start()
}

// FlushAll empties the running server without restarting it.
func (s *Server) FlushAll() {
	s.tb.Helper()
	if err := s.do("FLUSHALL"); err != nil {
		s.tb.Fatalf("testredis: FLUSHALL: %v", err)
	}
}

// Save writes a snapshot (SAVE) to dump.rdb; the next Start or Restart loads it.
func (s *Server) Save() {
	s.tb.Helper()
	if err := s.do("SAVE"); err != nil {
		s.tb.Fatalf("testredis: SAVE: %v", err)
	}
}

// CopyRDB copies the current dump.rdb to dst, to restore it later with RestoreRDB.
func (s *Server) CopyRDB(dst string) {
	s.tb.Helper()
	if err := copyFile(dst, s.RDBPath()); err != nil {
		s.tb.Fatalf("testredis: copy snapshot: %v", err)
	}
}

// RestoreRDB kills the server, puts src in place of dump.rdb and starts it again: Redis comes back
// as it was when that snapshot was taken.
func (s *Server) RestoreRDB(src string) {
	s.tb.Helper()
	s.Kill()
	if err := copyFile(s.RDBPath(), src); err != nil {
		s.tb.Fatalf("testredis: restore snapshot: %v", err)
	}
	s.Start()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil {
		return errors.New("start: already running")
	}
	logPath := filepath.Join(s.dir, "redis.log")
	p, err := proc.Start(proc.RedisName, s.bin, []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--dbfilename", "dump.rdb"}, nil, logPath)
	if err != nil {
		return err
	}
	if err := waitReady(s.Addr(), p); err != nil {
		p.Kill()
		return fmt.Errorf("redis-server on port %d: %w\n%s", s.port, err, tail(logPath))
	}
	s.p = p
	return nil
}

// waitReady polls PING until it answers, the process exits, or StartTimeout passes.
func waitReady(addr string, p *proc.Proc) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if p.Exited() {
			return errors.New("exited before answering PING")
		}
		time.Sleep(5 * time.Millisecond) // poll pace
		if time.Now().After(deadline) {
			return fmt.Errorf("no PING answer within %v: %w", StartTimeout, err)
		}
	}
}

// do runs one command on a short-lived connection.
func (s *Server) do(args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}

func (s *Server) cleanup() {
	s.mu.Lock()
	clients := s.clients
	s.clients = nil
	s.mu.Unlock()
	for _, c := range clients {
		_ = c.Close()
	}
	s.Kill()
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail returns the last lines of the server's log, for failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// NewCluster starts a Redis Cluster of three masters with a replica each (six redis-server
// processes, cluster-node-timeout 1 s, no persistence) in the test's temporary directory, waits
// until every member says cluster_state:ok, and registers its kill with tb.Cleanup. Its
// Client is a go-redis cluster client; Flag is the --redis-cluster value.
func NewCluster(tb testing.TB) *rediscluster.Cluster {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatal(InstallHint)
	}
	rc, err := rediscluster.Start(context.Background(), rediscluster.Options{Dir: tb.TempDir(), Replicas: 1})
	if err != nil {
		tb.Fatalf("testredis: %v", err)
	}
	tb.Cleanup(rc.Stop)
	return rc
}
