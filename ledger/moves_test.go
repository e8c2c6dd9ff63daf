package ledger

import (
	"context"
	"reflect"
	"testing"

	"redrain/internal/testredis"
)

// TestRecordMoves stores move totals in a real Redis and in MemRedis: figures only rise, and
// ReadNodes reads them back per peer beside the claims.
func TestRecordMoves(t *testing.T) {
	ctx := context.Background()
	srv := testredis.New(t)
	real := NewRedisClient(srv.Client())
	mem := NewMemRedis()
	for name, r := range map[string]interface {
		RecordMoves(context.Context, string, string, []MoveTotal, []MoveTotal) error
	}{"redis": real, "mem": mem} {
		in := []MoveTotal{{Peer: "n2", Count: 10, Amount: 100}}
		out := []MoveTotal{{Peer: "n3", Count: 5, Amount: 40}}
		if err := r.RecordMoves(ctx, "r", "n1", in, out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// A late write of older, smaller figures does not lower them.
		if err := r.RecordMoves(ctx, "r", "n1", []MoveTotal{{Peer: "n2", Count: 3, Amount: 30}}, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := r.RecordMoves(ctx, "r", "n1", nil, []MoveTotal{{Peer: "a.b", Count: 1, Amount: 1}}); err == nil {
			t.Fatalf("%s: a peer id with a dot was accepted", name)
		}
		var nodes map[string]NodeTotals
		var err error
		if name == "redis" {
			nodes, err = ReadNodes(ctx, srv.Client(), "r")
		} else {
			nodes, err = mem.ReadNodes(ctx, "r")
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := NodeTotals{MovedIn: in, MovedOut: out}
		if got := nodes["n1"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: ReadNodes n1 = %+v, want %+v", name, got, want)
		}
	}
}
