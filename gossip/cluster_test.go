package gossip

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"redrain/internal/testcluster"
)

func TestMembersSeeEachOtherWithMeta(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	if !a.Joined() {
		t.Error("a member with nothing to join should count as joined")
	}
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	c := start(t, testOptions("n2", RoleNode, a.GossipAddr()))
	all := []*testMember{a, b, c}
	allSeeAlive(t, all...)

	for _, viewer := range all {
		got := viewer.Members()
		if len(got) != 3 {
			t.Fatalf("%s sees %d members, want 3: %+v", viewer.opts.Meta.ID, len(got), got)
		}
		for _, want := range all {
			m, _ := viewer.Member(want.opts.Meta.ID)
			exp := Member{ID: want.opts.Meta.ID, Role: want.opts.Meta.Role, HTTPAddr: want.opts.Meta.HTTPAddr,
				GossipAddr: want.GossipAddr(), State: StateAlive}
			if m != exp {
				t.Errorf("%s sees %+v, want %+v", viewer.opts.Meta.ID, m, exp)
			}
		}
		if !slices.IsSortedFunc(got, func(x, y Member) int { return strings.Compare(x.ID, y.ID) }) {
			t.Errorf("Members not sorted by id: %+v", got)
		}
		if !viewer.Joined() {
			t.Errorf("%s: Joined() = false", viewer.opts.Meta.ID)
		}
		if lm := viewer.LocalMember(); lm.ID != viewer.opts.Meta.ID || lm.State != StateAlive {
			t.Errorf("LocalMember = %+v", lm)
		}
	}
	testcluster.Eventually(t, settle, "OnMember reported every join", func() bool {
		for _, viewer := range all {
			for _, m := range all {
				if indexOf(viewer.rec.states(m.opts.Meta.ID), StateAlive, 0) < 0 {
					return false
				}
			}
		}
		return true
	})
	if _, ok := a.Member("nobody"); ok {
		t.Error("Member(unknown id) found")
	}
}

func TestNewsSpreadsAndNewerVersionWins(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	c := start(t, testOptions("n2", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b, c)

	now := time.Now().UnixNano()
	v1 := News{Code: "rainA", Kind: KindStarted, Epoch: 1, StartsAt: now, EndsAt: now + 60e9, Version: 1}
	if err := a.Publish(v1); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "v1 reached b and c", func() bool { return b.rec.gotNews(v1) && c.rec.gotNews(v1) })
	if got, _ := c.NewsFor("rainA"); got != v1 {
		t.Fatalf("NewsFor = %+v, want %+v", got, v1)
	}
	if a.rec.newsCount() != 0 {
		t.Error("OnNews fired on the publisher")
	}

	// A newer version from another member replaces it everywhere, the publisher included.
	v2 := v1
	v2.Kind, v2.StoppedAt, v2.Version = KindStopped, now+1e9, 2
	if err := b.Publish(v2); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "v2 reached a and c", func() bool { return a.rec.gotNews(v2) && c.rec.gotNews(v2) })

	// An older version is refused locally and ignored when it arrives by gossip.
	if err := a.Publish(v1); !errors.Is(err, ErrStaleNews) {
		t.Errorf("Publish(older) = %v, want ErrStaleNews", err)
	}
	changed := v2
	changed.Epoch = 9
	if err := a.Publish(changed); !errors.Is(err, ErrStaleNews) {
		t.Errorf("Publish(same version, changed) = %v, want ErrStaleNews", err)
	}
	if err := a.Publish(v2); err != nil {
		t.Errorf("Publish(same news again) = %v, want nil (a re-broadcast)", err)
	}
	before := c.rec.newsCount()
	(&delegate{c: c.Cluster}).NotifyMsg(encodeNewsMsg(v1))
	(&delegate{c: c.Cluster}).NotifyMsg([]byte("\x01{not json"))
	if got, _ := c.NewsFor("rainA"); got != v2 {
		t.Errorf("after an old broadcast NewsFor = %+v, want %+v", got, v2)
	}
	if c.rec.newsCount() != before {
		t.Error("OnNews fired for an older version")
	}
	if err := a.Publish(News{Code: "x", Kind: "paused", Version: 1}); !errors.Is(err, ErrInvalidNews) {
		t.Errorf("Publish(bad kind) = %v, want ErrInvalidNews", err)
	}
}

