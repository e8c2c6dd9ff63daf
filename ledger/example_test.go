package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"redrain/internal/testcluster"
	"redrain/internal/testredis"
	"redrain/ledger"
)

// One credit entry, as XRANGE or XREADGROUP return it (redis.XMessage.Values).
func ExampleDecodeCredits() {
	values := map[string]any{"node": "n1", "incarnation": "00abcdef01234567", "claims": "41:1001:250,42:7:13"}
	credits, err := ledger.DecodeCredits(values)
	if err != nil {
		panic(err) // a wallet stops here: it never skips an entry it cannot read
	}
	for _, c := range credits {
		fmt.Printf("%s: %d cents to user %d\n", c.ClaimID, c.Amount, c.User)
	}
	// Output:
	// n1-00abcdef01234567-41: 250 cents to user 1001
	// n1-00abcdef01234567-42: 13 cents to user 7
}

// Wallet is the wallet service's store as the consumer sees it. Credit must be durable when it
// returns and idempotent by ClaimID: in one database transaction, insert each ClaimID into a
// table where it is the primary key and add the amount to the user's balance only for the rows
// actually inserted. An entry can be delivered twice (a consumer that crashed before XACK).
type Wallet interface {
	Credit(ctx context.Context, credits []ledger.Credit) error
}

// consume is README's wallet consumer ("Consuming the credit stream"), kept the same, word for
// word: consumer `consumer` of group `group` credits every claim of the rain's credit stream
// once, until ctx ends. It first re-reads the entries it was delivered and did not acknowledge
// (start "0": it crashed before XACK), then reads new ones (">"). An entry is acknowledged only
// after its credit is durable.
func consume(ctx context.Context, rdb redis.UniversalClient, code, group, consumer string, w Wallet) error {
	stream := ledger.Keys(code).Credits
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err() // XGROUP CREATE ... 0 MKSTREAM
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	for start := "0"; ; { // "0": entries delivered to us and never acknowledged first, then ">": new ones
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer,
			Streams: []string{stream, start}, Count: 100, Block: time.Second}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within Block
		}
		if err != nil {
			return err
		}
		if start == "0" && len(res[0].Messages) == 0 {
			start = ">"
			continue
		}
		for _, m := range res[0].Messages {
			credits, err := ledger.DecodeCredits(m.Values)
			if err != nil {
				return fmt.Errorf("credit entry %s: %w", m.ID, err) // stop: never skip money
			}
			if err := w.Credit(ctx, credits); err != nil { // durable, idempotent by ClaimID
				return err
			}
			if err := rdb.XAck(ctx, stream, group, m.ID).Err(); err != nil {
				return err
			}
		}
	}
}

// memWallet is a Wallet in memory; crashAfter > 0 makes that call fail after crediting (the
// credit was durable, the XACK never sent).
type memWallet struct {
	mu         sync.Mutex
	credited   map[string]bool
	balance    map[uint64]int64
	calls      int
	crashAfter int
}

func (w *memWallet) Credit(_ context.Context, credits []ledger.Credit) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range credits {
		if !w.credited[c.ClaimID] {
			w.credited[c.ClaimID] = true
			w.balance[c.User] += c.Amount
		}
	}
	if w.calls++; w.calls == w.crashAfter {
		return errors.New("wallet crashed before XACK")
	}
	return nil
}

func (w *memWallet) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.credited)
}

// TestWalletConsumer runs README's consumer against entries a real flusher wrote: a consumer
// that crashes between its credit and its XACK gets the entry again and credits nothing twice;
// in the end every claim is credited once, the balances are the journal's, and the group has
// acknowledged everything (so retention may drop the rain's records).
func TestWalletConsumer(t *testing.T) {
	srv := testredis.New(t)
	rdb := srv.Client()
	o := ledger.DefaultOptions(filepath.Join(t.TempDir(), "n1.db"), "n1")
	j, err := ledger.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	want := map[uint64]int64{}
	for i := range 500 {
		r := ledger.Record{Code: "r", Epoch: 1, Index: uint32(i), User: uint64(1 + i%37), Amount: int64(1 + i%101), UnixNano: 1}
		if _, err := j.Append(r); err != nil {
			t.Fatal(err)
		}
		want[r.User] += r.Amount
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ledger.NewFlusher(j, rdb, ledger.FlusherOptions{MaxBatch: 16}).FlushRain(ctx, "r"); err != nil {
		t.Fatal(err)
	}

	w := &memWallet{credited: map[string]bool{}, balance: map[uint64]int64{}, crashAfter: 3}
	if err := consume(ctx, rdb, "r", "wallet", "c1", w); err == nil || !strings.Contains(err.Error(), "crashed") {
		t.Fatalf("first run: %v, want the wallet's crash", err)
	}
	if acked, _, err := ledger.WalletAcked(ctx, rdb, "r", "wallet"); err != nil || acked {
		t.Fatalf("after the crash: acked %v, %v", acked, err)
	}
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consume(run, rdb, "r", "wallet", "c1", w) }()
	testcluster.Eventually(t, 30*time.Second, "every entry acknowledged", func() bool {
		acked, _, err := ledger.WalletAcked(ctx, rdb, "r", "wallet")
		return err == nil && acked
	})
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("consumer ended with %v", err)
	}
	if w.count() != 500 || len(w.balance) != len(want) {
		t.Fatalf("credited %d claims to %d users, want 500 to %d", w.count(), len(w.balance), len(want))
	}
	for u, a := range want {
		if w.balance[u] != a {
			t.Fatalf("user %d: balance %d, journal %d", u, w.balance[u], a)
		}
	}
}

// README's consumer is this file's consume, the one TestWalletConsumer runs.
func TestREADMEConsumerIsTested(t *testing.T) {
	src, err1 := os.ReadFile("example_test.go")
	readme, err2 := os.ReadFile(filepath.Join("..", "README.md"))
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(src, []byte("func consume("))
	end := bytes.Index(src[start:], []byte("\n}\n"))
	if start < 0 || end < 0 {
		t.Fatal("consume not found in example_test.go")
	}
	if fn := src[start : start+end+3]; !bytes.Contains(readme, fn) {
		t.Fatalf("README.md does not show consume as example_test.go has it:\n%s", fn)
	}
}
