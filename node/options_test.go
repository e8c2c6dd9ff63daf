package node

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"redrain/ledger"
)

// New refuses a bad option or an address it cannot bind before it creates anything on disk.
func TestNewRefusesBeforeTheDisk(t *testing.T) {
	busyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyLn.Close()
	busy := busyLn.Addr().String()
	cases := []struct {
		name string
		mod  func(*Options)
		want error
	}{
		{"bad redis URL", func(o *Options) { o.RedisURL = "notaurl://x" }, ErrOptions},
		{"gossip not an address", func(o *Options) { o.GossipAddr = "nonsense" }, ErrOptions},
		{"join not an address", func(o *Options) { o.Join = []string{"a:1", "nonsense"} }, ErrOptions},
		{"http not an address", func(o *Options) { o.HTTPAddr = "nonsense" }, ErrListen},
		{"http port out of range", func(o *Options) { o.HTTPAddr = "127.0.0.1:99999" }, ErrListen},
		{"http port in use", func(o *Options) { o.HTTPAddr = busy }, ErrListen},
		{"gossip port in use", func(o *Options) { o.GossipAddr = busy }, ErrListen},
		{"no redis URL, none given", func(o *Options) { o.RedisURL = "" }, ErrOptions},
		{"redis URL and redis cluster", func(o *Options) { o.RedisCluster = []string{"127.0.0.1:1"} }, ErrOptions},
		{"bad redis cluster address", func(o *Options) { o.RedisURL, o.RedisCluster = "", []string{"127.0.0.1"} }, ErrOptions},
		{"a journal of another node", func(o *Options) { o.Journal = ledger.NewMemJournal("n2", 1) }, ErrOptions},
		{"max-subscribers negative", func(o *Options) { o.MaxSubscribers = -1 }, ErrOptions},
		{"max-subscribers too many", func(o *Options) { o.MaxSubscribers = MaxSubscribersLimit + 1 }, ErrOptions},
		{"max-subscribers-per-ip negative", func(o *Options) { o.MaxSubscribersPerIP = -1 }, ErrOptions},
		{"heartbeat under 1ms", func(o *Options) { o.Heartbeat = time.Microsecond }, ErrOptions},
		{"event-write-timeout negative", func(o *Options) { o.EventWriteTimeout = -time.Second }, ErrOptions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			o := LocalOptions("n1", data, "redis://127.0.0.1:1/0", testSecret)
			o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			c.mod(&o)
			n, err := New(o)
			if !errors.Is(err, c.want) {
				if n != nil {
					n.Close()
				}
				t.Fatalf("New: %v; want %v", err, c.want)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("data dir touched (%v)", err)
			}
		})
	}
}

// With Options.Redis, Cluster and Journal a node needs no RedisURL, DataDir or gossip address
// of its own, and binds no gossip port.
func TestNewFromFakesNeedsNoURLOrDir(t *testing.T) {
	o := LocalOptions("n1", "", "", testSecret)
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Redis, o.Cluster, o.Journal = ledger.NewMemRedis(), LoneCluster{}, ledger.NewMemJournal("n1", 1)
	n, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer n.Close()
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if n.GossipAddr() != "" || n.Incarnation() != 1 {
		t.Fatalf("gossip address %q, incarnation %x", n.GossipAddr(), n.Incarnation())
	}
}
