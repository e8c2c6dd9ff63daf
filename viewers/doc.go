// Package viewers is test-only: the viewers' room event streams (GET /v1/rooms/{room_id}/events)
// and the coordinator's transitions behind them, against a real coordinator, real nodes and a
// real redis-server as processes on 127.0.0.1 (internal/testlocal).
package viewers
