package coordinator

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"redrain/rain"
)

func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	st, err := openStore(path, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(path, 100*time.Millisecond); err == nil {
		t.Fatal("a second opener got the locked file")
	}
	for i, a := range []int64{1, 2, 1} {
		r := &record{Code: string(rune('a' + i)), Config: rain.Config{AnchorID: a}, Status: rain.Waiting, CreatedAt: int64(100 + i)}
		if err := st.create(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.create(&record{Code: "a"}); !errors.Is(err, errCodeTaken) {
		t.Fatalf("duplicate code: %v", err)
	}
	if _, err := st.get("zz"); !errors.Is(err, ErrUnknownRain) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := st.update("b", func(r *record) error { r.Status, r.Preparing = rain.Prepared, true; return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if _, err := st.update("a", func(r *record) error { r.Status = rain.Raining; return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	codes := func(f filter) string {
		f.Limit = max(f.Limit, 1)
		rs, err := st.list(f)
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, r := range rs {
			s += r.Code
		}
		return s
	}
	for _, c := range []struct {
		f    filter
		want string
	}{
		{filter{Limit: 10}, "cba"}, {filter{Limit: 2}, "cb"}, {filter{AnchorID: 1, Limit: 10}, "ca"},
		{filter{AnchorID: 2, Limit: 10}, "b"}, {filter{AnchorID: 3, Limit: 10}, ""},
		{filter{Status: rain.Waiting, Limit: 10}, "ca"}, {filter{Status: rain.Prepared, Limit: 10}, "b"},
		{filter{Status: rain.Raining, Limit: 10}, ""}, {filter{AnchorID: 2, Status: rain.Waiting, Limit: 10}, ""},
	} {
		if got := codes(c.f); got != c.want {
			t.Errorf("list %+v: %q, want %q", c.f, got, c.want)
		}
	}
	if p, _ := st.preparing(); len(p) != 1 || p[0] != "b" {
		t.Fatalf("preparing: %v", p)
	}
	if n, _ := st.countByStatus(); n[rain.Waiting] != 2 || n[rain.Prepared] != 1 {
		t.Fatalf("counts: %v", n)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st, err = openStore(path, 100*time.Millisecond) // reopened: everything is still there
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if got := codes(filter{Limit: 10}); got != "cba" {
		t.Fatalf("after reopen: %q", got)
	}
	if c, _ := st.codesWithStatus(rain.Prepared, rain.Waiting); len(c) != 3 {
		t.Fatalf("codesWithStatus: %v", c)
	}
}

// TestStoreStartedRains: the started rains are counted, listed with their start second, and
// the settled ones walked in batches that resume after the last key, each once.
func TestStoreStartedRains(t *testing.T) {
	st, err := openStore(filepath.Join(t.TempDir(), "c.db"), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	statuses := []rain.Status{rain.Waiting, rain.Settled, rain.Raining, rain.Settled, rain.Cancelled,
		rain.Finished, rain.Settled, rain.Settled, rain.Prepared, rain.Settled}
	for i, s := range statuses {
		r := &record{Code: fmt.Sprintf("r%d", i), Status: s, CreatedAt: int64(100 - i)}
		if s == rain.Raining || s == rain.Finished || s == rain.Settled {
			r.StartedAt = int64(i)*int64(time.Second) + 999
		}
		if err := st.create(r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.countStarted(); err != nil || n != 7 {
		t.Fatalf("countStarted: %d %v, want 7", n, err)
	}
	ls, err := st.listings([]string{"r0", "r2", "r5", "gone"})
	if err != nil || fmt.Sprint(ls) != "[{r2 2} {r5 5}]" {
		t.Fatalf("listings: %v %v", ls, err)
	}
	var walked []listing
	var after []byte
	for range 10 {
		batch, last, err := st.settledAfter(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		if len(batch) > 2 || last == nil {
			t.Fatalf("batch %v, last %q", batch, last)
		}
		walked, after = append(walked, batch...), last
	}
	// Oldest created first: r9 (created 91) ... r1 (created 99).
	if fmt.Sprint(walked) != "[{r9 9} {r7 7} {r6 6} {r3 3} {r1 1}]" {
		t.Fatalf("settled walk: %v", walked)
	}
}
