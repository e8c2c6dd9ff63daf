package node

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"redrain/internal/testcluster"
)

// mountTmpfs mounts a small tmpfs for the test (root only: root ignores file permissions, so a
// full filesystem is the honest way to make commits fail).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the filesystem is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling: %v", err)
			}
			break
		}
	}
	// The last partial page: write single bytes until nothing fits.
	for {
		if _, err := f.Write([]byte{0}); err != nil {
			break
		}
	}
	return p
}

// A journal that cannot commit (disk full) answers 503 journal_unavailable and hands out no
// packet; once space is freed the node reopens the journal by itself and serves again, and every
// packet is handed out exactly once.
func TestDiskFullFailsClosedAndRecovers(t *testing.T) {
	dir := mountTmpfs(t, "8m") // the claims journal and the owners journal (owner.go)
	// The claims go to the preallocated write-ahead log, which a full disk cannot stop; bbolt,
	// where the applier moves them every 10 ms, must grow. Enough packets that the applies after
	// the fill must grow the file: bbolt reuses the pages it freed, so a few hundred claims can
	// go into space the file already had.
	h := newRedisHarness(t, false, func(o *Options) { o.DataDir, o.WALSize, o.ApplyEvery = dir, 1<<20, 10*time.Millisecond })
	const count, amount = 4000, 400_000
	h.rainOf("full", count, amount, 1, true)
	answered := map[string]int64{}
	claim := func(user uint64) (int, string) {
		st, body := h.claim("full", user)
		if st == 200 {
			a := decodeAnswer(t, body)
			answered[a.ClaimID] = a.Amount
		}
		return st, body
	}
	for u := uint64(1); u <= 50; u++ {
		if st, body := claim(u); st != 200 {
			t.Fatalf("claim before the disk fills: %d %s", st, body)
		}
	}
	filler := fill(t, dir)
	failures := 0
	for u := uint64(100); u < 100+count && failures < 20; u++ {
		st, body := claim(u)
		switch {
		case st == 503 && strings.Contains(body, "journal_unavailable"):
			failures++
		case st != 200:
			t.Fatalf("with the disk full, after %d paid: %d %s", len(answered), st, body)
		}
	}
	if failures == 0 {
		t.Fatalf("no claim failed with the disk full (%d paid)", len(answered))
	}
	t.Logf("%d claims answered 503 with the disk full, %d paid so far", failures, len(answered))
	if !h.n.journal.Failed() {
		t.Fatal("journal not marked failed")
	}
	os.Remove(filler)
	testcluster.Eventually(t, 20*time.Second, "the journal reopened after freeing space", func() bool { return !h.n.journal.Failed() })
	// Drain the rest: exactly the budget, every packet once.
	for u := uint64(100 + count); ; u++ {
		st, body := claim(u)
		if st == 410 {
			break
		}
		if st != 200 {
			t.Fatalf("after recovery: %d %s", st, body)
		}
	}
	var sum int64
	for _, a := range answered {
		sum += a
	}
	if len(answered) != count || sum != amount {
		t.Fatalf("paid %d packets / %d cents, want %d / %d", len(answered), sum, count, amount)
	}
	h.checkInvariants("full", answered)
}
