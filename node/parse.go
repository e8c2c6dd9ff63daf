package node

import (
	"bytes"

	"redrain/internal/userid"
)

// MaxCodeLen bounds a rain code in a path; real codes are 22 characters.
const MaxCodeLen = 64

var (
	rainsPrefix = []byte("/v1/rains/")
	claimSuffix = []byte("/claim")
)

// parseRainPath splits "/v1/rains/{code}" or "/v1/rains/{code}/claim" into the code and whether
// it is a claim. ok is false for anything else, including an empty, long or non-URL-safe code.
func parseRainPath(path []byte) (code []byte, claim, ok bool) {
	if !bytes.HasPrefix(path, rainsPrefix) {
		return nil, false, false
	}
	rest := path[len(rainsPrefix):]
	if bytes.HasSuffix(rest, claimSuffix) {
		rest, claim = rest[:len(rest)-len(claimSuffix)], true
	}
	if !validCode(rest) {
		return nil, false, false
	}
	return rest, claim, true
}

// validCode reports whether b is a plausible rain code: 1..MaxCodeLen URL-safe base64 characters.
func validCode(b []byte) bool {
	if len(b) == 0 || len(b) > MaxCodeLen {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// parseUserID parses the X-User-Id header (see userid.Parse).
func parseUserID(b []byte) (uint64, bool) { return userid.Parse(b) }
