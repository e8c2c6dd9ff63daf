package ledger

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"redrain/internal/testcluster"
)

const crashEnv = "REDRAIN_LEDGER_CRASH_JOURNAL"

// TestHelperProcess is the child of TestCrashSafety: with crashEnv set it appends from 64
// goroutines, printing "seq user" for every acknowledged record, until it is killed. Run
// normally it does nothing.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		return
	}
	round, _ := strconv.ParseUint(os.Getenv(crashEnv+"_ROUND"), 10, 8)
	o := crashOptions(path)
	j, err := Open(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	acks := make(chan string, 4096)
	for w := range 64 {
		go func() {
			for i := 0; ; i++ {
				r := claim("crash", i)
				r.User = round<<56 | uint64(w)<<32 | uint64(i+1) // unique per append
				seq, err := j.Append(r)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				acks <- fmt.Sprintf("%d %d\n", seq, r.User)
			}
		}()
	}
	out := bufio.NewWriter(os.Stdout)
	for line := range acks {
		out.WriteString(line)
		if len(acks) == 0 {
			out.Flush()
		}
	}
}

// crashOptions are the child's and the checker's options; with crashEnv_SMALL set the log files
// are 1 MiB and the applier lazy, so the writer rotates the log (and applies it itself) many
// times per round, and a kill lands in every part of a rotation.
func crashOptions(path string) Options {
	o := DefaultOptions(path, "n1")
	o.Logger = quiet
	if os.Getenv(crashEnv+"_SMALL") != "" {
		o.WALSize, o.ApplyEvery, o.ApplyRecords = 1<<20, time.Hour, 1<<30
	}
	return o
}

// A child appending under load is SIGKILLed mid-run, three times on the same file: every record
// it acknowledged is in the reopened journal with its content, no record is there twice,
// sequences are unique and increasing, and the totals match the records. Once with the default
// log, once with a small one that the writer must rotate every few thousand records.
func TestCrashSafety(t *testing.T) {
	for _, tc := range []struct {
		small string
		want  int // acknowledged appends per round: 50,000 fill a small log file 2.5 times
	}{{"", 5000}, {"1", 50000}} {
		t.Run("small="+tc.small, func(t *testing.T) {
			t.Setenv(crashEnv+"_SMALL", tc.small)
			crashRounds(t, tc.want)
		})
	}
}

func crashRounds(t *testing.T, want int) {
	path := testOptions(t, "n1").Path
	acked := map[uint64]uint64{} // seq -> user, over all rounds
	for round := range 3 {
		crashChild(t, path, round, acked, want)
		j, err := Open(crashOptions(path))
		if err != nil {
			t.Fatal(err)
		}
		checkCrashJournal(t, j, acked)
		j.Close()
	}
}

// crashChild runs TestHelperProcess on path until it acknowledged want more appends, SIGKILLs
// it and adds what it acknowledged to acked.
func crashChild(t *testing.T, path string, round int, acked map[uint64]uint64, want int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("%s_ROUND=%d", crashEnv, round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	before := len(acked)
	readDone := make(chan error, 1)
	var eof atomic.Bool // the child's stdout ended: it died on its own
	go func() { err := readAcks(stdout, &mu, acked); eof.Store(true); readDone <- err }()
	testcluster.Eventually(t, 60*time.Second, "acknowledged appends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)-before >= want || eof.Load()
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-readDone; err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked)-before < want {
		t.Fatalf("round %d: child acknowledged only %d appends; stderr: %s", round, len(acked)-before, stderr.String())
	}
}

func checkCrashJournal(t *testing.T, j *Journal, acked map[uint64]uint64) {
	t.Helper()
	inFile := map[uint64]uint64{}
	users := map[uint64]bool{}
	var prev uint64
	err := j.Scan("crash", 0, 0, func(seq uint64, r Record) bool {
		if seq <= prev {
			t.Errorf("seq %d after %d", seq, prev)
		}
		if users[r.User] {
			t.Errorf("append of user %x journaled twice", r.User)
		}
		prev, users[r.User], inFile[seq] = seq, true, r.User
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq, user := range acked {
		if got, ok := inFile[seq]; !ok || got != user {
			t.Fatalf("acknowledged seq %d (user %x) not in the journal (found %x, %v)", seq, user, got, ok)
		}
	}
	t.Logf("%d acknowledged, %d journaled (the rest were in flight when killed)", len(acked), len(inFile))
	if tot, _ := j.Totals("crash"); tot.Count != int64(len(inFile)) || tot.LastSeq != prev || j.LastSeq() != prev {
		t.Fatalf("totals after the crash %+v, last seq %d; replay has %d records up to %d", tot, j.LastSeq(), len(inFile), prev)
	}
}

// readAcks parses complete "seq user" lines until EOF; a line cut by the kill is ignored.
func readAcks(r io.Reader, mu *sync.Mutex, acked map[uint64]uint64) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // EOF or pipe closed; a partial line has no '\n'
		}
		var seq, user uint64
		if _, err := fmt.Sscanf(line, "%d %d\n", &seq, &user); err != nil {
			return fmt.Errorf("child printed %q: %w", line, err)
		}
		mu.Lock()
		if _, dup := acked[seq]; dup {
			mu.Unlock()
			return fmt.Errorf("seq %d acknowledged twice", seq)
		}
		acked[seq] = user
		mu.Unlock()
	}
}
