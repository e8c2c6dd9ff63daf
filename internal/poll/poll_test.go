package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(context.Background(), time.Minute, time.Millisecond, func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Fatalf("true on the third call: err %v after %d calls", err, n)
	}
	n = 0
	if err := Until(context.Background(), 0, time.Millisecond, func() bool { n++; return false }); !errors.Is(err, ErrTimeout) || n != 1 {
		t.Fatalf("never true, no time: err %v after %d calls, want ErrTimeout after 1", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Until(ctx, time.Minute, time.Millisecond, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err %v", err)
	}
	if err := Until(ctx, time.Minute, time.Millisecond, func() bool { return true }); err != nil {
		t.Fatalf("true at once, even cancelled: err %v", err)
	}
}
