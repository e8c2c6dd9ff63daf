package gossip

import (
	"testing"
	"time"
)

// FuzzDecodeNewsMsg: whatever arrives by broadcast, decoding never panics and yields only valid
// news that round-trips.
func FuzzDecodeNewsMsg(f *testing.F) {
	f.Add(encodeNewsMsg(News{Code: "c", Kind: KindStarted, Epoch: 1, StartsAt: 1, EndsAt: 2, Version: 1}))
	f.Add([]byte("\x01{}"))
	f.Add([]byte("\x01{\"code\":\"c\",\"kind\":\"stopped\",\"version\":18446744073709551615}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		n, ok := decodeNewsMsg(buf)
		if !ok {
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("decoded invalid news %+v: %v", n, err)
		}
		if again, ok := decodeNewsMsg(encodeNewsMsg(n)); !ok || again != n {
			t.Fatalf("round trip: %+v -> %+v %v", n, again, ok)
		}
	})
}

// FuzzMergeRemoteState: whatever a peer pushes, merging never panics, keeps only valid news filed
// under its own code, and never lowers a version.
func FuzzMergeRemoteState(f *testing.F) {
	f.Add([]byte(`{"news":{"c":{"code":"c","kind":"started","version":2}}}`))
	f.Add([]byte(`{"news":{"c":{"code":"d","kind":"started","version":2}}}`))
	f.Add([]byte(`{"news":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, buf []byte) {
		s := newNewsStore(4, time.Hour)
		known := News{Code: "c", Kind: KindStopped, Version: 5}
		s.offer(known, time.Now())
		for _, n := range decodeState(buf) {
			s.offer(n, time.Now())
		}
		for code, n := range s.byCode {
			if code != n.Code || n.Validate() != nil {
				t.Fatalf("kept %q -> %+v", code, n)
			}
		}
		if got, ok := s.byCode["c"]; ok && got.Version < known.Version {
			t.Fatalf("version lowered: %+v", got)
		}
		if len(s.byCode) > 4 {
			t.Fatalf("store over its bound: %d", len(s.byCode))
		}
	})
}
