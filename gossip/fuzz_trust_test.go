package gossip

import (
	"encoding/json"
	"net"
	"strconv"
	"testing"

	"github.com/hashicorp/memberlist"
)

// FuzzMemberMeta: whatever metadata a member announces (memberlist hands it over as bytes),
// reading it never panics, the member keeps its memberlist name and address, its role and
// HTTP address are the announced ones when the metadata decodes, and a member marked leaving
// is never reported alive.
func FuzzMemberMeta(f *testing.F) {
	f.Add("n1", Meta{ID: "n1", Role: RoleNode, HTTPAddr: "127.0.0.1:8080"}.encode(false), false, []byte{127, 0, 0, 1}, uint16(7946))
	f.Add("n1", Meta{ID: "n1", Role: RoleNode}.encode(true), true, []byte{127, 0, 0, 1}, uint16(0))
	f.Add("coordinator", []byte(`{"id":"x","role":"coordinator","leaving":"yes"}`), false, []byte(net.ParseIP("::1")), uint16(1))
	f.Add("", []byte(`{"role":1}`), false, []byte{}, uint16(65535))
	f.Add("n\x00", []byte(`null`), true, []byte{1, 2, 3}, uint16(7))
	f.Add("n2", []byte{}, false, []byte{10, 0, 0, 2}, uint16(7946))
	f.Fuzz(func(t *testing.T, name string, meta []byte, gone bool, ip []byte, port uint16) {
		if len(meta) > memberlist.MetaMaxSize {
			return // memberlist refuses larger metadata before it reaches us
		}
		n := &memberlist.Node{Name: name, Addr: net.IP(ip), Port: port, Meta: meta}
		m, err := memberOf(n, gone)
		if m.ID != name || m.GossipAddr != net.JoinHostPort(net.IP(ip).String(), strconv.Itoa(int(port))) {
			t.Fatalf("member %+v from node %q %v:%d", m, name, ip, port)
		}
		var w metaWire
		if decodeErr := json.Unmarshal(meta, &w); (decodeErr == nil) != (err == nil) {
			t.Fatalf("meta %q: memberOf error %v, decode error %v", meta, err, decodeErr)
		}
		if err == nil && (m.Role != w.Role || m.HTTPAddr != w.HTTPAddr) {
			t.Fatalf("meta %q read as %+v", meta, m)
		}
		switch {
		case err == nil && w.Leaving && m.State != StateLeft:
			t.Fatalf("leaving member reported %s", m.State)
		case gone && m.State == StateAlive:
			t.Fatalf("gone member reported alive")
		}
	})
}
