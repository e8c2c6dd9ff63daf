package dashboard

import (
	"regexp"
	"strings"
	"testing"
)

func TestEveryEmbeddedFileIsServed(t *testing.T) {
	if err := checkEmbedded(); err != nil {
		t.Fatal(err)
	}
	if len(Paths()) != len(files) {
		t.Fatalf("%d paths for %d files", len(Paths()), len(files))
	}
	for _, p := range Paths() {
		if p != "/" && !strings.HasPrefix(p, Prefix) {
			t.Errorf("%s is outside %s", p, Prefix)
		}
		if a := Lookup(p); a == nil || len(a.Body) == 0 || a.ContentType == "" {
			t.Errorf("%s: empty asset", p)
		}
	}
	for _, p := range []string{"", "/index.html", Prefix, Prefix + "index.html", "/app.js", Prefix + "static/app.js"} {
		if Lookup(p) != nil {
			t.Errorf("%q is served", p)
		}
	}
}

var (
	tagRe  = regexp.MustCompile(`(?is)<(script|style|link|img)\b[^>]*>`)
	attrRe = regexp.MustCompile(`(?i)\s(src|href)="([^"]*)"`)
	// inline code the CSP would block (and that must therefore not be relied on)
	inlineRe = regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]|<style\b|\son[a-z]+\s*=|\sstyle\s*=|javascript:`)
)

// The page has no inline script, style or handler (the CSP forbids them: they would silently
// not run), and every file it references is one that is served.
func TestPageReferencesOnlyServedAssets(t *testing.T) {
	page := string(Lookup("/").Body)
	if m := inlineRe.FindString(page); m != "" {
		t.Fatalf("inline code in the page: %q", m)
	}
	refs := 0
	for _, tag := range tagRe.FindAllString(page, -1) {
		for _, m := range attrRe.FindAllStringSubmatch(tag, -1) {
			refs++
			if Lookup(m[2]) == nil {
				t.Errorf("%s references %s, which is not served", tag, m[2])
			}
		}
	}
	if refs < 4 {
		t.Fatalf("found %d references in the page", refs)
	}
	for _, p := range Paths() {
		if p != "/" && !strings.Contains(page, `"`+p+`"`) {
			t.Errorf("%s is served but the page never uses it", p)
		}
	}
}

// The scripts keep the token out of URLs and storage that outlives the tab, and build no code
// or markup from strings (the CSP has no unsafe-eval; text goes in with textContent).
func TestScriptsAvoidUnsafeAPIs(t *testing.T) {
	for _, p := range Paths() {
		a := Lookup(p)
		if !strings.HasPrefix(a.ContentType, "text/javascript") {
			continue
		}
		src := string(a.Body)
		for _, bad := range []string{"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML",
			"document.write", "localStorage", "document.cookie", "setAttribute(\"style", "?token", "&token", "http://", "https://"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %q", p, bad)
			}
		}
	}
	app := string(Lookup(Prefix + "app.js").Body)
	for _, want := range []string{"sessionStorage", `"Authorization": "Bearer "`} {
		if !strings.Contains(app, want) {
			t.Errorf("app.js lacks %q", want)
		}
	}
}

func TestIfNoneMatch(t *testing.T) {
	const e = `"abc"`
	for _, tc := range []struct {
		inm  string
		want bool
	}{
		{`"abc"`, true}, {`W/"abc"`, true}, {`"x", "abc"`, true}, {`*`, true}, {` "abc" `, true},
		{``, false}, {`"abcd"`, false}, {`abc`, false}, {`"ab"`, false}, {`w/"abc"`, false},
	} {
		if got := matches([]byte(tc.inm), e); got != tc.want {
			t.Errorf("If-None-Match %q: %v, want %v", tc.inm, got, tc.want)
		}
	}
}

// FuzzIfNoneMatch: any header value is read without failing, and names the ETag only if it
// holds it (or "*"); the ETag alone, weak or in a list, always matches.
func FuzzIfNoneMatch(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"abc"`, `"x", "abc"`, `*`, ``, `,,,`, `W/`, `"abc`, "\"abc\"\x00"} {
		f.Add(s)
	}
	const e = `"abc"`
	f.Fuzz(func(t *testing.T, inm string) {
		if matches([]byte(inm), e) && !strings.Contains(inm, e) && !strings.Contains(inm, "*") {
			t.Fatalf("%q matches %s", inm, e)
		}
		if !strings.Contains(inm, ",") && !matches([]byte(inm+", "+e), e) {
			t.Fatalf("%q, %s does not match %s", inm, e, e)
		}
	})
}
