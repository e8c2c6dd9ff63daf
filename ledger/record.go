package ledger

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"

	"redrain/rain"
)

// Record is one journaled claim: packet Index of slice (Code, Epoch, Slice), paid Amount to User.
type Record struct {
	Code     string // the rain; the journal keeps it in the bucket name, not in the encoding
	Slice    uint32 // slice id within the epoch
	Epoch    uint64 // the prepare the slice belongs to
	Index    uint32 // packet index within the slice
	User     uint64 // the claiming user, > 0
	Amount   int64  // cents, 1..rain.MaxTotalAmount
	UnixNano int64  // when the claim was made
}

// RecordSize is the length of an encoded record.
const RecordSize = 45

const recordVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCode refuses a code that is not rain.ValidCode. Such a code has no braces, so it is safe
// as the Redis keys' {hash tag}, and fits the journal's one-byte length.
func checkCode(code string) error {
	if !rain.ValidCode(code) {
		return fmt.Errorf("%w: rain code %.40q: want 1..%d base64url characters", ErrBadRecord, code, rain.MaxCodeLen)
	}
	return nil
}

// Validate reports whether the record can be journaled.
func (r *Record) Validate() error {
	if err := checkCode(r.Code); err != nil {
		return err
	}
	switch {
	case r.User == 0:
		return fmt.Errorf("%w: user is 0", ErrBadRecord)
	case r.Amount < 1 || r.Amount > rain.MaxTotalAmount:
		return fmt.Errorf("%w: amount %d not in 1..%d", ErrBadRecord, r.Amount, int64(rain.MaxTotalAmount))
	}
	return nil
}

// EncodeRecord appends r's fixed-width encoding (RecordSize bytes, without the code) to dst:
// version(1) slice(4) epoch(8) index(4) user(8) amount(8) unix nanos(8) crc32c(4), big-endian.
func EncodeRecord(dst []byte, r Record) []byte {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint32(dst, r.Slice)
	dst = binary.BigEndian.AppendUint64(dst, r.Epoch)
	dst = binary.BigEndian.AppendUint32(dst, r.Index)
	dst = binary.BigEndian.AppendUint64(dst, r.User)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Amount))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.UnixNano))
	body := dst[len(dst)-(RecordSize-4):]
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
}

// DecodeRecord parses an EncodeRecord encoding; the result's Code is empty. It fails with
// ErrBadRecord on a wrong length, version or checksum, a zero user or an out-of-range amount.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) != RecordSize {
		return Record{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadRecord, len(b), RecordSize)
	}
	if b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: version %d", ErrBadRecord, b[0])
	}
	if got, want := crc32.Checksum(b[:RecordSize-4], castagnoli), binary.BigEndian.Uint32(b[RecordSize-4:]); got != want {
		return Record{}, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadRecord, got, want)
	}
	r := Record{
		Slice:    binary.BigEndian.Uint32(b[1:]),
		Epoch:    binary.BigEndian.Uint64(b[5:]),
		Index:    binary.BigEndian.Uint32(b[13:]),
		User:     binary.BigEndian.Uint64(b[17:]),
		Amount:   int64(binary.BigEndian.Uint64(b[25:])),
		UnixNano: int64(binary.BigEndian.Uint64(b[33:])),
	}
	if r.User == 0 || r.Amount < 1 || r.Amount > rain.MaxTotalAmount {
		return Record{}, fmt.Errorf("%w: user %d amount %d", ErrBadRecord, r.User, r.Amount)
	}
	return r, nil
}

// AppendClaimID appends the claim ID "<node>-<incarnation as 16 lowercase hex>-<seq decimal>" to
// dst. It is unique for ever: the incarnation is drawn when the journal file is created and
// sequences never repeat within it.
func AppendClaimID(dst []byte, node string, incarnation, seq uint64) []byte {
	dst = append(dst, node...)
	dst = append(dst, '-')
	dst = appendHex16(dst, incarnation)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 10)
}

func appendHex16(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

// seqKey is the big-endian key of a sequence number.
func seqKey(dst []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(dst, seq) }
