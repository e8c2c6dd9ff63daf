package ledger

import (
	"bytes"
	"testing"
)

// AppendWALFrame writes the journal's frame (frameOf builds it the way commit does), and
// ReadWAL reads what readWAL reads: here two frames, then a torn third that is not returned.
func TestAppendWALFrameReadWAL(t *testing.T) {
	recs := func(first, n int) []Record {
		var out []Record
		for i := range n {
			out = append(out, claim("r", first+i))
		}
		return out
	}
	two := recs(1, 2)
	a := AppendWALFrame(nil, 3, 1, two)
	want := frameHeader(nil, 3, 1) // as the journal's commit builds it
	for _, r := range two {
		want = appendWALRecord(want, r)
	}
	finishFrame(want, len(two))
	if !bytes.Equal(a, want) {
		t.Fatalf("AppendWALFrame differs from the journal's frame:\n got %x\nwant %x", a, want)
	}
	if WALFrameSize(two) != len(a) {
		t.Fatalf("WALFrameSize %d, frame is %d bytes", WALFrameSize(two), len(a))
	}
	all := append(two, recs(3, 3)...)
	file := AppendWALFrame(a, 3, 3, all[2:3])
	good := len(file)
	file = AppendWALFrame(file, 3, 4, all[3:])
	file = file[:len(file)-7] // torn
	file = append(file, make([]byte, 64)...)
	got, gen, end, err := ReadWAL(bytes.NewReader(file), int64(len(file)))
	if err != nil || gen != 3 || end != int64(good) || len(got) != 3 {
		t.Fatalf("ReadWAL: %d records gen %d end %d err %v; want 3, 3, %d, nil", len(got), gen, end, err, good)
	}
	for i, r := range got {
		if want := all[i]; r.Seq != uint64(i+1) || r.Rec != want {
			t.Fatalf("record %d: seq %d %+v, want seq %d %+v", i, r.Seq, r.Rec, i+1, want)
		}
	}
}
