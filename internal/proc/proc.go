// Package proc is the one launcher of redrain's child processes (nodes, coordinator, redis-server,
// the baseline server) for the bench tool and the tests: start with logs to a file, wait for
// readiness (StartRedis, WaitHTTP), stop with SIGTERM or SIGKILL.
package proc

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is a running child process. Its methods are safe for concurrent use.
type Proc struct {
	Name string
	Log  string // path of its combined stdout+stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args and extra environment, output appended to logPath. The child gets
// its own process group, so a Ctrl-C on the parent's terminal reaches it only through us.
func Start(name, bin string, args []string, env []string, logPath string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
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

// Err is the exit error once exited (nil for status 0).
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Kill sends SIGKILL (and SIGCONT, in case it was stopped) and waits for the exit.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Process.Signal(syscall.SIGCONT)
	<-p.done
}

// Signal sends sig (e.g. SIGSTOP, SIGCONT).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Term sends SIGTERM and waits up to timeout; it returns the exit error (nil for status 0), or
// an error if the process did not exit in time (it is then killed).
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

// PollInterval is the pace of the readiness polls.
const PollInterval = 20 * time.Millisecond

// WaitHTTP polls url until it answers 200, the process exits, or ctx ends.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	c := &http.Client{Timeout: time.Second}
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited before %s was ready: %v\n%s", p.Name, url, p.err, Tail(p.Log, 2048))
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s: %w\n%s", p.Name, url, ctx.Err(), Tail(p.Log, 2048))
		case <-time.After(PollInterval):
		}
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
