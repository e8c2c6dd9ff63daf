package ledger

import (
	"errors"
	"regexp"
	"testing"

	"redrain/rain"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Slice: 0, Epoch: 0, Index: 0, User: 1, Amount: 1, UnixNano: 0},
		{Slice: 7, Epoch: 3, Index: 19999, User: 1 << 63, Amount: 1_000_000_000_000, UnixNano: -1},
		{Slice: ^uint32(0), Epoch: ^uint64(0), Index: ^uint32(0), User: ^uint64(0), Amount: 42, UnixNano: 1 << 62},
	} {
		b := EncodeRecord(nil, r)
		if len(b) != RecordSize {
			t.Fatalf("encoded %d bytes, want %d", len(b), RecordSize)
		}
		got, err := DecodeRecord(b)
		if err != nil || got != r {
			t.Fatalf("DecodeRecord(EncodeRecord(%+v)) = %+v, %v", r, got, err)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := EncodeRecord(nil, Record{Slice: 1, Epoch: 2, Index: 3, User: 4, Amount: 5, UnixNano: 6})
	flip := func(i int) []byte { b := append([]byte(nil), good...); b[i] ^= 1; return b }
	cases := map[string][]byte{
		"empty":          nil,
		"short":          good[:RecordSize-1],
		"long":           append(append([]byte(nil), good...), 0),
		"version":        flip(0),
		"payload bit":    flip(20),
		"checksum bit":   flip(RecordSize - 1),
		"zero user":      EncodeRecord(nil, Record{User: 0, Amount: 5}),
		"zero amount":    EncodeRecord(nil, Record{User: 1, Amount: 0}),
		"negative":       EncodeRecord(nil, Record{User: 1, Amount: -5}),
		"amount > 10^12": EncodeRecord(nil, Record{User: 1, Amount: 1_000_000_000_001}),
	}
	for name, b := range cases {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: err = %v, want ErrBadRecord", name, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(nil, Record{Slice: 1, Epoch: 2, Index: 3, User: 4, Amount: 5, UnixNano: 6}))
	f.Add(EncodeRecord(nil, Record{Slice: ^uint32(0), Epoch: ^uint64(0), User: ^uint64(0), Amount: 1_000_000_000_000, UnixNano: -1}))
	f.Add([]byte{})
	f.Add(make([]byte, RecordSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		if r.User == 0 || r.Amount < 1 {
			t.Fatalf("accepted invalid %+v", r)
		}
		if again := EncodeRecord(nil, r); string(again) != string(b) {
			t.Fatalf("re-encoding %+v gives %x, decoded from %x", r, again, b)
		}
	})
}

func TestRecordValidate(t *testing.T) {
	long := string(make([]byte, rain.MaxCodeLen+1))
	for _, r := range []Record{
		{Code: "", User: 1, Amount: 1},
		{Code: long, User: 1, Amount: 1},
		{Code: "a}b", User: 1, Amount: 1},
		{Code: "{ab", User: 1, Amount: 1},
		{Code: "c", User: 0, Amount: 1},
		{Code: "c", User: 1, Amount: 0},
		{Code: "c", User: 1, Amount: 1_000_000_000_001},
	} {
		if err := r.Validate(); !errors.Is(err, ErrBadRecord) {
			t.Errorf("Validate(%+v) = %v, want ErrBadRecord", r, err)
		}
	}
}

func TestAppendClaimID(t *testing.T) {
	got := string(AppendClaimID([]byte("x:"), "n1", 0x00ab_cdef_0123_4567, 42))
	if want := "x:n1-00abcdef01234567-42"; got != want {
		t.Fatalf("AppendClaimID = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^n7-[0-9a-f]{16}-18446744073709551615$`).MatchString(string(AppendClaimID(nil, "n7", ^uint64(0), ^uint64(0)))) {
		t.Fatal("max claim id malformed")
	}
	if got := MarkerField("n1", 0xff); got != "n1.00000000000000ff" {
		t.Fatalf("MarkerField = %q", got)
	}
}

func TestKeys(t *testing.T) {
	k := Keys("AbC_9")
	for got, want := range map[string]string{
		k.Totals: "redrain:{AbC_9}:totals", k.Flushed: "redrain:{AbC_9}:flushed",
		k.Nodes: "redrain:{AbC_9}:nodes", k.Credits: "redrain:{AbC_9}:credits",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
