package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	if !ok || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "no-such-flag") {
		t.Fatalf("exit %v, output %q", err, out)
	}
}
