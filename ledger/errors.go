package ledger

import "errors"

// Errors callers check with errors.Is.
var (
	// ErrClosed: Append, Put* or Drop* after Close.
	ErrClosed = errors.New("ledger: journal closed")
	// ErrCommit: the commit holding the record failed (wrapping the cause). The caller must not
	// hand the claim out; whether it reached the disk is known only after Reopen (a failed fsync
	// may still have left the transaction in the file), which returns the records it finds.
	ErrCommit = errors.New("ledger: journal commit failed")
	// ErrUnavailable: an earlier commit failed and the journal refuses writes until Reopen; the
	// record was not written.
	ErrUnavailable = errors.New("ledger: journal unavailable after a failed commit")
	// ErrBadRecord: a record that cannot be journaled, or bytes that do not decode as one.
	ErrBadRecord = errors.New("ledger: bad record")
	// ErrLocked: Open could not lock the file within Options.OpenTimeout (another process, or
	// another Journal in this one, has it open).
	ErrLocked = errors.New("ledger: journal file is locked by another opener")
	// ErrNodeMismatch: the file was created by a node with another id.
	ErrNodeMismatch = errors.New("ledger: journal belongs to another node")
	// ErrNotSettled: DropRain on a rain whose stored metadata is missing or not settled.
	ErrNotSettled = errors.New("ledger: rain is not settled")
	// ErrBadCredit: DecodeCredits or AppendCredits was given an entry that is not a credit-stream
	// entry of this format (the message says what is wrong); none of its claims is returned.
	ErrBadCredit = errors.New("ledger: bad credit-stream entry")
	// ErrOptions: Open was given Options that fail validation (the message names the field).
	// NewFlusher does not return it: bad FlusherOptions are a programmer error, and it panics.
	ErrOptions = errors.New("ledger: bad options")
)
