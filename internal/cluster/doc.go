// Package cluster owns a local redrain cluster of real processes (redis-server or a Redis
// Cluster (internal/rediscluster), a coordinator, nodes) for the tests and the bench tool, and an
// HTTP client of the coordinator's admin API.
package cluster
