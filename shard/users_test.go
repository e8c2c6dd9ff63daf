package shard

import (
	"math/rand/v2"
	"testing"
)

// TestTableAgainstMap drives the open-addressing table and a map with the same random
// inserts, updates and deletes, over few and clustered keys so probe runs wrap and collide.
func TestTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var tb table
	m := map[uint64]uint16{}
	for op := range 200_000 {
		user := uint64(rng.IntN(300)) << (rng.IntN(2) * 40) // small ids and ids with zero low bits
		h := hashUser(user)
		if rng.IntN(2) == 0 {
			tb.slot(h, user).count++
			m[user]++
		} else if i, ok := tb.find(h, user); ok {
			if tb.slots[i].count--; tb.slots[i].count == 0 {
				tb.remove(i)
			}
			if m[user]--; m[user] == 0 {
				delete(m, user)
			}
		} else if m[user] != 0 {
			t.Fatalf("op %d: user %d lost (map count %d)", op, user, m[user])
		}
		if op%1000 == 0 || op > 199_000 {
			checkTable(t, &tb, m)
		}
	}
}

func checkTable(t *testing.T, tb *table, m map[uint64]uint16) {
	t.Helper()
	if tb.used != len(m) {
		t.Fatalf("table holds %d users, map %d", tb.used, len(m))
	}
	n := 0
	for _, s := range tb.slots {
		if s.count > 0 {
			n++
		}
	}
	if n != len(m) || len(tb.slots) > 0 && tb.used*4 > len(tb.slots)*3 {
		t.Fatalf("%d occupied slots of %d, used %d", n, len(tb.slots), tb.used)
	}
	for user, c := range m {
		i, ok := tb.find(hashUser(user), user)
		if !ok || tb.slots[i].count != c {
			t.Fatalf("user %d: found %v count %d, want %d", user, ok, tb.slots[i].count, c)
		}
	}
}
