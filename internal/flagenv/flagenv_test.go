package flagenv

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"testing"
	"time"
)

func newSet() (*flag.FlagSet, *string, *string, *time.Duration) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tok := fs.String("admin-token", "", "")
	http := fs.String("http", "127.0.0.1:9090", "")
	d := fs.Duration("prepare-timeout", time.Second, "")
	return fs, tok, http, d
}

func TestParse(t *testing.T) {
	env := map[string]string{"REDRAIN_ADMIN_TOKEN": "from-env", "REDRAIN_HTTP": "env:1", "OTHER": "x"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fs, tok, http, d := newSet()
	if err := ParseLookup(fs, []string{"--http", "cli:2"}, "REDRAIN_", lookup); err != nil {
		t.Fatal(err)
	}
	if *tok != "from-env" || *http != "cli:2" || *d != time.Second {
		t.Fatalf("got token %q http %q timeout %v", *tok, *http, *d)
	}

	env["REDRAIN_PREPARE_TIMEOUT"] = "soon"
	fs, _, _, _ = newSet()
	if err := ParseLookup(fs, nil, "REDRAIN_", lookup); !errors.Is(err, ErrEnv) {
		t.Fatalf("bad env value: got %v, want ErrEnv", err)
	}
	fs, _, _, d = newSet()
	if err := ParseLookup(fs, []string{"-prepare-timeout=3s"}, "REDRAIN_", lookup); err != nil || *d != 3*time.Second {
		t.Fatalf("command line must win over a bad env value: %v %v", err, *d)
	}
	fs, _, _, _ = newSet()
	if err := ParseLookup(fs, []string{"--nope"}, "REDRAIN_", lookup); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestEnvNameAndList(t *testing.T) {
	if got := EnvName("REDRAIN_", "admin-token"); got != "REDRAIN_ADMIN_TOKEN" {
		t.Fatal(got)
	}
	if got := List(" a:1, ,b:2,"); !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Fatal(got)
	}
	if got := List(""); got != nil {
		t.Fatal(got)
	}
}
