// Package bench is the load tool, a leaf nothing imports: load driver, Redis-list baseline server,
// run/compare/ceiling and their results, charts, CPU pinning (cluster, checker, kits: internal/).
package bench
