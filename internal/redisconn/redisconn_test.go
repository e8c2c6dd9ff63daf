package redisconn

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		url   string
		addrs []string
		want  error // nil: accepted; errAny: some error
	}{
		{"redis://127.0.0.1:6379/0", nil, nil},
		{"", []string{"127.0.0.1:7000", "127.0.0.1:7001"}, nil},
		{"", []string{"[::1]:7000", "redis-0.redis:6379"}, nil},
		{"", nil, ErrNone},
		{"redis://127.0.0.1:6379/0", []string{"127.0.0.1:7000"}, ErrBoth},
		{"notaurl://x", nil, errAny},
		{"", []string{"127.0.0.1"}, ErrAddr},
		{"", []string{"127.0.0.1:0"}, ErrAddr},
		{"", []string{"127.0.0.1:65536"}, ErrAddr},
		{"", []string{"127.0.0.1:+80"}, ErrAddr},
		{"", []string{"127.0.0.1:080"}, ErrAddr},
		{"", []string{":7000"}, ErrAddr},
		{"", []string{"a b:7000"}, ErrAddr},
		{"", []string{"redis://h:7000"}, ErrAddr},
		{"", []string{"127.0.0.1:7000", "127.0.0.1:7000"}, ErrAddr},
		{"", make([]string, MaxClusterAddrs+1), ErrAddr},
	} {
		err := Check(tc.url, tc.addrs)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("Check(%q, %q) = %v, want nil", tc.url, tc.addrs, err)
		case tc.want == errAny && err == nil, tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
			t.Errorf("Check(%q, %q) = %v, want %v", tc.url, tc.addrs, err, tc.want)
		}
	}
}

var errAny = errors.New("any error")

func TestParseAddrs(t *testing.T) {
	got, err := ParseAddrs(" 127.0.0.1:7000, 127.0.0.1:7001 ,,")
	if err != nil || strings.Join(got, "|") != "127.0.0.1:7000|127.0.0.1:7001" {
		t.Fatalf("ParseAddrs = %q, %v", got, err)
	}
	if got, err := ParseAddrs(" , "); got != nil || err != nil {
		t.Fatalf("ParseAddrs of nothing = %q, %v; want no address, no error", got, err)
	}
	if _, err := ParseAddrs("127.0.0.1:7000,127.0.0.1"); !errors.Is(err, ErrAddr) {
		t.Fatalf("a bad item: %v", err)
	}
}

// Open gives a cluster client for addresses and a single client for a URL, reading from
// masters only; it panics on what Check refuses.
func TestOpen(t *testing.T) {
	c := Open("", []string{"127.0.0.1:1"})
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("Open with addresses = %T, want *redis.ClusterClient", c)
	}
	if o := cc.Options(); o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
		t.Errorf("cluster client may read from replicas: %+v", o)
	}
	cc.Close()
	s := Open("redis://127.0.0.1:1/3", nil)
	if sc, ok := s.(*redis.Client); !ok || sc.Options().DB != 3 {
		t.Fatalf("Open with a URL = %T", s)
	}
	s.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("Open with both did not panic")
		}
	}()
	Open("redis://127.0.0.1:1/0", []string{"127.0.0.1:1"})
}

// Nothing is dialled by Open: a client of a closed port fails on its first command, not before.
func TestOpenDialsNothing(t *testing.T) {
	c := Open("", []string{"127.0.0.1:1"})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
}

// FuzzParseAddrs: whatever the input, ParseAddrs either refuses it or returns addresses that
// each pass CheckAddr, and joining them reads back the same list.
func FuzzParseAddrs(f *testing.F) {
	for _, s := range []string{"127.0.0.1:7000,127.0.0.1:7001", " a:1 , b:2 ", "[::1]:7000", "a:0", "a:1,a:1",
		"", ",", "a", ":1", "[::1:7000", "a:99999", "a b:1", "h:01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAddrs(s)
		if err != nil {
			if got != nil {
				t.Fatalf("ParseAddrs(%q) = %q and %v", s, got, err)
			}
			return
		}
		for _, a := range got {
			if CheckAddr(a) != nil || strings.TrimSpace(a) != a || strings.Contains(a, ",") {
				t.Fatalf("ParseAddrs(%q) returned %q", s, a)
			}
		}
		again, err := ParseAddrs(strings.Join(got, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(got, ",") {
			t.Fatalf("ParseAddrs(%q) = %q, read back %q, %v", s, got, again, err)
		}
	})
}

type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}

// A failed command asks for a slot-map reload unless the server answered about the data.
func TestTopologyError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{redis.Nil, false},
		{serverError("NOSCRIPT No matching script"), false},
		{serverError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{serverError("ERR redrain: key x is a string, want hash"), false},
		{serverError("CLUSTERDOWN The cluster is down"), true},
		{serverError("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{serverError("READONLY You can't write against a read only replica."), true},
		{serverError("MOVED 3999 127.0.0.1:6381"), true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{context.DeadlineExceeded, true},
	} {
		if got := topologyError(tc.err); got != tc.want {
			t.Errorf("topologyError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
