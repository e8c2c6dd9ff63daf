package main

import (
	"strings"
	"testing"
	"time"
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
	for _, args := range [][]string{
		{"--bogus"}, {"--secret", "s", "--redis", "r"}, {"--prepare-timeout", "soon"}, {"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
