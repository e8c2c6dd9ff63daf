// Package testlocal starts a cluster.LocalCluster (Redis, a coordinator and nodes as processes of
// the binaries internal/testcluster builds) for an integration test, and tears it down after.
package testlocal

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"redrain/internal/cluster"
	"redrain/internal/proc"
	"redrain/internal/testcluster"
)

// Cluster starts o within two minutes, with fast failure detection, in a test directory, from
// the race-built binaries unless o.BinDir is set. At cleanup it prints the tail of every log if
// the test failed, then kills the cluster.
func Cluster(t testing.TB, o cluster.ClusterOptions) *cluster.LocalCluster {
	t.Helper()
	if o.BinDir == "" {
		o.BinDir = filepath.Dir(testcluster.Bin(t, "node"))
	}
	o.Dir, o.FastGossip = t.TempDir(), true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.StartCluster(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			PrintLogs(t, c.Logs()...)
		}
		c.Kill()
	})
	return c
}

// PrintLogs logs the tail of each file.
func PrintLogs(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		t.Logf("--- %s:\n%s", filepath.Base(p), proc.Tail(p, 2500))
	}
}