func TestLateJoinerConvergesByPushPull(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b)
	now := time.Now().UnixNano()
	var published []News
	for i := range 3 {
		n := News{Code: fmt.Sprintf("rain%d", i), Kind: KindStarted, Epoch: 1, StartsAt: now, EndsAt: now + 60e9, Version: 5}
		if err := a.Publish(n); err != nil {
			t.Fatal(err)
		}
		published = append(published, n)
	}
	// Wait until the broadcasts are spent, so the late joiner can only learn by push-pull.
	testcluster.Eventually(t, settle, "broadcast queues drained", func() bool {
		return b.rec.newsCount() == 3 && a.queue.NumQueued() == 0 && b.queue.NumQueued() == 0
	})

	late := start(t, testOptions("n2", RoleNode, b.GossipAddr()))
	testcluster.Eventually(t, settle, "late joiner has every rain's news", func() bool {
		for _, n := range published {
			if !late.rec.gotNews(n) {
				return false
			}
			if got, _ := late.NewsFor(n.Code); got != n {
				return false
			}
		}
		return true
	})
}

func TestCrashIsSuspectThenDeadAndLeaveIsLeft(t *testing.T) {
	track := func(o Options) Options { o.TrackSuspects = true; return o }
	a := start(t, track(testOptions("coord", RoleCoordinator)))
	b := start(t, track(testOptions("n1", RoleNode, a.GossipAddr())))
	c := start(t, testOptions("n2", RoleNode, a.GossipAddr()))
	d := start(t, testOptions("n3", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b, c, d)

	began := time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, viewer := range []*testMember{a, b} {
		testcluster.Eventually(t, settle, viewer.opts.Meta.ID+" sees n2 suspect, then dead", func() bool {
			s := viewer.rec.states("n2")
			return indexOf(s, StateDead, indexOf(s, StateSuspect, 0)+1) > 0 && seesAs(viewer, "n2", StateDead)
		})
	}
	testcluster.Eventually(t, settle, "n3 sees n2 dead", func() bool { return seesAs(d, "n2", StateDead) })
	t.Logf("crash declared dead after %v", time.Since(began).Round(time.Millisecond))

	if err := d.Leave(settle); err != nil {
		t.Fatal(err)
	}
	if s := d.LocalMember().State; s != StateLeft {
		t.Errorf("LocalMember after Leave: %s, want left", s)
	}
	testcluster.Eventually(t, settle, "others see n3 left", func() bool {
		return seesAs(a, "n3", StateLeft) && seesAs(b, "n3", StateLeft)
	})
	// Once it stops, memberlist declares it failed; it stays "left".
	if err := d.Shutdown(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "memberlist drops n3", func() bool { return a.ml.NumMembers() == 2 && b.ml.NumMembers() == 2 })
	for _, viewer := range []*testMember{a, b} {
		s := viewer.rec.states("n3")
		if left := indexOf(s, StateLeft, 0); !seesAs(viewer, "n3", StateLeft) || left < 0 || indexOf(s, StateDead, left) >= 0 {
			t.Errorf("%s: n3 reported %v, want it left and never dead after", viewer.opts.Meta.ID, s)
		}
	}
	if got := len(a.Members()); got != 4 {
		t.Errorf("a lists %d members, want 4 (dead and left ones stay)", got)
	}
}

func TestRestartedMemberWithSameIDIsAcceptedAgain(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b)

	// Crash, declared dead, back on a new port.
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "n1 declared dead", func() bool { return seesAs(a, "n1", StateDead) })
	o := testOptions("n1", RoleNode, a.GossipAddr())
	o.Meta.HTTPAddr = "127.0.0.1:9999"
	b2 := start(t, o)
	allSeeAlive(t, a, b2)
	testcluster.Eventually(t, settle, "a sees n1 at its new addresses", func() bool {
		m, _ := a.Member("n1")
		return m.GossipAddr == b2.GossipAddr() && m.HTTPAddr == "127.0.0.1:9999"
	})

	// Crash and immediate restart on the same port, before anyone declares it dead.
	if err := b2.Shutdown(); err != nil {
		t.Fatal(err)
	}
	o = testOptions("n1", RoleNode, a.GossipAddr())
	o.BindAddr = b2.GossipAddr()
	b3 := start(t, o)
	allSeeAlive(t, a, b3)
	now := time.Now().UnixNano()
	n := News{Code: "after-restart", Kind: KindStarted, StartsAt: now, EndsAt: now + 1e9, Version: 1}
	if err := a.Publish(n); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "the restarted member gets news", func() bool { return b3.rec.gotNews(n) })

	// Leaves gracefully, and comes back (new port) while peers still hold its leaving mark.
	if err := b3.Leave(settle); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, settle, "n1 left", func() bool { return seesAs(a, "n1", StateLeft) })
	if err := b3.Shutdown(); err != nil {
		t.Fatal(err)
	}
	b4 := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b4)
}

