// Package testcluster runs redrain's real binaries as child processes for integration tests:
// it builds cmd/node, cmd/coordinator and cmd/bench once per test process, starts them on free
// 127.0.0.1 ports with their logs in files, and kills (SIGKILL) or stops (SIGTERM) them.
package testcluster

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the path of a redrain binary ("node", "coordinator", "bench"), building all of
// them (with -race unless REDRAIN_TEST_NORACE is set) on first use into a temporary directory
// shared by the process's tests and removed by Main.
func Bin(tb testing.TB, name string) string {
	tb.Helper()
	buildOnce.Do(func() { binDir, buildErr = build() })
	if buildErr != nil {
		tb.Fatalf("build binaries: %v", buildErr)
	}
	p := filepath.Join(binDir, name)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("binary %s: %v", name, err)
	}
	return p
}

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "redrain-bin-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"node", "coordinator", "bench"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, name), "./cmd/"+name)
		if os.Getenv("REDRAIN_TEST_NORACE") != "" {
			cmd = exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
		}
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a 127.0.0.1 TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is "127.0.0.1:<FreePort>".
func FreeAddr(tb testing.TB) string { return "127.0.0.1:" + strconv.Itoa(FreePort(tb)) }

// Proc is a running child process.
type Proc struct {
	Name string
	Log  string // path of its combined stdout+stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args and extra environment; the process is killed at test cleanup.
func Start(tb testing.TB, name, bin string, args []string, env ...string) *Proc {
	tb.Helper()
	logPath := filepath.Join(tb.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("--- log of %s (last 4 KiB):\n%s", name, Tail(logPath, 4096))
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig (e.g. SIGSTOP, SIGCONT).
func (p *Proc) Signal(sig syscall.Signal) { p.cmd.Process.Signal(sig) }

// Term sends SIGTERM and waits up to timeout for the exit; it returns the exit error (nil for
// status 0), or an error if the process did not exit in time (it is then killed).
func (p *Proc) Term(timeout time.Duration) error {
	if p.Exited() {
		return p.err
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM", p.Name, timeout)
	}
}

// Wait waits up to timeout for the process to exit by itself and returns its exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.Name, timeout)
	}
}

// WaitHTTP polls url until it answers 200 or the deadline passes (or proc exits).
func WaitHTTP(tb testing.TB, p *Proc, url string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			tb.Fatalf("%s exited before %s was ready: %v\n%s", p.Name, url, p.err, Tail(p.Log, 4096))
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // poll pace, not a wait for a condition
	}
	tb.Fatalf("%s not ready within %v", url, timeout)
}

// Eventually polls cond every 20 ms until it is true or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tail returns up to n trailing bytes of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Main runs the tests and removes the built binaries; call it from TestMain:
// func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}
