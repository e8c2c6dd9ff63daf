package testredis

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"redrain/internal/poll"
	"redrain/internal/rediscluster"
)

// NewCluster gives three masters with a replica each, keys spread over the masters, FlushAll
// empties all of them, and killing a key's master promotes its replica, which kept the key.
func TestCluster(t *testing.T) {
	rc := NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if len(rc.Addrs()) != 6 {
		t.Fatalf("%d members, want 6", len(rc.Addrs()))
	}
	c := rc.Client()
	masters := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprintf("k%d", i)
		if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		sh, err := rc.ShardOf(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(sh.Replicas) != 1 || sh.Replicas[0] == sh.Master {
			t.Fatalf("shard of %s: %+v, want a master and one replica", key, sh)
		}
		masters[sh.Master] = true
	}
	if len(masters) != 3 {
		t.Fatalf("30 keys on %d masters, want 3", len(masters))
	}
	if err := rc.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if n, err := c.Exists(ctx, fmt.Sprintf("k%d", i)).Result(); err != nil || n != 0 {
			t.Fatalf("k%d after FlushAll: %d, %v", i, n, err)
		}
	}

	if err := c.Set(ctx, "kept", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sh, _ := rc.ShardOf(ctx, "kept")
	// The replica has the write before the master dies.
	if err := poll.Until(ctx, 10*time.Second, 5*time.Millisecond, func() bool {
		v, err := rediscluster.DoReadOnly(ctx, sh.Replicas[0], "GET", "kept")
		return err == nil && v == "yes"
	}); err != nil {
		t.Fatalf("the replica never got the key: %v", err)
	}
	if err := rc.Kill(sh.Master); err != nil {
		t.Fatal(err)
	}
	moved, err := rc.WaitMasterMoved(ctx, "kept", sh.Master)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sh.Replicas, moved) {
		t.Fatalf("new master %s is not the replica %v", moved, sh.Replicas)
	}
	v, err := c.Get(ctx, "kept").Result()
	for i := 0; err != nil && i < 50; i++ { // the client learns the new slot map on its own
		v, err = c.Get(ctx, "kept").Result()
	}
	if err != nil || v != "yes" {
		t.Fatalf("GET kept after the failover: %q, %v", v, err)
	}
}
