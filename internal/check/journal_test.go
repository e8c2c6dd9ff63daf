package check

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"redrain/ledger"
	"redrain/rain"
)

// twoSlices is a rain's two slices, held by n1 and n2.
func twoSlices(t *testing.T) ([]rain.Slice, []rain.Amounts) {
	t.Helper()
	ss := []rain.Slice{
		{Code: "r", ID: 0, Epoch: 3, Node: "n1", Count: 40, Amount: 1000, Seed: 11, Algorithm: rain.DoubleAverage},
		{Code: "r", ID: 1, Epoch: 3, Node: "n2", Count: 40, Amount: 1000, Seed: 12, Algorithm: rain.DoubleAverage},
	}
	var as []rain.Amounts
	for _, s := range ss {
		a, err := rain.Generate(s)
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	return ss, as
}

// claim journals packets idx of slice s (amounts a) in j.
func claim(j *Journal, s rain.Slice, a rain.Amounts, idx ...uint32) {
	k := ledger.SliceKey{Code: s.Code, Epoch: s.Epoch, Slice: s.ID}
	for _, i := range idx {
		j.Claimed[k] = append(j.Claimed[k], i)
		j.Amounts[k] = append(j.Amounts[k], a.At(int(i)))
	}
}

// honestJournals: n1 paid packets 0..9 of its slice, n2 paid 0..9 of its own and, as a stock
// move's receiver would, packets 30..39 of n1's slice, whose descriptor only n1 holds.
func honestJournals(t *testing.T) ([]*Journal, []rain.Slice, []rain.Amounts) {
	ss, as := twoSlices(t)
	n1 := &Journal{Node: "n1", Slices: ss[:1], Claimed: map[ledger.SliceKey][]uint32{}, Amounts: map[ledger.SliceKey][]int64{}}
	n2 := &Journal{Node: "n2", Slices: ss[1:], Claimed: map[ledger.SliceKey][]uint32{}, Amounts: map[ledger.SliceKey][]int64{}}
	for i := uint32(0); i < 10; i++ {
		claim(n1, ss[0], as[0], i)
		claim(n2, ss[1], as[1], i)
		claim(n2, ss[0], as[0], 30+i)
	}
	return []*Journal{n1, n2}, ss, as
}

func TestCheckJournalsHonest(t *testing.T) {
	js, _, _ := honestJournals(t)
	v := &Verdict{}
	if CheckJournals(v, js); len(v.Violations) != 0 {
		t.Fatalf("honest journals: %q", v.Violations)
	}
	if n, _ := js[1].Totals(); n != 20 {
		t.Fatalf("n2 totals %d, want 20", n)
	}
}

// CheckJournals catches each way journals can pay a packet twice or pay a wrong amount.
func TestCheckJournalsCatchesSpoiledJournals(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(js []*Journal, ss []rain.Slice, as []rain.Amounts)
		want  string
	}{
		{"a packet twice in one journal", func(js []*Journal, ss []rain.Slice, as []rain.Amounts) {
			claim(js[0], ss[0], as[0], 4)
		}, "packet 4 of slice 3/0 journaled twice (paid twice): by [n1 n1]"},
		{"a packet on two nodes", func(js []*Journal, ss []rain.Slice, as []rain.Amounts) {
			claim(js[0], ss[0], as[0], 35)
		}, "packet 35 of slice 3/0 journaled twice (paid twice): by [n1 n2]"},
		{"a wrong amount", func(js []*Journal, ss []rain.Slice, _ []rain.Amounts) {
			k := ledger.SliceKey{Code: "r", Epoch: 3, Slice: 0}
			js[1].Amounts[k][2]++
		}, "n2 journaled packet 32 of slice 3/0 as"},
		{"an index past the slice", func(js []*Journal, ss []rain.Slice, _ []rain.Amounts) {
			k := ledger.SliceKey{Code: "r", Epoch: 3, Slice: 1}
			js[1].Claimed[k] = append(js[1].Claimed[k], 40)
			js[1].Amounts[k] = append(js[1].Amounts[k], 1)
		}, "n2 journaled packet 40 of slice 3/1, which has 40 packets"},
		{"a slice no journal holds", func(js []*Journal, ss []rain.Slice, as []rain.Amounts) {
			js[1].Slices = nil
		}, "slice 3/1: 10 packet(s) journaled (by [n2]), but no journal holds the slice"},
		{"a packet twice in a slice no journal holds", func(js []*Journal, ss []rain.Slice, as []rain.Amounts) {
			js[1].Slices = nil
			claim(js[0], ss[1], as[1], 7)
		}, "packet 7 of slice 3/1 journaled twice (paid twice): by [n1 n2]"},
		{"two descriptors under one slice id", func(js []*Journal, ss []rain.Slice, _ []rain.Amounts) {
			other := ss[0]
			other.Seed++
			js[1].Slices = append(js[1].Slices, other)
		}, "slice 3/0: n1 holds"},
		{"indices and amounts of different lengths", func(js []*Journal, _ []rain.Slice, _ []rain.Amounts) {
			k := ledger.SliceKey{Code: "r", Epoch: 3, Slice: 1}
			js[1].Amounts[k] = js[1].Amounts[k][1:]
		}, "n2: slice 3/1 has 10 indices and 9 amounts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			js, ss, as := honestJournals(t)
			c.spoil(js, ss, as)
			v := &Verdict{}
			CheckJournals(v, js)
			if !strings.Contains(strings.Join(v.Violations, "\n"), c.want) {
				t.Fatalf("want a violation containing %q, got %q", c.want, v.Violations)
			}
		})
	}
}

