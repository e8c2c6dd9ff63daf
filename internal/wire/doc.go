// Package wire owns the internal protocol between the coordinator and the nodes: the message
// types of the /internal/v1 endpoints and their authentication (HMAC over method, request target
// with its query, time, nonce and body, checked in constant time within a replay window with a
// bounded nonce cache).
package wire
