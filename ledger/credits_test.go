package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"redrain/rain"
)

const testInc = "00abcdef01234567"

func entry(node, inc, claims string) map[string]any {
	return map[string]any{FieldNode: node, FieldIncarnation: inc, FieldClaims: claims}
}

func TestDecodeCredits(t *testing.T) {
	got, err := DecodeCredits(entry("n1", testInc, "41:1001:250,42:7:13,900:18446744073709551615:1000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Credit{
		{ClaimID: "n1-00abcdef01234567-41", Node: "n1", Incarnation: 0x00abcdef01234567, Seq: 41, User: 1001, Amount: 250},
		{ClaimID: "n1-00abcdef01234567-42", Node: "n1", Incarnation: 0x00abcdef01234567, Seq: 42, User: 7, Amount: 13},
		{ClaimID: "n1-00abcdef01234567-900", Node: "n1", Incarnation: 0x00abcdef01234567, Seq: 900, User: ^uint64(0), Amount: rain.MaxTotalAmount},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeCredits =\n%+v\nwant\n%+v", got, want)
	}
	// The largest seq, and AppendCredits appending to what it is given.
	dst := []Credit{{ClaimID: "keep"}}
	dst, err = AppendCredits(dst, "n-2", "ffffffffffffffff", "18446744073709551615:1:1")
	if err != nil || len(dst) != 2 || dst[0].ClaimID != "keep" || dst[1].ClaimID != "n-2-ffffffffffffffff-18446744073709551615" {
		t.Fatalf("AppendCredits = %+v, %v", dst, err)
	}
}

func TestDecodeCreditsRefuses(t *testing.T) {
	many := strings.Repeat("1:1:1,", MaxFlushBatch) + "1:1:1"
	for _, c := range []struct {
		name   string
		values map[string]any
		want   string // in the error
	}{
		{"empty node", entry("", testInc, "1:2:3"), "empty node"},
		{"short incarnation", entry("n1", testInc[1:], "1:2:3"), "incarnation"},
		{"long incarnation", entry("n1", testInc+"0", "1:2:3"), "incarnation"},
		{"upper-case hex", entry("n1", "00ABCDEF01234567", "1:2:3"), "incarnation"},
		{"not hex", entry("n1", "00abcdef0123456g", "1:2:3"), "incarnation"},
		{"0x incarnation", entry("n1", "0x00abcdef012345", "1:2:3"), "incarnation"},
		{"empty claims", entry("n1", testInc, ""), "no claims"},
		{"lone comma", entry("n1", testInc, ","), "claim 0 is empty"},
		{"trailing comma", entry("n1", testInc, "1:2:3,"), "claim 1 is empty"},
		{"leading comma", entry("n1", testInc, ",1:2:3"), "claim 0 is empty"},
		{"double comma", entry("n1", testInc, "1:2:3,,4:5:6"), "claim 1 is empty"},
		{"two numbers", entry("n1", testInc, "1:2"), "not seq:user_id:amount"},
		{"four numbers", entry("n1", testInc, "1:2:3:4"), "not seq:user_id:amount"},
		{"seq 0", entry("n1", testInc, "0:2:3"), "not seq:user_id:amount"},
		{"user 0", entry("n1", testInc, "1:0:3"), "not seq:user_id:amount"},
		{"amount 0", entry("n1", testInc, "1:2:0"), "not seq:user_id:amount"},
		{"negative amount", entry("n1", testInc, "1:2:-3"), "not seq:user_id:amount"},
		{"leading zero", entry("n1", testInc, "01:2:3"), "not seq:user_id:amount"},
		{"plus sign", entry("n1", testInc, "1:+2:3"), "not seq:user_id:amount"},
		{"space", entry("n1", testInc, "1:2:3, 4:5:6"), "not seq:user_id:amount"},
		{"seq overflow", entry("n1", testInc, "18446744073709551616:1:1"), "not seq:user_id:amount"},
		{"user overflow", entry("n1", testInc, "1:99999999999999999999:1"), "not seq:user_id:amount"},
		{"amount past any rain", entry("n1", testInc, "1:1:1000000000001"), "amount 1000000000001 >"},
		{"seq repeated", entry("n1", testInc, "2:1:1,2:1:1"), "does not ascend"},
		{"seq descending", entry("n1", testInc, "3:1:1,2:1:1"), "does not ascend"},
		{"too many claims", entry("n1", testInc, many), "at most 10000"},
		{"extra field", map[string]any{FieldNode: "n1", FieldIncarnation: testInc, FieldClaims: "1:2:3", "v": "2"}, `unknown field "v"`},
		{"missing node", map[string]any{FieldIncarnation: testInc, FieldClaims: "1:2:3"}, "node missing"},
		{"missing incarnation", map[string]any{FieldNode: "n1", FieldClaims: "1:2:3"}, "incarnation missing"},
		{"missing claims", map[string]any{FieldNode: "n1", FieldIncarnation: testInc}, "claims missing"},
		{"bytes, not a string", map[string]any{FieldNode: "n1", FieldIncarnation: testInc, FieldClaims: []byte("1:2:3")}, "is a []uint8"},
		{"the old per-claim entry", map[string]any{"claim_id": "n1-" + testInc + "-1", "user_id": "2", "amount": "3", "node": "n1"}, "unknown field"},
		{"no fields", map[string]any{}, "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeCredits(c.values)
			if !errors.Is(err, ErrBadCredit) || !strings.Contains(err.Error(), c.want) || got != nil {
				t.Fatalf("DecodeCredits = %v, %v; want ErrBadCredit containing %q", got, err, c.want)
			}
		})
	}
	// A refused entry leaves what AppendCredits was given as it was.
	dst := []Credit{{ClaimID: "keep"}}
	if out, err := AppendCredits(dst, "n1", testInc, "1:2:3,2:2:0"); err == nil || len(out) != 1 || out[0].ClaimID != "keep" {
		t.Fatalf("AppendCredits of a bad entry = %+v, %v", out, err)
	}
	// An error message does not quote a whole (up to 600 KB) field.
	if _, err := AppendCredits(nil, "n1", testInc, strings.Repeat("x", 100_000)); err == nil || len(err.Error()) > 300 {
		t.Fatalf("error for a 100 KB bad claims field: %d bytes", len(err.Error()))
	}
}

