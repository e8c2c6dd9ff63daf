// Package bench is redrain's load tool and a leaf nothing imports: the load driver, the Redis-list
// baseline server, `run`/`compare`/`ceiling` with their results, charts and CPU pinning. The
// local cluster, the claim client, the invariant checker, chaos and attack kits it drives live
// in internal/ packages it shares with the tests.
package bench
