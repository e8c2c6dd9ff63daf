package main

import (
	"errors"
	"flag"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/internal/testcluster"
)

func TestParseFlagsEnvAndCommandLine(t *testing.T) {
	t.Setenv("REDRAIN_REDIS", "redis://127.0.0.1:1/0")
	t.Setenv("REDRAIN_SECRET", "from-env-secret")
	t.Setenv("REDRAIN_HTTP", "127.0.0.1:1111")
	o, err := parseFlags([]string{"--id", "n7", "--data", "/tmp/x", "--http", "127.0.0.1:2222", "--join", "a:1, b:2",
		"--trusted-proxies", "10.0.0.0/8", "--retention", "2h"})
	if err != nil {
		t.Fatal(err)
	}
	if o.HTTPAddr != "127.0.0.1:2222" || o.Secret != "from-env-secret" || o.RedisURL != "redis://127.0.0.1:1/0" ||
		len(o.Join) != 2 || o.Join[1] != "b:2" || len(o.TrustedProxies) != 1 || o.Retention != 2*time.Hour {
		t.Fatalf("options %+v: the command line must win, env fill the rest", o)
	}
	if _, err := parseFlags([]string{"--data", "/tmp/x"}); err == nil || !strings.Contains(err.Error(), "--id") {
		t.Fatalf("missing --id: %v", err)
	}
}

// A bad flag is one line on stderr and exit 2.
func TestBadFlagExits2(t *testing.T) {
	if os.Getenv("REDRAIN_NODE_MAIN") == "1" {
		os.Args = []string{"node", "--no-such-flag"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBadFlagExits2$")
	cmd.Env = append(os.Environ(), "REDRAIN_NODE_MAIN=1")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	line := strings.TrimSpace(string(out))
	if !ok || ee.ExitCode() != 2 || strings.Count(line, "\n") != 0 || !strings.Contains(line, "no-such-flag") ||
		!strings.HasPrefix(line, "node: ") || strings.HasPrefix(line, "node: node:") {
		t.Fatalf("exit %v, output %q", err, out)
	}
}

// TestMainProcess is not a test: runNode runs the test binary again with this test selected,
// NODE_MAIN=1 and main's arguments after "--", so main runs in a real process of its own.
func TestMainProcess(t *testing.T) {
	if os.Getenv("NODE_MAIN") != "1" {
		t.Skip("runs main for runNode")
	}
	os.Args = append([]string{"node"}, flag.Args()...)
	main()
}

// runNode runs main with args in a process of its own (testcluster.RunMain).
func runNode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return testcluster.RunMain(t, "TestMainProcess", "NODE_MAIN", args...)
}

// A bad flag value, a malformed listen address or an address in use is refused before the node
// touches its data dir: exit 2, one line on stderr naming the flag (and the address), and no
// journal.db (not even the directory).
func TestBadOptionsExit2BeforeTheDisk(t *testing.T) {
	busyTCP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()
	busy := busyTCP.Addr().String()
	cases := []struct {
		name  string
		flags []string // replace the good ones of the same name ("" drops it)
		want  []string // in the stderr line
	}{
		{"bad redis URL", []string{"--redis", "notaurl://x"}, []string{"redis"}},
		{"http port in use", []string{"--http", busy}, []string{"http", busy}},
		{"http port out of range", []string{"--http", "127.0.0.1:99999"}, []string{"http", "127.0.0.1:99999"}},
		{"http not an address", []string{"--http", "nonsense"}, []string{"http", "nonsense"}},
		{"gossip port in use", []string{"--gossip", busy}, []string{"gossip", busy}},
		{"gossip not an address", []string{"--gossip", "nonsense"}, []string{"gossip", "nonsense"}},
		{"join not an address", []string{"--join", "nonsense"}, []string{"join", "nonsense"}},
		{"bad trusted proxy", []string{"--trusted-proxies", "not-an-ip"}, []string{"trusted-proxies"}},
		{"advertise not an IP", []string{"--advertise", "redrain-node-0"}, []string{"advertise", "redrain-node-0"}},
		{"redis and redis cluster", []string{"--redis-cluster", "127.0.0.1:1,127.0.0.1:2"}, []string{"--redis", "--redis-cluster"}},
		{"neither redis nor redis cluster", []string{"--redis", ""}, []string{"--redis", "--redis-cluster", "REDRAIN_REDIS_CLUSTER"}},
		{"bad redis cluster address", []string{"--redis", "", "--redis-cluster", "127.0.0.1:1,127.0.0.1"}, []string{"redis-cluster", "127.0.0.1"}},
		{"redis cluster address twice", []string{"--redis", "", "--redis-cluster", "127.0.0.1:1,127.0.0.1:1"}, []string{"redis-cluster", "twice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			flags := map[string]string{"--id": "n1", "--data": data, "--redis": "redis://127.0.0.1:1/0",
				"--secret": "test-cluster-secret", "--http": "127.0.0.1:0", "--gossip": "127.0.0.1:0"}
			for i := 0; i < len(c.flags); i += 2 {
				flags[c.flags[i]] = c.flags[i+1]
			}
			var args []string
			for k, v := range flags {
				if v != "" { // "" drops the flag
					args = append(args, k, v)
				}
			}
			code, stderr := runNode(t, args...)
			line := strings.TrimSpace(stderr)
			if code != 2 || strings.Contains(line, "\n") {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line", code, stderr)
			}
			if !strings.HasPrefix(line, "node: ") || strings.HasPrefix(line, "node: node:") {
				t.Errorf("stderr %q: want the prefix \"node: \" once", line)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr %q does not name %q", line, w)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data dir touched (%v): journal.db must not be created on a bad flag", err)
			}
		})
	}
}

// --redis-cluster comes from the flag or REDRAIN_REDIS_CLUSTER, as a list of host:port.
func TestParseFlagsRedisCluster(t *testing.T) {
	t.Setenv("REDRAIN_REDIS_CLUSTER", "127.0.0.1:7001, 127.0.0.1:7002")
	o, err := parseFlags([]string{"--id", "n1", "--data", "/tmp/x", "--secret", "cluster-secret"})
	if err != nil || o.RedisURL != "" || strings.Join(o.RedisCluster, "|") != "127.0.0.1:7001|127.0.0.1:7002" {
		t.Fatalf("options %+v, %v", o, err)
	}
	t.Setenv("REDRAIN_REDIS", "redis://127.0.0.1:1/0")
	if _, err := parseFlags([]string{"--id", "n1", "--data", "/tmp/x", "--secret", "cluster-secret"}); err == nil ||
		!strings.Contains(err.Error(), "exclude each other") {
		t.Fatalf("REDRAIN_REDIS and REDRAIN_REDIS_CLUSTER both set: %v", err)
	}
}
