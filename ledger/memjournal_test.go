package ledger

import (
	"errors"
	"reflect"
	"testing"

	"redrain/rain"
)

// journalUnderTest is what the comparison calls on both journals.
type journalUnderTest interface {
	Source
	Append(r Record) (uint64, error)
	PutRain(m RainMeta) error
	PutSlice(s rain.Slice) error
	DropSlices(code string, epoch uint64) error
	DropRain(tomb RainMeta) error
	Recover() (*Recovery, error)
}

var (
	_ journalUnderTest = (*Journal)(nil)
	_ journalUnderTest = (*MemJournal)(nil)
)

// TestMemJournalMatchesJournal makes the same calls on a real journal and on a MemJournal and
// compares every answer, the totals, what Scan reads and what Recover replays.
func TestMemJournalMatchesJournal(t *testing.T) {
	real := openJournal(t, testOptions(t, "n1"))
	mem := NewMemJournal("n1", real.Incarnation())
	slice := func(code string, epoch uint64, id uint32) rain.Slice {
		return rain.Slice{Code: code, ID: id, Epoch: epoch, Node: "n1", Count: 10, Amount: 1000, Seed: 1, Algorithm: rain.DoubleAverage}
	}
	steps := []func(j journalUnderTest) []any{
		func(j journalUnderTest) []any { return []any{j.PutRain(RainMeta{Code: "a", MaxPerUser: 1})} },
		func(j journalUnderTest) []any { return []any{j.PutRain(RainMeta{Code: "b", MaxPerUser: 2})} },
		func(j journalUnderTest) []any { return []any{j.PutRain(RainMeta{Code: "{bad}"}) != nil} },
		func(j journalUnderTest) []any {
			return []any{j.PutSlice(slice("a", 1, 2)), j.PutSlice(slice("a", 1, 1))}
		},
		func(j journalUnderTest) []any {
			return []any{j.PutSlice(slice("a", 2, 1)), j.PutSlice(slice("b", 1, 1))}
		},
		func(j journalUnderTest) []any { return []any{j.DropSlices("a", 2)} },
		func(j journalUnderTest) []any {
			var out []any
			for i := range 40 {
				r := claim([]string{"a", "b"}[i%2], i)
				r.Epoch = 1
				r.UnixNano = int64(i)
				seq, err := j.Append(r)
				out = append(out, seq, err)
			}
			_, err := j.Append(Record{Code: "a"})
			return append(out, errors.Is(err, ErrBadRecord))
		},
		func(j journalUnderTest) []any {
			return []any{errors.Is(j.DropRain(RainMeta{Code: "b"}), ErrNotSettled), j.DropRain(RainMeta{Code: "b", Settled: true, CompactedAt: 5})}
		},
		func(j journalUnderTest) []any {
			r := claim("a", 99)
			r.UnixNano = 99
			seq, err := j.Append(r)
			return []any{seq, err}
		},
	}
	for i, step := range steps {
		want, got := step(real), step(mem)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: MemJournal answered %v, Journal %v", i, got, want)
		}
		compareJournals(t, i, real, mem)
	}
}

// compareJournals compares the totals, every rain's records and the replay of both journals.
func compareJournals(t *testing.T, step int, real, mem journalUnderTest) {
	t.Helper()
	if w, g := real.AllTotals(), mem.AllTotals(); !reflect.DeepEqual(g, w) {
		t.Fatalf("step %d: MemJournal totals %v, Journal %v", step, g, w)
	}
	scan := func(j journalUnderTest, code string, after uint64, max int) (out []any) {
		err := j.Scan(code, after, max, func(seq uint64, r Record) bool { out = append(out, seq, r); return true })
		return append(out, err)
	}
	for _, code := range []string{"a", "b", "c"} {
		for _, a := range [][2]int{{0, 0}, {3, 5}, {40, 0}} {
			if w, g := scan(real, code, uint64(a[0]), a[1]), scan(mem, code, uint64(a[0]), a[1]); !reflect.DeepEqual(g, w) {
				t.Fatalf("step %d: scan %s after %d max %d: MemJournal %v, Journal %v", step, code, a[0], a[1], g, w)
			}
		}
	}
	w, werr := real.Recover()
	g, gerr := mem.Recover()
	if werr != nil || gerr != nil || !reflect.DeepEqual(g, w) {
		t.Fatalf("step %d: MemJournal recovers %+v (%v), Journal %+v (%v)", step, g, gerr, w, werr)
	}
}

// A failed commit refuses writes until Reopen, which returns the records that were kept.
func TestMemJournalFailedCommit(t *testing.T) {
	j := NewMemJournal("n1", 7)
	if _, err := j.Append(claim("a", 1)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	j.FailNext(boom, true)
	kept := claim("a", 2)
	if _, err := j.Append(kept); !errors.Is(err, ErrCommit) || !errors.Is(err, boom) || !j.Failed() {
		t.Fatalf("append with a failing commit: %v (failed %v)", err, j.Failed())
	}
	if _, err := j.Append(claim("a", 3)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after a failed commit: %v", err)
	}
	if err := j.PutRain(RainMeta{Code: "a"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put after a failed commit: %v", err)
	}
	found, err := j.Reopen()
	if err != nil || len(found) != 1 || found[0] != kept || j.Failed() {
		t.Fatalf("reopen: %v %v (failed %v)", found, err, j.Failed())
	}
	if seq, err := j.Append(claim("a", 4)); err != nil || seq != 3 {
		t.Fatalf("append after reopen: %d %v", seq, err)
	}
	j.Close()
	if _, err := j.Append(claim("a", 5)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	j.Open()
	if tot, ok := j.Totals("a"); !ok || tot.Count != 3 {
		t.Fatalf("totals after a reopen of the closed journal: %+v %v", tot, ok)
	}
}
