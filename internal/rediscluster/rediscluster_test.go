package rediscluster

import "testing"

func TestParseShard(t *testing.T) {
	nodes := `a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b1 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922 12000
c1 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-11999 12001-16383
a2 127.0.0.1:7004@17004 slave a1 0 0 1 connected
b2 127.0.0.1:7005@17005 slave b1 0 0 2 connected
c2 127.0.0.1:7006@17006 slave c1 0 0 3 connected
`
	for _, tc := range []struct {
		slot    int
		master  string
		replica string
	}{{0, "127.0.0.1:7001", "127.0.0.1:7004"}, {5461, "127.0.0.1:7002", "127.0.0.1:7005"},
		{12000, "127.0.0.1:7002", "127.0.0.1:7005"}, {5460, "127.0.0.1:7001", "127.0.0.1:7004"}} {
		sh, err := parseShard(nodes, tc.slot)
		if err != nil || sh.Master != tc.master || len(sh.Replicas) != 1 || sh.Replicas[0] != tc.replica {
			t.Errorf("slot %d: %+v, %v", tc.slot, sh, err)
		}
	}
	if sh, err := parseShard(nodes, 11000); err == nil { // its master failed: nobody serves it
		t.Errorf("slot of a failed master: %+v", sh)
	}
}
