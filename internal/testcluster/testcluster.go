// Package testcluster runs redrain's real binaries as child processes for integration tests:
// it builds cmd/node, cmd/coordinator and cmd/bench once per test process, starts them on free
// 127.0.0.1 ports with their logs in files, and kills (SIGKILL) or stops (SIGTERM) them. Its
// Eventually is the one poll-with-deadline of every package's tests.
package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"redrain/internal/proc"
)

// flavor is one build of the binaries (with or without the race detector).
type flavor struct {
	once sync.Once
	dir  string
	err  error
}

var raceBuild, plainBuild flavor

// Bin returns the path of a redrain binary ("node", "coordinator", "bench"), building all of
// them (with -race unless REDRAIN_TEST_NORACE is set) on first use into a temporary directory
// shared by the process's tests and removed by Main.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	return bin(tb, &raceBuild, os.Getenv("REDRAIN_TEST_NORACE") == "", name)
}

// PlainBin is Bin without the race detector, for tests that measure latency: the detector
// multiplies the servers' CPU cost several times over on this 2-core machine.
func PlainBin(tb testing.TB, name string) string {
	tb.Helper()
	return bin(tb, &plainBuild, false, name)
}

func bin(tb testing.TB, f *flavor, race bool, name string) string {
	tb.Helper()
	f.once.Do(func() { f.dir, f.err = build(race) })
	if f.err != nil {
		tb.Fatalf("build binaries: %v", f.err)
	}
	p := filepath.Join(f.dir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("binary %s: %v", name, err)
	}
	return p
}

func build(race bool) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "redrain-bin-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"node", "coordinator", "bench"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		if race {
			cmd = exec.Command("go", "build", "-race", "-o", filepath.Join(dir, name), "./cmd/"+name)
		}
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreeAddr is "127.0.0.1:<FreePort>".
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	a, err := proc.FreeAddr()
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// Start runs bin with args and extra environment; the process is killed at test cleanup and
// its log's tail printed if the test failed.
func Start(tb testing.TB, name, bin string, args []string, env ...string) *proc.Proc {
	tb.Helper()
	p, err := proc.Start(name, bin, args, env, filepath.Join(tb.TempDir(), name+".log"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("--- log of %s (last 4 KiB):\n%s", name, proc.Tail(p.Log, 4096))
		}
	})
	return p
}

// WaitHTTP polls url until it answers 200 or timeout passes (or p exits).
func WaitHTTP(tb testing.TB, p *proc.Proc, url string, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.WaitHTTP(ctx, url); err != nil {
		tb.Fatal(err)
	}
}

// Eventually polls cond every 10 ms until it is true or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling pace, not a wait for an event
	}
}

// Main runs the tests and removes the built binaries; call it from TestMain:
// func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	for _, f := range []*flavor{&raceBuild, &plainBuild} {
		if f.dir != "" {
			os.RemoveAll(f.dir)
		}
	}
	return code
}
