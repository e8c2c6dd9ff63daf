package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"redrain/rain"
)

// A credit-stream entry (SPEC.md "Redis") holds one flush batch of one journal: three fields,
//
//	node         the node id
//	incarnation  the journal's incarnation, 16 lowercase hex digits
//	claims       "seq:user_id:amount" items in decimal, ascending seq, joined by ','
//
// e.g. node=n1 incarnation=00abcdef01234567 claims=41:1001:250,42:7:13. Each item is one claim
// whose claim_id is "<node>-<incarnation>-<seq>" (n1-00abcdef01234567-41), the id its client
// was answered. The flusher writes at most MaxFlushBatch items per entry.

// Credit is one claim of a credit-stream entry.
type Credit struct {
	// ClaimID is "<node>-<incarnation>-<seq>", the claim_id the client was answered: unique
	// cluster-wide for ever, so a wallet that credits each ClaimID once credits each claim once.
	ClaimID     string
	Node        string
	Incarnation uint64
	Seq         uint64 // the claim's journal sequence, >= 1
	User        uint64 // user_id, >= 1
	Amount      int64  // cents, 1..rain.MaxTotalAmount
}

// DecodeCredits decodes one entry of a rain's credit stream, as go-redis returns it
// (XMessage.Values), into its claims in ascending Seq. It is strict, and every refusal wraps
// ErrBadCredit: the entry must have exactly the fields node (non-empty), incarnation and claims,
// each a string. A field it does not know is refused rather than ignored: a later format will
// add one, and a wallet must stop on an entry it was not written for rather than credit part
// of it. See AppendCredits for the rules of the fields.
func DecodeCredits(values map[string]any) ([]Credit, error) {
	var node, inc, claims string
	for k, v := range values {
		s, ok := v.(string)
		var dst *string
		switch k {
		case FieldNode:
			dst = &node
		case FieldIncarnation:
			dst = &inc
		case FieldClaims:
			dst = &claims
		default:
			return nil, fmt.Errorf("%w: unknown field %q", ErrBadCredit, clip(k))
		}
		if !ok {
			return nil, fmt.Errorf("%w: field %s is a %T, want a string", ErrBadCredit, k, v)
		}
		*dst = s
	}
	for _, f := range [...]string{FieldNode, FieldIncarnation, FieldClaims} {
		if _, ok := values[f]; !ok {
			return nil, fmt.Errorf("%w: field %s missing", ErrBadCredit, f)
		}
	}
	return AppendCredits(nil, node, inc, claims)
}

// AppendCredits decodes an entry given as its three field values and appends its claims to
// dst (a consumer may reuse one slice across entries). node must not be empty; incarnation is
// exactly 16 lowercase hex digits; claims is one or more items "seq:user_id:amount", joined by
// single commas (no empty item, no trailing comma, no spaces), at most MaxFlushBatch of them,
// each number in canonical decimal (no sign, no leading zero), seq >= 1 and strictly ascending,
// user_id >= 1, amount in 1..rain.MaxTotalAmount. On error dst is returned as it was given.
// The ClaimIDs of one call share one allocation.
func AppendCredits(dst []Credit, node, incarnation, claims string) ([]Credit, error) {
	if node == "" {
		return dst, fmt.Errorf("%w: empty node", ErrBadCredit)
	}
	inc, ok := parseHex16(incarnation)
	if !ok {
		return dst, fmt.Errorf("%w: incarnation %q is not 16 lowercase hex digits", ErrBadCredit, clip(incarnation))
	}
	if claims == "" {
		return dst, fmt.Errorf("%w: no claims", ErrBadCredit)
	}
	if n := strings.Count(claims, ",") + 1; n > MaxFlushBatch {
		return dst, fmt.Errorf("%w: %d claims in one entry, at most %d", ErrBadCredit, n, MaxFlushBatch)
	}
	from := len(dst)
	out, err := parseClaims(dst, claims)
	if err != nil {
		return dst[:from], err
	}
	setClaimIDs(out[from:], node, inc)
	return out, nil
}

// parseClaims appends the claims field's items to dst (Seq, User, Amount).
func parseClaims(dst []Credit, claims string) ([]Credit, error) {
	var prev uint64
	for i := 0; ; i++ {
		item, rest, more := strings.Cut(claims, ",")
		seqS, tail, ok1 := strings.Cut(item, ":")
		userS, amountS, ok2 := strings.Cut(tail, ":")
		seq, ok3 := parseDecimal(seqS)
		user, ok4 := parseDecimal(userS)
		amount, ok5 := parseDecimal(amountS)
		switch {
		case item == "":
			return dst, fmt.Errorf("%w: claim %d is empty", ErrBadCredit, i)
		case !(ok1 && ok2 && ok3 && ok4 && ok5):
			return dst, fmt.Errorf("%w: claim %d %q is not seq:user_id:amount, each a decimal > 0", ErrBadCredit, i, clip(item))
		case seq <= prev:
			return dst, fmt.Errorf("%w: claim %d: seq %d does not ascend (after %d)", ErrBadCredit, i, seq, prev)
		case amount > rain.MaxTotalAmount:
			return dst, fmt.Errorf("%w: claim %d: amount %d > %d", ErrBadCredit, i, amount, int64(rain.MaxTotalAmount))
		}
		dst = append(dst, Credit{Seq: seq, User: user, Amount: int64(amount)})
		if !more {
			return dst, nil
		}
		prev, claims = seq, rest
	}
}

// setClaimIDs fills Node, Incarnation and ClaimID of cs, the ids cut from one string.
func setClaimIDs(cs []Credit, node string, inc uint64) {
	prefix := len(node) + 1 + 16 + 1 // "<node>-<incarnation>-"
	buf := make([]byte, 0, len(cs)*(prefix+20))
	ends := make([]int, len(cs))
	for i, c := range cs {
		if i == 0 {
			buf = AppendClaimID(buf, node, inc, c.Seq)
		} else {
			buf = strconv.AppendUint(append(buf, buf[:prefix]...), c.Seq, 10)
		}
		ends[i] = len(buf)
	}
	ids, start := string(buf), 0
	for i := range cs {
		cs[i].ClaimID, cs[i].Node, cs[i].Incarnation = ids[start:ends[i]], node, inc
		start = ends[i]
	}
}

// appendClaimItem appends one item of a claims field: "seq:user_id:amount" in decimal.
func appendClaimItem(dst []byte, seq, user uint64, amount int64) []byte {
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, user, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, amount, 10)
}

// parseDecimal reads a canonical decimal > 0: 1 to 20 digits, the first not '0', no overflow.
func parseDecimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 20 || s[0] == '0' {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := uint64(s[i] - '0')
		if s[i] < '0' || s[i] > '9' || v > (^uint64(0)-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseHex16 reads exactly 16 lowercase hex digits (appendHex16's form).
func parseHex16(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// clip shortens a bad value for an error message: a claims field may be hundreds of KB.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
