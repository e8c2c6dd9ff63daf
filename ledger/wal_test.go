package ledger

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// frameOf builds one frame of generation gen holding n test records from seq first.
func frameOf(gen, first uint64, n int) []byte {
	f := frameHeader(nil, gen, first)
	for i := range n {
		f = appendWALRecord(f, claim("r", int(first)+i))
	}
	finishFrame(f, n)
	return f
}

func seqsOf(recs []walRecord) (out []uint64) {
	for _, r := range recs {
		out = append(out, r.seq)
	}
	return out
}

// readWAL stops at a torn frame, at zeros, and at a frame of an older generation left behind
// the new generation's tail.
func TestReadWAL(t *testing.T) {
	old := append(frameOf(5, 1, 3), frameOf(5, 4, 3)...)
	same := frameOf(7, 10, 3) // as long as old's first frame: old's second frame follows it
	short := frameOf(7, 20, 1)
	torn := append(frameOf(7, 30, 2), frameOf(7, 32, 2)...)
	torn[len(torn)-10] ^= 0xff
	for _, tc := range []struct {
		name string
		file []byte
		want []uint64
		gen  uint64
	}{
		{"two frames then zeros", append(append([]byte{}, old...), make([]byte, 100)...), []uint64{1, 2, 3, 4, 5, 6}, 5},
		{"new generation over an old frame of the same length", append(append([]byte{}, same...), old[len(same):]...), []uint64{10, 11, 12}, 7},
		{"new generation shorter than the old frame", append(append([]byte{}, short...), old[len(short):]...), []uint64{20}, 7},
		{"torn last frame", torn, []uint64{30, 31}, 7},
		{"empty", make([]byte, 64), nil, 0},
		{"cut header", old[:10], nil, 0},
	} {
		recs, gen, end, err := readWAL(bytes.NewReader(tc.file), int64(len(tc.file)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := seqsOf(recs); !equalSeqs(got, tc.want) || (len(tc.want) > 0 && gen != tc.gen) {
			t.Errorf("%s: seqs %v gen %d, want %v gen %d", tc.name, got, gen, tc.want, tc.gen)
		}
		if len(tc.want) > 0 {
			got, want := recs[0].rec, claim("r", int(tc.want[0]))
			got.UnixNano, want.UnixNano = 0, 0
			if got != want {
				t.Errorf("%s: first record %+v, want %+v", tc.name, got, want)
			}
		}
		if end < 0 || end > int64(len(tc.file)) {
			t.Errorf("%s: end %d", tc.name, end)
		}
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A crash image whose last log frame is torn: the reopened journal holds every record before it
// and none of it, and numbers the next record where the torn frame began.
func TestWALTornTailRecovered(t *testing.T) {
	o := testOptions(t, "n1")
	o.MaxBatch, o.ApplyEvery, o.ApplyRecords = 10, time.Hour, 1<<30 // everything stays in the log
	j := openJournal(t, o)
	appendN(t, j, "r", 0, 100, 1) // one appender: frames of 1 record each
	if j.applied.Load() != 0 {
		t.Fatalf("the applier ran: %d applied", j.applied.Load())
	}
	img := crashImage(t, o.Path)
	wal0 := img + ".wal0"
	b, err := os.ReadFile(wal0)
	if err != nil {
		t.Fatal(err)
	}
	end := j.wal[0].off
	b[end-5] ^= 0xff // inside the last frame
	if err := os.WriteFile(wal0, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Path = img
	j2 := openJournal(t, o2)
	if tot, _ := j2.Totals("r"); tot.Count != 99 || j2.LastSeq() != 99 {
		t.Fatalf("after a torn tail: %+v, last %d; want 99 records", tot, j2.LastSeq())
	}
	if seq, err := j2.Append(claim("r", 500)); err != nil || seq != 100 {
		t.Fatalf("next append %d, %v; want 100", seq, err)
	}
	n := 0
	if err := j2.Scan("r", 0, 0, func(seq uint64, r Record) bool { n++; return true }); err != nil || n != 100 {
		t.Fatalf("scan: %d records, %v", n, err)
	}
}

// crashImage copies the journal's files (bbolt and both logs) as a crash would leave them: the
// journal stays open and nothing is applied or closed first. The copy is in a new directory.
func crashImage(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	for _, suffix := range []string{"", ".wal0", ".wal1"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "j.db"+suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "j.db")
}

// Metadata written after claims that are still only in the log is ordered after them: a DropRain
// (which moves the log into bbolt in its own transaction) never loses or resurrects a record.
func TestWALAppliedBeforeMetadata(t *testing.T) {
	o := testOptions(t, "n1")
	o.ApplyEvery, o.ApplyRecords = time.Hour, 1<<30
	j := openJournal(t, o)
	appendN(t, j, "keep", 0, 20, 2)
	appendN(t, j, "gone", 0, 10, 2)
	if err := j.DropRain(RainMeta{Code: "gone", Settled: true}); err != nil {
		t.Fatal(err)
	}
	if j.applied.Load() != 30 {
		t.Fatalf("DropRain did not apply the log first: applied %d", j.applied.Load())
	}
	img := crashImage(t, o.Path)
	o2 := o
	o2.Path = img
	j2 := openJournal(t, o2)
	if _, ok := j2.Totals("gone"); ok {
		t.Fatal("a dropped rain came back from the log")
	}
	if tot, _ := j2.Totals("keep"); tot.Count != 20 || j2.LastSeq() != 30 {
		t.Fatalf("keep %+v last %d", tot, j2.LastSeq())
	}
}

func FuzzReadWAL(f *testing.F) {
	f.Add(frameOf(1, 1, 2))
	f.Add(append(frameOf(3, 5, 1), frameOf(3, 6, 2)...))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _, end, err := readWAL(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return // a frame whose checksum held but whose payload does not decode
		}
		if end > int64(len(b)) || (len(recs) == 0 && end != 0 && end < walHeaderSize) {
			t.Fatalf("end %d of %d bytes, %d records", end, len(b), len(recs))
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].seq == 0 {
				t.Fatalf("record %d has seq 0", i)
			}
		}
	})
}
