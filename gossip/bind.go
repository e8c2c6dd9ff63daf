package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// ErrBind is wrapped by the error of Bind (and New) when the gossip address cannot be bound:
// the port is in use, or the host is not an address of this machine.
var ErrBind = errors.New("gossip: cannot bind the gossip address")

// Bound is a member whose gossip address is bound (TCP and UDP, one port) but which has not
// started gossiping. Get one from Bind; then Start it, or Close it.
type Bound struct {
	opts Options // validated
	nt   *memberlist.NetTransport
	port int // the port bound (picked by the kernel when BindAddr's port is 0)

	mu   sync.Mutex
	used bool // Start or Close was called: the socket is no longer ours to hand out
}

// Bind validates opts and binds opts.BindAddr, without joining or gossiping, so that a caller
// learns of a bad option (ErrOptions, ErrNoSecret, ErrMetaTooLarge) or an unusable address
// (ErrBind) before it acquires anything else. Until Start nothing reads what peers send: it
// waits in the sockets' buffers (UDP beyond them is dropped, as on any loaded member).
func Bind(opts Options) (*Bound, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitHostPort(opts.BindAddr) // validated
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{host},
		BindPort:  port,
		Logger:    newMemberlistLogger(opts.Logger.With("id", opts.Meta.ID)),
	}
	// With port 0 the kernel picks the TCP port, and UDP may find it taken: memberlist retries
	// the same way when it binds for itself.
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			return &Bound{opts: opts, nt: nt, port: nt.GetAutoBindPort()}, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("%w %s: %v", ErrBind, opts.BindAddr, err)
}

// Addr is the bound host:port (with port 0 in BindAddr, the port picked).
func (b *Bound) Addr() string {
	host, _, _ := splitHostPort(b.opts.BindAddr)
	return net.JoinHostPort(host, strconv.Itoa(b.port))
}

// Start starts gossiping on the bound address (see New). It may be called once; from then on
// the socket belongs to the Cluster (or, if Start fails, is released).
func (b *Bound) Start() (*Cluster, error) {
	if !b.take() {
		return nil, fmt.Errorf("%w: Start of a Bound already started or closed", ErrClosed)
	}
	c, err := launch(b.opts, b.nt, b.port)
	if err != nil {
		release(b.nt)
	}
	return c, err
}

// Close releases the address of a Bound that was not started; after Start it does nothing.
// Safe to call more than once.
func (b *Bound) Close() error {
	if b.take() {
		release(b.nt)
	}
	return nil
}

// take reports whether the caller is the first to use b's socket.
func (b *Bound) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used {
		return false
	}
	b.used = true
	return true
}

// release shuts down a transport that memberlist may never have read from. Its listener
// goroutines hand each packet and connection over an unbuffered channel, so one that received
// something would block Shutdown forever: drain the channels until Shutdown returns. (After a
// memberlist shutdown the transport is already down and this returns at once.)
func release(nt *memberlist.NetTransport) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-nt.PacketCh():
			case conn := <-nt.StreamCh():
				_ = conn.Close()
			case <-done:
				return
			}
		}
	}()
	_ = nt.Shutdown()
	close(done)
}
