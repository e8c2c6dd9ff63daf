package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// bench scale's flags: --help documents them and exits 0; a bad value is a usage error (2) that
// starts nothing.
func TestScaleFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"scale", "--help"}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "-members") || !strings.Contains(out.String(), "-wave") {
		t.Fatalf("--help: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, args := range [][]string{{"--members", "0"}, {"--members", "x"}, {"--wave", "-3"}, {"extra"}} {
		out.Reset()
		errb.Reset()
		if code := dispatch(context.Background(), append([]string{"scale"}, args...), &out, &errb); code != exitUsage ||
			!strings.Contains(errb.String(), "bench scale") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
