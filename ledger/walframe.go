package ledger

import "io"

// The write-ahead log's frame format and reader, exported for the simulator (package sim),
// which keeps log files in memory to tear and lose their unsynced tails: the same bytes the
// journal writes and the same reader its recovery uses, without files.

// LoggedRecord is a record read back from a write-ahead log, with its sequence.
type LoggedRecord struct {
	Seq uint64
	Rec Record // Rec.Code is set
}

// WALFrameSize is the length of the frame AppendWALFrame makes of recs.
func WALFrameSize(recs []Record) int {
	n := walHeaderSize
	for _, r := range recs {
		n += 1 + len(r.Code) + RecordSize
	}
	return n
}

// AppendWALFrame appends to dst the log frame of generation gen holding recs under sequences
// firstSeq, firstSeq+1, ...: what the journal's commit writes for one batch. recs must be
// valid (Record.Validate), 1..MaxMaxBatch of them, and firstSeq > 0.
func AppendWALFrame(dst []byte, gen, firstSeq uint64, recs []Record) []byte {
	start := len(dst)
	dst = frameHeader(dst, gen, firstSeq)
	for _, r := range recs {
		dst = appendWALRecord(dst, r)
	}
	finishFrame(dst[start:], len(recs))
	return dst
}

// ReadWAL reads a log file of size bytes from its start as the journal's recovery does: the
// records of its valid frames in order, the generation of its first frame (0 if none) and the
// offset after its last valid frame. It stops at the first frame that does not check (a torn
// tail, zeros, a frame of another generation); its error means a frame whose checksum held
// does not decode (a bug, not a torn write).
func ReadWAL(r io.ReaderAt, size int64) (recs []LoggedRecord, gen uint64, end int64, err error) {
	got, gen, end, err := readWAL(r, size)
	if err != nil {
		return nil, 0, 0, err
	}
	recs = make([]LoggedRecord, len(got))
	for i, w := range got {
		recs[i] = LoggedRecord{Seq: w.seq, Rec: w.rec}
	}
	return recs, gen, end, nil
}