// flusherEntry is the credit entry the flusher writes for claims (seq, user, amount), as the
// values XRANGE returns for it: node, incarnation and claims taken from build's script args.
func flusherEntry(node string, inc uint64, claims []Credit) map[string]any {
	var b flushBatch
	b.reset("r", 0)
	for _, c := range claims {
		b.add(c.Seq, Record{User: c.User, Amount: c.Amount})
	}
	_, args := b.build("field", node, inc)
	return entry(args[7].(string), string(args[8].([]byte)), string(args[9].([]byte)))
}

// FuzzDecodeCredits: decoding never panics, and an entry it accepts is exactly the one the
// flusher writes for the claims it returned (one canonical form: what decodes re-encodes).
func FuzzDecodeCredits(f *testing.F) {
	for _, s := range [][3]string{
		{"n1", testInc, "41:1001:250,42:7:13"},
		{"n1", testInc, "1:2:3"},
		{"n1", "ffffffffffffffff", "18446744073709551615:18446744073709551615:1000000000000"},
		{"n1", testInc, "1:2:3,"},
		{"n1", testInc, "2:1:1,2:1:1"},
		{"n1", testInc, "01:2:3"},
		{"", testInc, "1:2:3"},
		{"n1", "00ABCDEF01234567", "1:2:3"},
		{"n1", testInc, "1:2:3:4,5:6:7"},
		{"n1", testInc, ",,,"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, node, inc, claims string) {
		got, err := DecodeCredits(entry(node, inc, claims))
		if err != nil {
			if !errors.Is(err, ErrBadCredit) || got != nil {
				t.Fatalf("refusal %v does not wrap ErrBadCredit, or returned %v", err, got)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("an accepted entry with no claims")
		}
		back := flusherEntry(node, got[0].Incarnation, got)
		if !reflect.DeepEqual(back, entry(node, inc, claims)) {
			t.Fatalf("decoded %q %q %q, re-encoded %v", node, inc, claims, back)
		}
		for _, c := range got {
			if c.ClaimID != string(AppendClaimID(nil, node, c.Incarnation, c.Seq)) || c.Node != node ||
				c.User == 0 || c.Amount < 1 || c.Amount > rain.MaxTotalAmount {
				t.Fatalf("decoded claim %+v of %q %q %q", c, node, inc, claims)
			}
		}
	})
}

// FuzzCreditsRoundTrip: claims encoded by the flusher decode to themselves. data gives the
// claims, 17 bytes each: seq step (1 byte), user (8), amount (8).
func FuzzCreditsRoundTrip(f *testing.F) {
	f.Add("n1", uint64(0x00abcdef01234567), uint64(0), []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("node-with-dashes_9", ^uint64(0), ^uint64(0)-300, make([]byte, 17*20))
	f.Add("n", uint64(1), uint64(1<<40), []byte("claims of many sizes: 1, 12, 123, 1234 ..."))
	f.Fuzz(func(t *testing.T, node string, inc, seq uint64, data []byte) {
		if node == "" {
			node = "n"
		}
		var want []Credit
		for ; len(data) >= 17 && len(want) < MaxFlushBatch; data = data[17:] {
			step := uint64(data[0]) + 1
			if seq > ^uint64(0)-step {
				break
			}
			seq += step
			user := max(binary.BigEndian.Uint64(data[1:]), 1)
			amount := int64(binary.BigEndian.Uint64(data[9:])%rain.MaxTotalAmount) + 1
			want = append(want, Credit{ClaimID: string(AppendClaimID(nil, node, inc, seq)), Node: node,
				Incarnation: inc, Seq: seq, User: user, Amount: amount})
		}
		if len(want) == 0 {
			return
		}
		got, err := DecodeCredits(flusherEntry(node, inc, want))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %d claims: %v\ngot  %+v\nwant %+v", len(want), err, clipCredits(got), clipCredits(want))
		}
	})
}

func clipCredits(cs []Credit) string {
	if len(cs) > 3 {
		return fmt.Sprintf("%+v ... (%d)", cs[:3], len(cs))
	}
	return fmt.Sprintf("%+v", cs)
}

// Decoding allocates per entry, not per claim: the claims slice and one string of claim ids.
func BenchmarkDecodeCredits(b *testing.B) {
	claims := make([]Credit, 1000)
	for i := range claims {
		claims[i] = Credit{Seq: uint64(1_000_000 + i), User: uint64(7_000_000_000 + i*37), Amount: int64(1 + i%997)}
	}
	e := flusherEntry("n1", 0x00abcdef01234567, claims)
	var dst []Credit
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var err error
		if dst, err = AppendCredits(dst[:0], "n1", e[FieldIncarnation].(string), e[FieldClaims].(string)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(claims)), "ns/claim")
}
