package proc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Ports handed to children are drawn below the kernel's ephemeral range when there is room.
// A port from ":0" is ephemeral: between our probe and the child's bind, the kernel may give
// it to any outgoing connection as its local port (a Redis client, a gossip dial), and the
// child then fails with "address already in use". Below the range only an explicit bind can
// take it.
const lowestPort = 10000

var (
	portOnce sync.Once
	portLo   int          // first port of the draw
	portN    int          // ports in the draw; 0: fall back to ephemeral ports
	portNext atomic.Int64 // next offset: a process never draws a port twice before wrapping
)

// ephemeralRange reads ip_local_port_range (Linux); ok is false elsewhere.
func ephemeralRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

func initPorts() {
	lo, _, ok := ephemeralRange()
	if !ok || lo-lowestPort < 1000 {
		return
	}
	portLo, portN = lowestPort, lo-lowestPort
	portNext.Store(rand.Int64N(int64(portN))) // other processes drawing at once start elsewhere
}

// FreePort returns a port free for both TCP and UDP on 127.0.0.1 a moment ago (gossip uses
// both), outside the ephemeral range where the system has one below it.
func FreePort() (int, error) {
	portOnce.Do(initPorts)
	for i := 0; portN > 0 && i < 200; i++ {
		p := portLo + int(portNext.Add(1)%int64(portN))
		if free(p) {
			return p, nil
		}
	}
	for range 20 { // no room below the ephemeral range (or all taken): the kernel's pick
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		ok := freeUDP(p)
		l.Close()
		if ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("proc: no port free for both TCP and UDP on 127.0.0.1")
}

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr() (string, error) {
	p, err := FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

func free(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	defer l.Close()
	return freeUDP(port)
}

func freeUDP(port int) bool {
	u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	u.Close()
	return true
}
