package main

import (
	"errors"
	"flag"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/internal/testcluster"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("REDRAIN_ADMIN_TOKEN", "from-env-token")
	t.Setenv("REDRAIN_REDIS", "redis://env:1/0")
	t.Setenv("REDRAIN_JOIN", "a:1, b:2")
	t.Setenv("REDRAIN_PREPARE_TIMEOUT", "3s")
	o, err := parseFlags([]string{"--data", "/d", "--secret", "cluster-secret", "--redis", "redis://cli:2/0", "--http", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if o.AdminToken != "from-env-token" || o.RedisURL != "redis://cli:2/0" || o.DataDir != "/d" ||
		o.HTTPAddr != "127.0.0.1:0" || o.GossipAddr != "127.0.0.1:7000" || o.PrepareTimeout != 3*time.Second ||
		strings.Join(o.Join, "|") != "a:1|b:2" {
		t.Fatalf("%+v", o)
	}
	t.Setenv("REDRAIN_REDIS", "")
	t.Setenv("REDRAIN_REDIS_CLUSTER", "127.0.0.1:7001,127.0.0.1:7002")
	if o, err := parseFlags([]string{"--data", "/d", "--secret", "cluster-secret"}); err != nil ||
		strings.Join(o.RedisCluster, "|") != "127.0.0.1:7001|127.0.0.1:7002" || o.RedisURL != "" {
		t.Fatalf("REDRAIN_REDIS_CLUSTER: %+v, %v", o, err)
	}
	if _, err := parseFlags([]string{"--data", "/d", "--secret", "cluster-secret", "--redis", "redis://cli:2/0"}); err == nil {
		t.Error("--redis with REDRAIN_REDIS_CLUSTER: accepted")
	}
	t.Setenv("REDRAIN_REDIS_CLUSTER", "")
	for _, args := range [][]string{
		{"--bogus"}, {"--secret", "s", "--redis", "r"}, {"--prepare-timeout", "soon"}, {"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// TestMainProcess is not a test: runCoordinator runs the test binary again with this test
// selected, COORDINATOR_MAIN=1 and main's arguments after "--", so main runs in a real process.
func TestMainProcess(t *testing.T) {
	if os.Getenv("COORDINATOR_MAIN") != "1" {
		t.Skip("runs main for runCoordinator")
	}
	os.Args = append([]string{"coordinator"}, flag.Args()...)
	main()
}

// runCoordinator runs main with args in a process of its own (testcluster.RunMain).
func runCoordinator(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return testcluster.RunMain(t, "TestMainProcess", "COORDINATOR_MAIN", args...)
}

// A bad flag value, a malformed listen address or an address in use is refused before the
// coordinator touches its data dir: exit 2, one line on stderr naming the flag (and the
// address), and no coordinator.db (not even the directory).
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
		want  []string // in the stderr line: the Options field (the coordinator's errors name those) and the address
	}{
		{"bad redis URL", []string{"--redis", "notaurl://x"}, []string{"RedisURL"}},
		{"http port in use", []string{"--http", busy}, []string{"HTTPAddr", busy}},
		{"http port out of range", []string{"--http", "127.0.0.1:99999"}, []string{"HTTPAddr", "127.0.0.1:99999"}},
		{"http not an address", []string{"--http", "nonsense"}, []string{"HTTPAddr", "nonsense"}},
		{"gossip port in use", []string{"--gossip", busy}, []string{"GossipAddr", busy}},
		{"gossip not an address", []string{"--gossip", "nonsense"}, []string{"GossipAddr", "nonsense"}},
		{"join not an address", []string{"--join", "nonsense"}, []string{"Join", "nonsense"}},
		{"id with a space", []string{"--id", "co ord"}, []string{"ID"}},
		{"advertise not an IP", []string{"--advertise", "coord.example"}, []string{"Advertise", "coord.example"}},
		{"redis and redis cluster", []string{"--redis-cluster", "127.0.0.1:1,127.0.0.1:2"}, []string{"--redis", "--redis-cluster"}},
		{"neither redis nor redis cluster", []string{"--redis", ""}, []string{"--redis", "--redis-cluster", "REDRAIN_REDIS_CLUSTER"}},
		{"bad redis cluster address", []string{"--redis", "", "--redis-cluster", "127.0.0.1:1,127.0.0.1"}, []string{"redis-cluster", "127.0.0.1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			flags := map[string]string{"--data": data, "--redis": "redis://127.0.0.1:1/0", "--secret": "test-cluster-secret",
				"--admin-token": "test-admin-token", "--http": "127.0.0.1:0", "--gossip": "127.0.0.1:0"}
			for i := 0; i < len(c.flags); i += 2 {
				flags[c.flags[i]] = c.flags[i+1]
			}
			var args []string
			for k, v := range flags {
				if v != "" {
					args = append(args, k, v)
				}
			}
			code, stderr := runCoordinator(t, args...)
			line := strings.TrimSpace(stderr)
			if code != 2 || strings.Contains(line, "\n") {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line", code, stderr)
			}
			if !strings.HasPrefix(line, "coordinator: ") || strings.HasPrefix(line, "coordinator: coordinator:") {
				t.Errorf("stderr %q: want the prefix \"coordinator: \" once", line)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr %q does not name %q", line, w)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data dir touched (%v): coordinator.db must not be created on a bad flag", err)
			}
		})
	}
}
