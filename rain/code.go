package rain

// MaxCodeLen is the longest valid rain code: the coordinator issues 16 random bytes in unpadded
// base64url, which is 22 characters. A longer code can name no rain, so every place that takes
// a code (a node's path, the admin API, the journal, gossip news) refuses it without a lookup.
const MaxCodeLen = 22

// ValidCode reports whether code is a valid rain code: 1..MaxCodeLen characters of the
// base64url alphabet (A-Z a-z 0-9 - _). Such a code is safe in a URL path and, having no
// braces, as a Redis hash tag.
func ValidCode[S ~string | ~[]byte](code S) bool {
	return len(code) > 0 && len(code) <= MaxCodeLen && URLSafe(code)
}

// URLSafe reports whether every byte of s is in the base64url alphabet (A-Z a-z 0-9 - _), as
// in a rain code or a node ID.
func URLSafe[S ~string | ~[]byte](s S) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