// ReadJournal reads a real journal file (bbolt and its write-ahead log) as the node left it,
// keeping only the rain asked for; a missing file or a running node's locked file is an error.
func TestReadJournal(t *testing.T) {
	ss, as := twoSlices(t)
	path := filepath.Join(t.TempDir(), "n1", "journal.db")
	lj, err := ledger.Open(ledger.DefaultOptions(path, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	other := rain.Slice{Code: "other", ID: 0, Epoch: 1, Node: "n1", Count: 5, Amount: 50, Seed: 1, Algorithm: rain.Equal}
	for _, s := range []rain.Slice{ss[0], other} {
		if err := lj.PutSlice(s); err != nil {
			t.Fatal(err)
		}
	}
	for i := uint32(0); i < 5; i++ {
		for _, r := range []ledger.Record{
			{Code: "r", Epoch: 3, Slice: 0, Index: i, User: 7, Amount: as[0].At(int(i)), UnixNano: 1},
			{Code: "r", Epoch: 3, Slice: 1, Index: 20 + i, User: 8, Amount: as[1].At(20 + int(i)), UnixNano: 1}, // moved in
			{Code: "other", Epoch: 1, Slice: 0, Index: i, User: 7, Amount: 10, UnixNano: 1},
		} {
			if _, err := lj.Append(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := ReadJournal(path, "n1", "r"); !errors.Is(err, ledger.ErrLocked) {
		t.Fatalf("reading a journal its node holds open: %v, want ErrLocked", err)
	}
	if err := lj.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := ReadJournal(path, "n1", "r")
	if err != nil {
		t.Fatal(err)
	}
	if n, amt := j.Totals(); n != 10 || len(j.Slices) != 1 || j.Slices[0] != ss[0] || len(j.Claimed) != 2 || amt == 0 {
		t.Fatalf("read %d claims / %d cents, slices %+v, claimed %v", n, amt, j.Slices, j.Claimed)
	}
	n2 := &Journal{Node: "n2", Slices: ss[1:]}
	v := &Verdict{}
	if CheckJournals(v, []*Journal{j, n2}); len(v.Violations) != 0 {
		t.Fatalf("a real journal: %q", v.Violations)
	}
	none := filepath.Join(t.TempDir(), "none.db")
	if _, err := ReadJournal(none, "n1", "r"); err == nil {
		t.Fatal("a missing journal was read")
	}
	if _, err := os.Stat(none); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading a missing journal created it: %v", err)
	}
}
