package sim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"redrain/ledger"
	"redrain/rain"
)

// The journal model recovers what the real journal recovers from the same log bytes: commits
// of two rains with every outcome a crash can leave (the last frame lost, torn, or kept whole),
// then the model's log files written to disk beside a new bbolt file and opened with
// ledger.Open. Both must find the same records: same totals per rain, same packets in the
// same order, same users.
func TestJournalModelMatchesJournal(t *testing.T) {
	seen := map[commitOutcome]int{}
	for seed := uint64(1); seed <= 40; seed++ {
		r := rain.NewRand(seed)
		j := newJournal("n1", 7, 64<<10)
		if err := j.open(); err != nil {
			t.Fatal(err)
		}
		n := 1 + int(r.Uint64n(30))
		expect := 0 // records that must survive: every acknowledged commit, and a crashed one kept whole
		for i := range n {
			out := commitOK
			if i == n-1 {
				out = []commitOutcome{commitOK, commitCrashLost, commitCrashTorn, commitCrashKept}[r.Uint64n(4)]
				seen[out]++
			}
			recs := make([]ledger.Record, 1+r.Uint64n(5))
			for k := range recs {
				recs[k] = ledger.Record{Code: []string{"simA", "simB"}[r.Uint64n(2)], Slice: 1, Epoch: 1,
					Index: uint32(i*8 + k), User: 1 + r.Uint64n(9), Amount: 1 + int64(r.Uint64n(500)), UnixNano: int64(i)}
			}
			if out == commitOK || out == commitCrashKept {
				expect += len(recs)
			}
			if _, err := j.commit(recs, out, func(l int) int { return 1 + int(r.Uint64n(uint64(l-1))) }); (err == nil) != (out == commitOK) {
				t.Fatalf("seed %d commit %d (%v): %v", seed, i, out, err)
			}
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "journal.db")
		for i, w := range j.wal { // the real files are 1 MiB: the rest is zeros, as when preallocated
			file := append(slices.Clone(w.buf), make([]byte, 1<<20-len(w.buf))...)
			if err := os.WriteFile(path+".wal"+string(rune('0'+i)), file, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		real, err := ledger.Open(ledger.Options{Path: path, NodeID: "n1", WALSize: 1 << 20, Logger: quietLog})
		if err != nil {
			t.Fatalf("seed %d: the real journal does not open the model's log: %v", seed, err)
		}
		got, err := real.Recover()
		real.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := j.open(); err != nil {
			t.Fatalf("seed %d: the model does not reopen: %v", seed, err)
		}
		want, err := j.mem.Recover()
		if err != nil {
			t.Fatal(err)
		}
		if got.LastSeq != want.LastSeq || len(j.pub) != int(want.LastSeq) || len(j.pub) != expect {
			t.Fatalf("seed %d: last seq %d, model %d (%d records, want %d)", seed, got.LastSeq, want.LastSeq, len(j.pub), expect)
		}
		for _, code := range []string{"simA", "simB"} {
			if got.Totals[code] != want.Totals[code] {
				t.Fatalf("seed %d %s: totals %+v, model %+v", seed, code, got.Totals[code], want.Totals[code])
			}
			k := ledger.SliceKey{Code: code, Epoch: 1, Slice: 1}
			if !slices.Equal(got.Claimed[k], want.Claimed[k]) || !slices.Equal(got.Amounts[k], want.Amounts[k]) {
				t.Fatalf("seed %d %s: packets %v, model %v", seed, code, got.Claimed[k], want.Claimed[k])
			}
			for u, c := range want.Users[code] {
				if got.Users[code][u] != c {
					t.Fatalf("seed %d %s user %d: %d claims, model %d", seed, code, u, got.Users[code][u], c)
				}
			}
		}
	}
	if len(seen) != 4 {
		t.Fatalf("outcomes tried: %v, want all four", seen)
	}
}
