package node

import (
	"bytes"

	"redrain/internal/userid"
	"redrain/rain"
)

var (
	rainsPrefix = []byte("/v1/rains/")
	claimSuffix = []byte("/claim")
)

// parseRainPath splits "/v1/rains/{code}" or "/v1/rains/{code}/claim" into the code and whether
// it is a claim. ok is false for anything else, including a code that is not rain.ValidCode.
func parseRainPath(path []byte) (code []byte, claim, ok bool) {
	if !bytes.HasPrefix(path, rainsPrefix) {
		return nil, false, false
	}
	rest := path[len(rainsPrefix):]
	if bytes.HasSuffix(rest, claimSuffix) {
		rest, claim = rest[:len(rest)-len(claimSuffix)], true
	}
	if !rain.ValidCode(rest) {
		return nil, false, false
	}
	return rest, claim, true
}

// urlSafe reports whether every byte of b is base64url, as a node ID's must be (options.go).
func urlSafe(b []byte) bool { return rain.URLSafe(b) }

// parseUserID parses the X-User-Id header (see userid.Parse).
func parseUserID(b []byte) (uint64, bool) { return userid.Parse(b) }