func TestMemberWithoutTheSecretCannotJoin(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	wrong := testOptions("wrong", RoleNode, a.GossipAddr())
	wrong.Secret = "other-secret"
	x := start(t, wrong)
	clear := testOptions("clear", RoleNode, a.GossipAddr())
	clear.Secret, clear.Insecure = "", true
	y := start(t, clear)
	// A member with the secret, started after them, is the control: once it is in and both
	// outsiders have retried, they would be in too if they could.
	g := start(t, testOptions("good", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, g)
	testcluster.Eventually(t, settle, "outsiders retried", func() bool {
		return x.joinAttempts.Load() >= 3 && y.joinAttempts.Load() >= 3
	})
	for _, insider := range []*testMember{a, g} {
		for _, id := range []string{"wrong", "clear"} {
			if m, ok := insider.Member(id); ok {
				t.Errorf("%s sees outsider %+v", insider.opts.Meta.ID, m)
			}
		}
	}
	for _, outsider := range []*testMember{x, y} {
		if got := len(outsider.Members()); got != 1 || outsider.Joined() {
			t.Errorf("%s sees %d members (Joined %v), want only itself", outsider.opts.Meta.ID, got, outsider.Joined())
		}
		if _, err := outsider.ml.Join([]string{a.GossipAddr()}); err == nil {
			t.Errorf("%s: Join succeeded", outsider.opts.Meta.ID)
		}
	}
}

func TestJoinRetriesUntilTheSeedStarts(t *testing.T) {
	seedAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := start(t, testOptions("n1", RoleNode, seedAddr))
	testcluster.Eventually(t, settle, "a join attempt failed", func() bool { return n.joinAttempts.Load() >= 1 })
	if n.Joined() {
		t.Fatal("Joined() before the seed exists")
	}
	o := testOptions("coord", RoleCoordinator)
	o.BindAddr = seedAddr
	seed := start(t, o) // never calls Join itself
	allSeeAlive(t, n, seed)
	if !n.Joined() {
		t.Error("Joined() = false after converging")
	}
	attempts := n.joinAttempts.Load()
	n.joinMissing()
	if got := n.joinAttempts.Load(); got != attempts {
		t.Errorf("join loop tried a live member again (%d -> %d attempts)", attempts, got)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	long := strings.Repeat("x", 600)
	cases := []struct {
		name string
		mod  func(*Options)
		want error
	}{
		{"meta over 512 bytes", func(o *Options) { o.Meta.HTTPAddr = long }, ErrMetaTooLarge},
		{"no id", func(o *Options) { o.Meta.ID = "" }, ErrOptions},
		{"id with a space", func(o *Options) { o.Meta.ID = "n 1" }, ErrOptions},
		{"bad role", func(o *Options) { o.Meta.Role = "boss" }, ErrOptions},
		{"no secret", func(o *Options) { o.Secret = "" }, ErrNoSecret},
		{"bind without port", func(o *Options) { o.BindAddr = "127.0.0.1" }, ErrOptions},
		{"join without host", func(o *Options) { o.Join = []string{":7000"} }, ErrOptions},
		{"negative interval", func(o *Options) { o.RejoinInterval = -time.Second }, ErrOptions},
		{"negative max news", func(o *Options) { o.MaxNews = -1 }, ErrOptions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions("n1", RoleNode)
			tc.mod(&o)
			c, err := New(o)
			if !errors.Is(err, tc.want) {
				t.Errorf("New = %v, want %v", err, tc.want)
			}
			if c != nil {
				c.Shutdown()
			}
		})
	}
	o := testOptions("n1", RoleNode)
	o.Secret, o.Insecure = "", true
	c, err := New(o)
	if err != nil {
		t.Fatalf("Insecure without secret: %v", err)
	}
	c.Shutdown()
}

func TestShutdownIsSafeTwice(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b)
	if err := b.Leave(settle); err != nil {
		t.Fatal(err)
	}
	if err := b.Leave(settle); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	for i := range 2 {
		if err := b.Shutdown(); err != nil {
			t.Errorf("Shutdown #%d: %v", i+1, err)
		}
	}
	if err := b.Leave(settle); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v, want ErrClosed", err)
	}
	if err := b.Publish(News{Code: "r", Kind: KindStarted, Version: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Shutdown = %v, want ErrClosed", err)
	}
	testcluster.Eventually(t, settle, "a sees n1 left", func() bool { return seesAs(a, "n1", StateLeft) })
}

