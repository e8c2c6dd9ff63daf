// Package cluster owns a local redrain cluster of real processes (redis-server or a Redis
// Cluster, a coordinator, nodes) for the tests and the bench tool, a local Redis Cluster
// (StartRedisCluster: start, find a slot's master, kill, fail over), and an HTTP client of the
// coordinator's admin API.
package cluster
