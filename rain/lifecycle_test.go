package rain

import (
	"errors"
	"strings"
	"testing"
)

// Every (status, event) pair, written out: a pair missing from a row is illegal.
func TestNext(t *testing.T) {
	legal := map[Status]map[Event]Status{
		Waiting:   {Prepare: Prepared, Cancel: Cancelled, Stop: Cancelled},
		Prepared:  {Start: Raining, Cancel: Cancelled, Stop: Cancelled},
		Raining:   {Finish: Finished, Stop: Finished},
		Finished:  {Settle: Settled},
		Settled:   {},
		Cancelled: {},
		"":        {},
		"bogus":   {},
	}
	events := []Event{Prepare, Start, Finish, Settle, Cancel, Stop, "", "abandon"}
	for from, row := range legal {
		for _, ev := range events {
			got, err := Next(from, ev)
			if want, ok := row[ev]; ok {
				if err != nil || got != want {
					t.Errorf("Next(%q, %q) = %q, %v; want %q", from, ev, got, err, want)
				}
				continue
			}
			if !errors.Is(err, ErrIllegalTransition) || got != from {
				t.Errorf("Next(%q, %q) = %q, %v; want %q, ErrIllegalTransition", from, ev, got, err, from)
			} else if msg := err.Error(); !strings.Contains(msg, string(from)) || !strings.Contains(msg, string(ev)) {
				t.Errorf("Next(%q, %q): message %q does not name the status and event", from, ev, msg)
			}
		}
	}
}

// A rain's whole life, and a repeated event refused at each step.
func TestNextOnce(t *testing.T) {
	st := Waiting
	for _, ev := range []Event{Prepare, Start, Finish, Settle} {
		next, err := Next(st, ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Next(next, ev); !errors.Is(err, ErrIllegalTransition) {
			t.Fatalf("%s twice: %v", ev, err)
		}
		st = next
	}
	if st != Settled || !st.Terminal() {
		t.Fatalf("ended %q", st)
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range []Status{Waiting, Prepared, Raining, Finished, Settled, Cancelled} {
		got, err := ParseStatus(string(s))
		if err != nil || got != s || !s.Valid() {
			t.Errorf("ParseStatus(%q) = %q, %v", s, got, err)
		}
		if want := s == Settled || s == Cancelled; s.Terminal() != want {
			t.Errorf("%q.Terminal() = %v", s, !want)
		}
	}
	for _, s := range []string{"", "WAITING", "Waiting", " waiting", "stopped", "canceled"} {
		if got, err := ParseStatus(s); !errors.Is(err, ErrUnknownStatus) || got != "" || Status(s).Valid() {
			t.Errorf("ParseStatus(%q) = %q, %v; want ErrUnknownStatus", s, got, err)
		}
	}
}