// TestPublishAndLeaveWhileAliveMessagesArrive runs Publish and Leave, which pick peers to send to,
// while alive messages arrive from those peers (every Leave re-advertises its member with a new
// incarnation). memberlist rewrites a peer's *Node on each alive message under its own lock, so
// picking peers from Memberlist.Members and reading their addresses was a data race (bench's
// TestScaleSmall hit it under -race in CI); `go test -race` catches it here.
func TestPublishAndLeaveWhileAliveMessagesArrive(t *testing.T) {
	a := start(t, testOptions("coord", RoleCoordinator))
	b := start(t, testOptions("n1", RoleNode, a.GossipAddr()))
	c := start(t, testOptions("n2", RoleNode, a.GossipAddr()))
	allSeeAlive(t, a, b, c)

	const rounds = 50
	var wg sync.WaitGroup
	errs := make(chan error, 3*rounds)
	for _, m := range []*testMember{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if err := m.Leave(settle); err != nil {
					errs <- fmt.Errorf("%s: Leave: %w", m.opts.Meta.ID, err)
				}
			}
		}()
	}
	now := time.Now().UnixNano()
	for v := range uint64(rounds) {
		n := News{Code: "rainA", Kind: KindStarted, Epoch: 1, StartsAt: now, EndsAt: now + 60e9, Version: v + 1}
		if err := a.Publish(n); err != nil {
			errs <- fmt.Errorf("Publish v%d: %w", v+1, err)
		}
		// Alive messages arrive meanwhile, between this Publish's reads and the next one's.
		testcluster.Eventually(t, settle, "the news reached the leaving members", func() bool {
			return b.rec.gotNews(n) && c.rec.gotNews(n)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	testcluster.Eventually(t, settle, "a sees both members left", func() bool {
		return seesAs(a, "n1", StateLeft) && seesAs(a, "n2", StateLeft)
	})
}
