package proc

import (
	"net"
	"strconv"
	"testing"
)

// Ports come from below the ephemeral range (where it leaves room), are never drawn twice by
// one process, and can be bound for TCP and UDP.
func TestFreePort(t *testing.T) {
	lo, _, ok := ephemeralRange()
	below := ok && lo-lowestPort >= 1000
	seen := map[int]bool{}
	for range 200 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d drawn twice", p)
		}
		seen[p] = true
		if below && (p < lowestPort || p >= lo) {
			t.Fatalf("port %d is not in [%d, %d), below the ephemeral range", p, lowestPort, lo)
		}
	}
	a, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatalf("TCP bind of %s: %v", a, err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(a)
	u, err := net.ListenPacket("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("UDP bind of %s: %v", a, err)
	}
	u.Close()
	if n, _ := strconv.Atoi(port); seen[n] {
		t.Fatalf("FreeAddr repeated port %s", port)
	}
	t.Logf("ephemeral range starts at %d; drew 200 ports below it", lo)
}
