package bench_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"redrain/bench"
	"redrain/internal/cluster"
	"redrain/internal/tap"
	"redrain/internal/testredis"
)

func startBaseline(t *testing.T, token string) (*bench.Baseline, *testredis.Server) {
	t.Helper()
	srv := testredis.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bench.NewBaseline(ctx, bench.BaselineOptions{HTTP: "127.0.0.1:0", RedisURL: srv.URL(), AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	t.Cleanup(func() { b.Close() })
	return b, srv
}

// The baseline hands out exactly the rain's packets, one RPOP each, with the node's answer
// shape: unique claim ids, amounts >= 1 adding up to the budget, then 410 exhausted; it
// refuses bad users (400), unknown rains (404) and users past their cap (429).
func TestBaselineServesTheList(t *testing.T) {
	b, srv := startBaseline(t, "")
	ctx := context.Background()
	p, err := b.Prepare(ctx, bench.BaselinePrepare{Code: "r1", TotalAmount: 5000, TotalCount: 250, MaxPerUser: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Client().LLen(ctx, bench.BaselineKey("r1")).Result(); err != nil || n != 250 || p.Key != bench.BaselineKey("r1") {
		t.Fatalf("list holds %d (%v), key %q; want 250", n, err, p.Key)
	}
	c := tap.NewClaimer(4)
	ids := map[string]bool{}
	var sum int64
	for u := uint64(1); u <= 84; u++ { // 84 users x 3 = 252 taps >= 250 packets
		for range 3 {
			a := c.Claim(b.Addr(), "r1", u)
			switch {
			case a.Status == 200 && a.Amount >= 1 && a.ClaimID != "" && !ids[a.ClaimID]:
				ids[a.ClaimID] = true
				sum += a.Amount
			case a.Status == 410 && a.Error == "exhausted" && len(ids) == 250:
			default:
				t.Fatalf("user %d after %d claims: %+v", u, len(ids), a)
			}
		}
	}
	if len(ids) != 250 || sum != 5000 {
		t.Fatalf("%d claims, %d cents; want 250, 5000", len(ids), sum)
	}
	for _, c2 := range []struct {
		code   string
		user   uint64
		status int
		word   string
	}{
		{"r1", 0, 400, "bad_user"},
		{"nope", 1, 404, "unknown_rain"},
		{"r1", 1, 429, "user_limit"}, // user 1 has 3 already
		{"r1", 84, 410, "exhausted"}, // user 84 got 1 packet, then 2 exhausted: those counts were given back
	} {
		if a := c.Claim(b.Addr(), c2.code, c2.user); a.Status != c2.status || a.Error != c2.word {
			t.Errorf("claim %s user %d: %+v; want %d %s", c2.code, c2.user, a, c2.status, c2.word)
		}
	}
	if _, err := b.Prepare(ctx, bench.BaselinePrepare{Code: "r1", TotalAmount: 10, TotalCount: 10}); !errors.Is(err, bench.ErrBaselineExists) {
		t.Fatalf("second prepare of r1: %v", err)
	}
}

// Every claim_id is unique across rains and concurrent claimers; the cap holds under races.
func TestBaselineConcurrentClaims(t *testing.T) {
	b, _ := startBaseline(t, "")
	ctx := context.Background()
	for _, code := range []string{"a", "b"} {
		if _, err := b.Prepare(ctx, bench.BaselinePrepare{Code: code, TotalAmount: 20_000, TotalCount: 2000, MaxPerUser: 2}); err != nil {
			t.Fatal(err)
		}
	}
	res := bench.Load(ctx, bench.LoadOptions{Nodes: []string{b.Addr()}, Code: "a", Users: 600, Conns: 16, Time: 30 * time.Second})
	res2 := bench.Load(ctx, bench.LoadOptions{Nodes: []string{b.Addr()}, Code: "b", Users: 1500, Conns: 16, Time: 30 * time.Second})
	ids, perUser := map[string]bool{}, map[string]int{}
	for i, r := range []*bench.LoadResult{res, res2} {
		for _, a := range r.Answers {
			if a.Status != 200 {
				continue
			}
			if ids[a.ClaimID] {
				t.Fatalf("claim_id %s twice", a.ClaimID)
			}
			ids[a.ClaimID] = true
			key := strconv.Itoa(i) + "/" + strconv.FormatUint(a.User, 10)
			if perUser[key]++; perUser[key] > 2 {
				t.Fatalf("user %s got %d packets", key, perUser[key])
			}
		}
	}
	// a: 600 users x 2 = 1200 of 2000 packets (users done); b: drained (1500 x 2 > 2000).
	if res.Stop != bench.StopUsersDone || res2.Stop != bench.StopDrained || len(ids) != 1200+2000 {
		t.Fatalf("stops %s, %s; %d claims, want 3200", res.Stop, res2.Stop, len(ids))
	}
}

// POST /v1/rains needs the admin token when one is set, and refuses bad rains.
func TestBaselinePrepareAPI(t *testing.T) {
	b, _ := startBaseline(t, "tok")
	ctx := context.Background()
	var out bench.BaselinePrepared
	err := cluster.NewAdmin(b.Addr(), "wrong").Do(ctx, "POST", "/v1/rains", bench.BaselinePrepare{TotalAmount: 10, TotalCount: 5}, &out)
	var apiErr *cluster.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	admin := cluster.NewAdmin(b.Addr(), "tok")
	for _, bad := range []bench.BaselinePrepare{{TotalAmount: 4, TotalCount: 5}, {TotalAmount: 10, TotalCount: 0},
		{TotalAmount: 10, TotalCount: 5, MaxPerUser: 5000}} {
		if err := admin.Do(ctx, "POST", "/v1/rains", bad, &out); !errors.As(err, &apiErr) || apiErr.Status != 400 {
			t.Errorf("prepare %+v: %v, want 400", bad, err)
		}
	}
	if err := admin.Do(ctx, "POST", "/v1/rains", bench.BaselinePrepare{TotalAmount: 10, TotalCount: 5}, &out); err != nil ||
		out.Code == "" || out.TotalCount != 5 || out.MaxPerUser != 1 {
		t.Fatalf("prepare: %+v %v", out, err)
	}
	if a := tap.NewClaimer(1).Claim(b.Addr(), out.Code, 7); a.Status != 200 || a.Amount < 1 {
		t.Fatalf("claim: %+v", a)
	}
}
