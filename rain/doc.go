// Package rain is redrain's domain core: a rain's configuration and its validation, the
// lifecycle state machine, the packet-amount generators (with redrain's own pinned PRNG) and
// slice planning. It does no I/O and has no clock: time and randomness come in as arguments.
package rain
