package gossip

import (
	"testing"

	"github.com/hashicorp/memberlist"
)

// Both timings gossip uncompressed (see memberlistConfig): memberlist's default compresses.
func TestNoCompression(t *testing.T) {
	if !memberlist.DefaultLANConfig().EnableCompression {
		t.Fatal("memberlist's default changed: this test no longer tells anything")
	}
	for _, o := range []Options{DefaultOptions(), LocalOptions()} {
		o.Meta, o.Secret, o.Logger = Meta{ID: "a", Role: RoleNode}, testSecret, testLogger()
		if err := o.validate(); err != nil {
			t.Fatal(err)
		}
		if cfg := o.memberlistConfig(nil, 7946); cfg.EnableCompression {
			t.Errorf("fast=%v: EnableCompression is on", o.Fast)
		}
	}
}
