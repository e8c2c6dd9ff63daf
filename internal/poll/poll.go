// Package poll waits for a condition with a deadline, for code outside tests (the load tool's
// chaos run); tests use internal/testcluster.Eventually, which fails the test instead.
package poll

import (
	"context"
	"errors"
	"time"
)

// ErrTimeout: the condition was still false when the timeout passed.
var ErrTimeout = errors.New("poll: timed out")

// Until calls cond, then again every pace, until it returns true (Until returns nil), timeout
// has passed since the call (ErrTimeout) or ctx ends (ctx.Err()). cond is called at least once.
func Until(ctx context.Context, timeout, pace time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTimer(pace)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t.Reset(pace)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
