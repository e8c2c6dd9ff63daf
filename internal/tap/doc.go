// Package tap owns the test clients of the claim API: Claimer (one claim, its answer parsed by
// ParseAnswer without allocating), Route (a user's node) and Tapper (users claiming in the background).
package tap
