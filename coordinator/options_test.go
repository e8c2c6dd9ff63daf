package coordinator

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"redrain/internal/usertoken"
)

func TestOptionsValidate(t *testing.T) {
	good := LocalOptions(t.TempDir(), "redis://127.0.0.1:1/0", "12345678", "abcdefgh")
	for _, c := range []struct {
		field string
		mod   func(*Options)
	}{
		{"DataDir", func(o *Options) { o.DataDir = "" }},
		{"RedisURL", func(o *Options) { o.RedisURL = "" }},
		{"Secret", func(o *Options) { o.Secret = "1234567" }},
		{"AdminToken", func(o *Options) { o.AdminToken = "" }},
		{"PrepareTimeout", func(o *Options) { o.PrepareTimeout = -1 }},
		{"PrepareTimeout", func(o *Options) { o.PrepareTimeout = time.Hour }},
		{"PollInterval", func(o *Options) { o.PollInterval = time.Microsecond }},
		{"ID", func(o *Options) { o.ID = strings.Repeat("x", 65) }},
		{"ID", func(o *Options) { o.ID = "co ord" }},
		{"GossipAddr", func(o *Options) { o.GossipAddr = "nonsense" }},
		{"Join", func(o *Options) { o.Join = []string{"127.0.0.1:1", ":7000"} }},
		{"RedisURL", func(o *Options) { o.RedisURL = "notaurl://x" }},
		{"RedisURL", func(o *Options) { o.RedisCluster = []string{"127.0.0.1:1"} }}, // both
		{"RedisCluster", func(o *Options) { o.RedisURL, o.RedisCluster = "", []string{"127.0.0.1:1", "127.0.0.1"} }},
		{"UserKey", func(o *Options) { o.UserKey = "0123456789" }}, // the node demands 16 bytes: so does the coordinator
		{"UserKey", func(o *Options) { o.UserKey = strings.Repeat("k", usertoken.MinKeyLen-1) }},
	} {
		o := good
		c.mod(&o)
		_, err := New(o)
		if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	withKey := Options{DataDir: "d", RedisURL: "redis://r:6379/0", Secret: "12345678", AdminToken: "abcdefgh",
		UserKey: strings.Repeat("k", usertoken.MinKeyLen)}
	if err := withKey.validate(); err != nil {
		t.Fatalf("a user key of %d bytes: %v", usertoken.MinKeyLen, err)
	}
	o := Options{DataDir: "d", RedisURL: "redis://r:6379/0", Secret: "12345678", AdminToken: "abcdefgh"}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	d := DefaultOptions()
	if o.HTTPAddr != d.HTTPAddr || o.GossipAddr != d.GossipAddr || o.ID != "coordinator" ||
		o.PrepareTimeout != 10*time.Second || o.PollInterval != 500*time.Millisecond || o.Logger == nil {
		t.Fatalf("defaults not filled: %+v", o)
	}
	bad := good
	bad.RedisURL = "http://x"
	if _, err := New(bad); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "RedisURL") {
		t.Fatalf("bad redis URL: %v", err)
	}
}

// New refuses a bad option or an address it cannot bind before it creates anything on disk.
func TestNewRefusesBeforeTheDisk(t *testing.T) {
	busyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyLn.Close()
	busy := busyLn.Addr().String()
	for _, c := range []struct {
		name string
		mod  func(*Options)
		want error
	}{
		{"bad redis URL", func(o *Options) { o.RedisURL = "notaurl://x" }, ErrOptions},
		{"gossip not an address", func(o *Options) { o.GossipAddr = "nonsense" }, ErrOptions},
		{"http not an address", func(o *Options) { o.HTTPAddr = "nonsense" }, ErrListen},
		{"http port in use", func(o *Options) { o.HTTPAddr = busy }, ErrListen},
		{"gossip port in use", func(o *Options) { o.GossipAddr = busy }, ErrListen},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			o := LocalOptions(data, "redis://127.0.0.1:1/0", testSecret, testToken)
			o.Logger = testLogger()
			c.mod(&o)
			co, err := New(o)
			if !errors.Is(err, c.want) {
				if co != nil {
					co.Close()
				}
				t.Fatalf("New: %v; want %v", err, c.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("data dir touched (%v)", err)
			}
		})
	}
}

func TestCloseTwiceAndRunAfterClose(t *testing.T) {
	o := LocalOptions(t.TempDir(), "redis://127.0.0.1:1/0", testSecret, testToken)
	o.Logger = testLogger()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	// The data dir is free again: a new coordinator opens it.
	c2, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
}

// A Run stopped as soon as it began returns: fasthttp's Shutdown closes only the listeners
// Serve has taken, so a Serve that had not started yet must find its listener closed too.
func TestStopAsRunBegins(t *testing.T) {
	for i := range 30 {
		o := LocalOptions(t.TempDir(), "redis://127.0.0.1:1/0", testSecret, testToken)
		o.Logger = testLogger()
		c, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Run goes straight from starting Serve to Close
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Run still running 20 s after it was stopped", i)
		}
	}
}
