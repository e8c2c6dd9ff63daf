package tap

import (
	"context"
	"redrain/internal/check"
	"redrain/internal/cluster"
	"sync"
	"sync/atomic"
	"time"
)

// Tapper is users claiming from their node in the background (each user routed as Route does),
// every answer kept; a tap that got no answer (a dead node) pauses its worker 5 ms.
type Tapper struct {
	mu      sync.Mutex
	answers []check.Answer
	oks     atomic.Int64
	fails   atomic.Int64
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartTapper starts conns workers tapping for users 1..users, round after round, until Stop.
func StartTapper(c *cluster.LocalCluster, code string, users uint64, conns int) *Tapper {
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tapper{cancel: cancel}
	cl, addrs := NewClaimer(conns), c.NodeAddrs()
	var next atomic.Uint64
	for w := 0; w < conns; w++ {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for ctx.Err() == nil {
				u := (next.Add(1)-1)%users + 1
				a := cl.Claim(addrs[Route(u, len(addrs))], code, u)
				switch a.Status {
				case 200:
					t.oks.Add(1)
				case 0:
					t.fails.Add(1)
					time.Sleep(5 * time.Millisecond) // a dead node refuses at once: don't spin
				}
				t.mu.Lock()
				t.answers = append(t.answers, a)
				t.mu.Unlock()
			}
		}()
	}
	return t
}

// Stop ends the taps and returns every answer.
func (t *Tapper) Stop() []check.Answer {
	t.cancel()
	t.wg.Wait()
	return t.answers
}

// OKs is the number of 200 answers so far.
func (t *Tapper) OKs() int64 { return t.oks.Load() }

// Fails is the number of taps that got no answer (connection refused or reset) so far.
func (t *Tapper) Fails() int64 { return t.fails.Load() }
