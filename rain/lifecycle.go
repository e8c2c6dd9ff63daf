package rain

import (
	"errors"
	"fmt"
)

// Event is something that happens to a rain and may move it to another Status.
type Event string

// The lifecycle events of SPEC.md. An abandoned prepare (a missing ack) is no event: the rain
// simply stays waiting, and its epoch's slices are discarded.
const (
	Prepare Event = "prepare" // waiting -> prepared: every slice acknowledged
	Start   Event = "start"   // prepared -> raining
	Finish  Event = "finish"  // raining -> finished: duration over or all packets gone
	Settle  Event = "settle"  // finished -> settled: every slice holder flushed, or is dead
	Cancel  Event = "cancel"  // waiting or prepared -> cancelled
	Stop    Event = "stop"    // raining -> finished; waiting or prepared -> cancelled
)

// ErrIllegalTransition is returned (wrapped, naming the status and event) by Next for an event
// that does not apply to the status: out of order, repeated (start on raining), or unknown.
// The admin API answers it with 409.
var ErrIllegalTransition = errors.New("illegal transition")

// ErrUnknownStatus is returned (wrapped) by ParseStatus for a string that is not a Status.
var ErrUnknownStatus = errors.New("unknown status")

type transition struct {
	from Status
	ev   Event
}

// transitions is the whole state machine; every pair missing here is illegal.
var transitions = map[transition]Status{
	{Waiting, Prepare}: Prepared,
	{Prepared, Start}:  Raining,
	{Raining, Finish}:  Finished,
	{Finished, Settle}: Settled,
	{Waiting, Cancel}:  Cancelled,
	{Prepared, Cancel}: Cancelled,
	{Raining, Stop}:    Finished,
	{Waiting, Stop}:    Cancelled,
	{Prepared, Stop}:   Cancelled,
}

// Next returns the status that event ev leads to from status from, or from and an error
// wrapping ErrIllegalTransition. Each transition happens once: repeating an event is illegal.
func Next(from Status, ev Event) (Status, error) {
	to, ok := transitions[transition{from, ev}]
	if !ok {
		return from, fmt.Errorf("%w: %s when %s", ErrIllegalTransition, ev, from)
	}
	return to, nil
}

// ParseStatus maps a SPEC.md status string to a Status; its error wraps ErrUnknownStatus.
func ParseStatus(s string) (Status, error) {
	if st := Status(s); st.Valid() {
		return st, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownStatus, s)
}

// Valid reports whether s is one of the lifecycle states.
func (s Status) Valid() bool {
	switch s {
	case Waiting, Prepared, Raining, Finished, Settled, Cancelled:
		return true
	}
	return false
}

// Terminal reports whether no event can move s any more (settled or cancelled).
func (s Status) Terminal() bool {
	return s == Settled || s == Cancelled
}
