package cli

import (
	"errors"
	"fmt"
	"testing"
)

func TestUsageLineNamesTheProgramOnce(t *testing.T) {
	for _, tc := range []struct {
		prog string
		err  error
		want string
	}{
		{"node", errors.New("node: bad options: http: required"), "node: bad options: http: required"},
		{"node", fmt.Errorf("%w: gossip: x", errors.New("node: bad options")), "node: bad options: gossip: x"},
		{"coordinator", errors.New("coordinator: cannot listen: HTTPAddr x"), "coordinator: cannot listen: HTTPAddr x"},
		{"coordinator", errors.New("flag provided but not defined: -x"), "coordinator: flag provided but not defined: -x"},
		{"node", errors.New("nodes: 1"), "node: nodes: 1"},
		{"node", errors.New("a\nb"), "node: a b"},
	} {
		if got := UsageLine(tc.prog, tc.err); got != tc.want {
			t.Errorf("UsageLine(%q, %q) = %q, want %q", tc.prog, tc.err, got, tc.want)
		}
	}
}
