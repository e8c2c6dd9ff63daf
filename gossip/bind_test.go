package gossip

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An address in use is ErrBind, naming the address; a bad option is refused before binding.
func TestBindRefusesAnAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	o := testOptions("n1", RoleNode)
	o.BindAddr = busy.Addr().String()
	b, err := Bind(o)
	if !errors.Is(err, ErrBind) || !strings.Contains(err.Error(), o.BindAddr) {
		t.Fatalf("Bind on %s in use: %v, %v; want ErrBind naming the address", o.BindAddr, b, err)
	}
	if _, err := New(o); !errors.Is(err, ErrBind) {
		t.Fatalf("New on %s in use: %v; want ErrBind", o.BindAddr, err)
	}
	o.Join = []string{"nonsense"}
	if _, err := Bind(o); !errors.Is(err, ErrOptions) {
		t.Fatalf("Bind with a bad join address: %v; want ErrOptions before the bind", err)
	}
}

// A Bound started later gossips on the address it bound; peers join it there.
func TestBindThenStart(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	o := testOptions("n1", RoleNode, a.GossipAddr())
	b, err := Bind(o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr %s: want the port picked", b.Addr())
	}
	c, err := b.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	if c.GossipAddr() != b.Addr() {
		t.Fatalf("gossiping on %s, bound %s", c.GossipAddr(), b.Addr())
	}
	allSeeAlive(t, a, &testMember{Cluster: c, rec: newRecorder()})
	if err := b.Close(); err != nil {
		t.Fatalf("Close after Start: %v", err)
	}
	if _, err := b.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Start: %v; want ErrClosed", err)
	}
	if m, ok := a.Member("n1"); !ok || m.State != StateAlive {
		t.Fatalf("Close after Start stopped the member: %+v", m)
	}
}

// Close releases the address of a Bound never started, even after peers sent to it (nothing
// reads what they sent), and a Start after Close is refused.
func TestCloseOfAnUnstartedBound(t *testing.T) {
	o := testOptions("n1", RoleNode)
	b, err := Bind(o)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.Dial("udp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for range 3 {
		if _, err := udp.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
	}
	tcp, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(settle):
		t.Fatalf("Close of an unstarted Bound hangs after peers sent to it")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Start(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v; want ErrClosed", err)
	}
	_, port, _ := net.SplitHostPort(b.Addr())
	o.BindAddr = "127.0.0.1:" + port
	again, err := Bind(o)
	if err != nil {
		t.Fatalf("the address is still held after Close: %v", err)
	}
	again.Close()
	if p, _ := strconv.Atoi(port); p == 0 {
		t.Fatalf("Addr %s: want the port picked", b.Addr())
	}
}

// A member bound to every interface advertises the address given, with the port it bound when
// AdvertiseAddr's port is 0 (a pod knows its IP, not the port a test picks); peers join and see
// it there.
func TestAdvertiseAddrPortZeroIsTheBoundPort(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	o := testOptions("n1", RoleNode, a.GossipAddr())
	o.BindAddr, o.AdvertiseAddr = "0.0.0.0:0", "127.0.0.1:0"
	b, err := Bind(o)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(b.Addr())
	c, err := b.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown() })
	if want := net.JoinHostPort("127.0.0.1", port); c.GossipAddr() != want || port == "0" {
		t.Fatalf("GossipAddr %s: want %s (the advertised host, the bound port)", c.GossipAddr(), want)
	}
	allSeeAlive(t, a, &testMember{Cluster: c, rec: newRecorder()})
	if m, _ := a.Member("n1"); m.GossipAddr != c.GossipAddr() {
		t.Fatalf("the coordinator sees n1 at %s, n1 advertises %s", m.GossipAddr, c.GossipAddr())
	}
}
