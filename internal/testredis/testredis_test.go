package testredis

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func get(t *testing.T, c *redis.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := c.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v, true
}

func set(t *testing.T, c *redis.Client, key, val string) {
	t.Helper()
	if err := c.Set(context.Background(), key, val, 0).Err(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
}

func TestLifecycle(t *testing.T) {
	s := New(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/0") {
		t.Fatalf("URL = %q", s.URL())
	}
	opt, err := redis.ParseURL(s.URL())
	if err != nil || opt.Addr != s.Addr() {
		t.Fatalf("ParseURL(%q) = %v, %v; want addr %s", s.URL(), opt, err, s.Addr())
	}
	c := s.Client()

	set(t, c, "a", "1")
	s.Save()
	old := filepath.Join(t.TempDir(), "old.rdb")
	s.CopyRDB(old)
	set(t, c, "b", "2")

	s.Restart() // loads the snapshot: a, not b
	if v, ok := get(t, c, "a"); !ok || v != "1" {
		t.Fatalf("after restart a = %q, %v; want 1", v, ok)
	}
	if _, ok := get(t, c, "b"); ok {
		t.Fatal("after restart b survived without a snapshot")
	}

	set(t, c, "b", "2")
	s.Save()
	s.RestoreRDB(old)
	if _, ok := get(t, c, "b"); ok {
		t.Fatal("after RestoreRDB(old) b is present")
	}

	s.Wipe()
	if _, ok := get(t, c, "a"); ok {
		t.Fatal("after Wipe a is present")
	}

	set(t, c, "c", "3")
	s.FlushAll()
	if _, ok := get(t, c, "c"); ok {
		t.Fatal("after FlushAll c is present")
	}
}

func TestKillStart(t *testing.T) {
	s := New(t)
	s.Kill()
	if s.Running() {
		t.Fatal("Running after Kill")
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Kill() // stopped: no-op
	s.Start()
	if err := s.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
}

func TestTwoServersDifferentPorts(t *testing.T) {
	a, b := New(t), New(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("same address %s", a.Addr())
	}
}
