// Package flagenv lets every command-line flag also be set from the environment: flag
// "admin-token" reads PREFIX+"ADMIN_TOKEN". A flag given on the command line wins over its
// environment variable; a bad value from either is an error naming the flag (and the variable).
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// ErrEnv is wrapped by the error Parse returns for a bad environment value.
var ErrEnv = errors.New("flagenv: bad environment value")

// EnvName is the environment variable of flag name: prefix + name upper-cased, '-' as '_'.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then sets every flag not given in args from its environment
// variable (see EnvName), if that variable is set.
func Parse(fs *flag.FlagSet, args []string, prefix string) error {
	return ParseLookup(fs, args, prefix, os.LookupEnv)
}

// ParseLookup is Parse with the environment read through lookup (for tests).
func ParseLookup(fs *flag.FlagSet, args []string, prefix string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		v, ok := lookup(name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%w: %s (flag -%s): %v", ErrEnv, name, f.Name, e)
		}
	})
	return err
}

// List splits a comma-separated flag value, trimming spaces and dropping empty items.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
