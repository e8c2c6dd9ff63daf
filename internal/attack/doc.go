// Package attack owns SPEC's abuse scenarios as client kits (a hammering user, bots, forged
// tokens, oversized requests, idle connections), shared by `bench run --attack` and the abuse tests.
package attack
