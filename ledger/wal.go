package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"redrain/rain"
)

// The write-ahead log: two preallocated files beside the bbolt file, "<path>.wal0" and
// "<path>.wal1". A claim batch is one frame appended to the active file with one pwrite and one
// fdatasync; the file never grows (it was filled with zeros when created), so the fdatasync
// writes no file metadata. Frames are applied to bbolt later, in large background transactions;
// once a file's frames are all in bbolt it may be reused from its start with a new generation.
//
// A frame is:
//
//	magic(4) "RDW1" | generation(8) | first seq(8) | records(4) | payload bytes(4) | crc32c(4)
//	payload: records x (code length(1) | code | EncodeRecord(45))
//
// The crc covers the header before it and the payload. Reading a file stops at the first frame
// that does not check (torn tail, zeros, a frame of an older generation of the file), so what a
// crash cut short is never replayed, and records already in bbolt are skipped by sequence.

const (
	walMagic      = 0x52445731 // "RDW1"
	walHeaderSize = 32
	// DefaultWALSize is the size of each of the two log files.
	DefaultWALSize  = 16 << 20
	maxFramePayload = MaxMaxBatch * (1 + rain.MaxCodeLen + RecordSize)
)

// maxFrame is the largest frame a batch of n records can make.
func maxFrame(n int) int64 { return walHeaderSize + int64(n)*(1+rain.MaxCodeLen+RecordSize) }

// walFile is one of the two log files.
type walFile struct {
	f    *os.File
	path string
	size int64
	gen  uint64 // generation of the frames written since the last reset
	off  int64  // where the next frame goes
	last uint64 // last sequence written to it since its reset (0: none)
}

// openWALFile opens (creating and zero-filling if needed) a log file of size bytes.
func openWALFile(path string, size int64) (*walFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: wal: %w", err)
	}
	w := &walFile{f: f, path: path, size: size}
	st, err := f.Stat()
	if err == nil && st.Size() < size {
		err = w.zeroFill(st.Size())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ledger: wal %s: %w", path, err)
	}
	return w, nil
}

// zeroFill writes zeros from off to the file's size and syncs, so later frames overwrite blocks
// that exist: their fdatasync then has no metadata to write.
func (w *walFile) zeroFill(off int64) error {
	zeros := make([]byte, 1<<20)
	for off < w.size {
		n := min(int64(len(zeros)), w.size-off)
		if _, err := w.f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return w.f.Sync()
}

// fits reports whether a frame of n payload bytes fits after the current offset.
func (w *walFile) fits(n int) bool { return w.off+walHeaderSize+int64(n) <= w.size }

// reset makes the file empty for generation gen: its next frame goes to its start.
func (w *walFile) reset(gen uint64) { w.gen, w.off, w.last = gen, 0, 0 }

// appendFrame writes frame (built by encodeFrame) at the current offset and fdatasyncs it.
func (w *walFile) appendFrame(frame []byte, lastSeq uint64) error {
	if _, err := w.f.WriteAt(frame, w.off); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return err
	}
	w.off += int64(len(frame))
	w.last = lastSeq
	return nil
}

func (w *walFile) close() error { return w.f.Close() }

// frameHeader starts a frame in dst; finishFrame fills in its counts and checksum once the
// payload has been appended after it.
func frameHeader(dst []byte, gen, firstSeq uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, walMagic)
	dst = binary.BigEndian.AppendUint64(dst, gen)
	dst = binary.BigEndian.AppendUint64(dst, firstSeq)
	return append(dst, make([]byte, 12)...) // records, payload length, crc
}

func appendWALRecord(dst []byte, r Record) []byte {
	dst = append(dst, byte(len(r.Code)))
	dst = append(dst, r.Code...)
	return EncodeRecord(dst, r)
}

func finishFrame(frame []byte, records int) {
	binary.BigEndian.PutUint32(frame[20:], uint32(records))
	binary.BigEndian.PutUint32(frame[24:], uint32(len(frame)-walHeaderSize))
	crc := crc32.Update(crc32.Checksum(frame[:28], castagnoli), castagnoli, frame[walHeaderSize:])
	binary.BigEndian.PutUint32(frame[28:], crc)
}

// walRecord is a record read back from the log, with its sequence.
type walRecord struct {
	seq uint64
	rec Record
}

// errWALEnd: no (further) valid frame.
var errWALEnd = errors.New("ledger: end of wal")

// readWAL reads a file's valid frames from its start, in order, and returns their records, the
// generation of its first frame and the offset after its last valid frame.
func readWAL(r io.ReaderAt, size int64) (recs []walRecord, gen uint64, end int64, err error) {
	var hdr [walHeaderSize]byte
	var payload []byte
	var off int64
	for off+walHeaderSize <= size {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return recs, gen, off, nil
		}
		g, first, n, plen, ok := parseFrameHeader(hdr[:])
		if !ok || (off > 0 && g != gen) || off+walHeaderSize+int64(plen) > size {
			break
		}
		if cap(payload) < plen {
			payload = make([]byte, plen)
		}
		payload = payload[:plen]
		if _, err := r.ReadAt(payload, off+walHeaderSize); err != nil {
			break
		}
		crc := crc32.Update(crc32.Checksum(hdr[:28], castagnoli), castagnoli, payload)
		if crc != binary.BigEndian.Uint32(hdr[28:]) {
			break
		}
		frame, err := decodeFramePayload(payload, first, n)
		if err != nil {
			return nil, 0, 0, err // the checksum held: this is not a torn write but a bug
		}
		if off == 0 {
			gen = g
		}
		recs = append(recs, frame...)
		off += walHeaderSize + int64(plen)
	}
	return recs, gen, off, nil
}

func parseFrameHeader(h []byte) (gen, first uint64, n, plen int, ok bool) {
	if binary.BigEndian.Uint32(h) != walMagic {
		return 0, 0, 0, 0, false
	}
	gen, first = binary.BigEndian.Uint64(h[4:]), binary.BigEndian.Uint64(h[12:])
	n, plen = int(binary.BigEndian.Uint32(h[20:])), int(binary.BigEndian.Uint32(h[24:]))
	return gen, first, n, plen, n > 0 && n <= MaxMaxBatch && plen <= maxFramePayload && first > 0
}

func decodeFramePayload(p []byte, first uint64, n int) ([]walRecord, error) {
	out := make([]walRecord, 0, n)
	for i := range n {
		if len(p) < 1 || len(p) < 1+int(p[0])+RecordSize {
			return nil, fmt.Errorf("ledger: wal frame at seq %d: record %d truncated", first, i)
		}
		cl := int(p[0])
		r, err := DecodeRecord(p[1+cl : 1+cl+RecordSize])
		if err != nil {
			return nil, fmt.Errorf("ledger: wal frame at seq %d: %w", first, err)
		}
		r.Code = string(p[1 : 1+cl])
		out = append(out, walRecord{seq: first + uint64(i), rec: r})
		p = p[1+cl+RecordSize:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("ledger: wal frame at seq %d: %d trailing bytes", first, len(p))
	}
	return out, nil
}
