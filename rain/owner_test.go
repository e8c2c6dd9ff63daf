package rain

import (
	"math"
	"slices"
	"testing"
)

func TestOwnerOf(t *testing.T) {
	holders := []string{"n1", "n2", "n3"}
	cases := []struct {
		holders []string
		code    string
		user    uint64
		want    string
	}{
		{nil, "abc", 1, ""},
		{[]string{"solo"}, "abc", 42, "solo"},
		// Pinned: a change of the hash moves users between owners of running rains (a rolling
		// upgrade would count a user in two places).
		{holders, "abc", 1, OwnerOf(holders, "abc", 1)},
	}
	for _, c := range cases {
		if got := OwnerOf(c.holders, c.code, c.user); got != c.want {
			t.Errorf("OwnerOf(%v, %q, %d) = %q, want %q", c.holders, c.code, c.user, got, c.want)
		}
	}
	pinned := map[uint64]string{}
	for u := uint64(1); u <= 8; u++ {
		pinned[u] = OwnerOf(holders, "pinnedRainCode", u)
	}
	want := map[uint64]string{1: "n2", 2: "n2", 3: "n1", 4: "n1", 5: "n1", 6: "n1", 7: "n3", 8: "n1"}
	for u, w := range want {
		if pinned[u] != w {
			t.Errorf("owner of user %d in pinnedRainCode: %q, want %q (the hash changed)", u, pinned[u], w)
		}
	}
	// The order holders are listed in does not matter: they are sorted, repeats dropped.
	o := NewOwners("abc", []string{"n3", "n1", "n2", "n1"})
	if !slices.Equal(o.IDs(), holders) {
		t.Fatalf("ids %v", o.IDs())
	}
	for u := uint64(1); u < 10_000; u++ {
		if got, want := o.IDs()[o.Index(u)], OwnerOf(holders, "abc", u); got != want {
			t.Fatalf("user %d: Owners says %s, OwnerOf %s", u, got, want)
		}
	}
	if NewOwners("abc", nil).Index(1) != -1 {
		t.Fatal("an owner among no holders")
	}
}

// Users spread evenly over the holders (sequential ids, as platforms hand them out), differ per
// rain, and removing a holder moves only the users it owned.
func TestOwnerSpreadAndRemoval(t *testing.T) {
	const users = 60_000
	holders := []string{"n1", "n2", "n3", "n4", "n5", "n6"}
	count := map[string]int{}
	sameAcrossRains := 0
	for u := uint64(1); u <= users; u++ {
		o := OwnerOf(holders, "rainA", u)
		count[o]++
		if OwnerOf(holders, "rainB", u) == o {
			sameAcrossRains++
		}
	}
	mean := float64(users) / float64(len(holders))
	for _, h := range holders {
		if d := math.Abs(float64(count[h])-mean) / mean; d > 0.03 {
			t.Errorf("holder %s owns %d users, %.1f%% off the mean %.0f", h, count[h], 100*d, mean)
		}
	}
	if f := float64(sameAcrossRains) / users; math.Abs(f-1/6.0) > 0.02 {
		t.Errorf("%.3f of users have the same owner in two rains, want about 1/6", f)
	}
	less := []string{"n1", "n2", "n4", "n5", "n6"} // n3 gone
	moved := 0
	for u := uint64(1); u <= users; u++ {
		before, after := OwnerOf(holders, "rainA", u), OwnerOf(less, "rainA", u)
		if before != after {
			if before != "n3" {
				t.Fatalf("user %d moved from %s to %s though %s stayed", u, before, after, before)
			}
			moved++
		}
	}
	if moved != count["n3"] {
		t.Fatalf("%d users moved, n3 owned %d", moved, count["n3"])
	}
}
