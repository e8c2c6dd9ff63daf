// Package abuse holds redrain's attack tests: a real cluster in token mode with per-address
// limits, honest users and bots on distinct 127.0.0.x addresses, and these attacks
// (a hammering bot, a thousand bot ids from one address, forged and foreign tokens, oversized
// requests, idle connections); each checks that no bot beats its cap, no forged claim succeeds,
// and honest users' latency holds.
package abuse
