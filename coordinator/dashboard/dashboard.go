// Package dashboard holds the coordinator's operator dashboard: a page and its assets, plain
// HTML, CSS and JavaScript embedded in the binary (nothing is fetched from anywhere else), and
// the headers they are served with. The page asks for the admin token in a login form, keeps it
// in sessionStorage and calls the admin API with it as the bearer header; the assets themselves
// are public (SPEC.md) and hold nothing secret.
//
// Only the paths in the table below are served, each by exact match on the raw path: anything
// else, under /dashboard/ or not, is not an asset and is left to the admin API's router (so it
// is 401 without the token, like any unknown path). The package knows nothing of HTTP errors:
// the coordinator answers a wrong method with its own error format.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed static
var static embed.FS

// Prefix is where the assets other than the page live.
const Prefix = "/dashboard/"

// files maps each served path to its embedded file and content type: the whole list of what
// is served. A file embedded but not listed (or listed but missing) fails at init, and the
// tests check both ways.
var files = map[string]struct{ name, contentType string }{
	"/":                    {"index.html", "text/html; charset=utf-8"},
	Prefix + "app.css":     {"app.css", "text/css; charset=utf-8"},
	Prefix + "app.js":      {"app.js", "text/javascript; charset=utf-8"},
	Prefix + "chart.js":    {"chart.js", "text/javascript; charset=utf-8"},
	Prefix + "favicon.svg": {"favicon.svg", "image/svg+xml"},
}

// CSP is the Content-Security-Policy of every asset: scripts, styles and images from this
// origin only (no inline script or style, no eval), API calls to this origin only, no forms
// submitted by the browser (the page's forms are sent by its script), no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// CacheControl makes a browser revalidate every asset (its ETag) before reusing it: the names
// carry no version, so a new binary's assets are picked up at once, and an unchanged one costs a 304.
const CacheControl = "no-cache"

// Asset is one served file.
type Asset struct {
	Path        string // the raw path it is served at
	ContentType string
	ETag        string // strong, quoted: a hash of Body
	Body        []byte
}

var assets = load()

func load() map[string]*Asset {
	out := make(map[string]*Asset, len(files))
	for path, f := range files {
		b, err := static.ReadFile("static/" + f.name)
		if err != nil {
			panic("dashboard: " + path + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		out[path] = &Asset{Path: path, ContentType: f.contentType, Body: b,
			ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	if err := checkEmbedded(); err != nil {
		panic("dashboard: " + err.Error())
	}
	return out
}

// checkEmbedded is an error if a file is embedded but not served.
func checkEmbedded() error {
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.name] = true
	}
	return fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if name := strings.TrimPrefix(p, "static/"); !listed[name] {
			return fmt.Errorf("%s is embedded but served at no path", name)
		}
		return nil
	})
}

// Lookup returns the asset served at the raw path, or nil.
func Lookup(path string) *Asset { return assets[path] }

// Paths lists every served path, sorted.
func Paths() []string {
	out := make([]string, 0, len(assets))
	for p := range assets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Write answers a GET or HEAD of a: 200 with the body, or 304 when the request's If-None-Match
// names a's ETag. Every answer carries the security and cache headers.
func (a *Asset) Write(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", CacheControl)
	h.Set("ETag", a.ETag)
	if matches(ctx.Request.Header.Peek("If-None-Match"), a.ETag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(a.ContentType)
	ctx.SetBody(a.Body)
}

// matches reports whether an If-None-Match value names etag (weak comparison, RFC 9110 13.1.2).
func matches(inm []byte, etag string) bool {
	for _, t := range strings.Split(string(inm), ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
