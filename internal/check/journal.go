package check

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"redrain/ledger"
	"redrain/rain"
)

// Journal is what one node's journal holds of one rain, as ReadJournal reads it after a run.
type Journal struct {
	Node    string
	Slices  []rain.Slice                 // the rain's slice descriptors stored in it
	Claimed map[ledger.SliceKey][]uint32 // journaled packet indices per slice, in sequence order
	Amounts map[ledger.SliceKey][]int64  // Amounts[k][i] was journaled with Claimed[k][i]
}

// Totals are the journal's claims of the rain and their cents.
func (j *Journal) Totals() (count, amount int64) {
	for k, idx := range j.Claimed {
		count += int64(len(idx))
		for _, a := range j.Amounts[k] {
			amount += a
		}
	}
	return count, amount
}

// ReadJournal reads what a stopped node's journal (the bbolt file at path, owned by node, and its
// write-ahead log beside it) holds of the rain code, with the ledger's own recovery: it opens the
// journal, which moves claims still only in the log into the file as the node's own restart
// would, replays it, and closes it. The node must be stopped: a running node holds the file's
// lock (ledger.ErrLocked). A missing file is an error (nothing is created).
func ReadJournal(path, node, code string) (*Journal, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("check: journal of %s: %w", node, err)
	}
	o := ledger.DefaultOptions(path, node)
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	lj, err := ledger.Open(o)
	if err != nil {
		return nil, fmt.Errorf("check: journal of %s: %w", node, err)
	}
	rec, err := lj.Recover()
	if cerr := lj.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("check: journal of %s: %w", node, err)
	}
	j := &Journal{Node: node, Claimed: map[ledger.SliceKey][]uint32{}, Amounts: map[ledger.SliceKey][]int64{}}
	for _, s := range rec.Slices {
		if s.Code == code {
			j.Slices = append(j.Slices, s)
		}
	}
	for k, idx := range rec.Claimed {
		if k.Code == code {
			j.Claimed[k], j.Amounts[k] = idx, rec.Amounts[k]
		}
	}
	return j, nil
}

// maxBitmap bounds the bitmap of a slice no journal holds (sized by its largest index).
const maxBitmap = 1 << 24

// sliceID names a slice within a rain.
type sliceID struct {
	epoch uint64
	id    uint32
}

// held is one journal's claims of one slice.
type held struct {
	node string
	idx  []uint32
	amt  []int64
}

// CheckJournals checks every node's journal of one rain against the others (SPEC: no packet is
// handed out twice, never overpay): no packet (epoch, slice id, index) is journaled twice, in
// one journal or across journals (a packet may be journaled on another node than its slice's
// holder once stock moves: once is fine, twice is not); every journaled index lies in its slice
// and its amount is the one the slice's seed regenerates (rain.Generate), the slice's descriptor
// taken from whichever journal holds it (no journal holding it is a violation, and so are two
// journals holding different descriptors under one slice id).
func CheckJournals(v *Verdict, js []*Journal) {
	desc := map[sliceID]rain.Slice{}
	descFrom := map[sliceID]string{}
	for _, j := range js {
		for _, s := range j.Slices {
			k := sliceID{s.Epoch, s.ID}
			if d, ok := desc[k]; ok && d != s {
				v.Fail("slice %d/%d: %s holds %+v, %s holds %+v", s.Epoch, s.ID, descFrom[k], d, j.Node, s)
				continue
			}
			desc[k], descFrom[k] = s, j.Node
		}
	}
	bySlice := map[sliceID][]held{}
	for _, j := range js {
		for k, idx := range j.Claimed {
			if len(j.Amounts[k]) != len(idx) {
				v.Fail("%s: slice %d/%d has %d indices and %d amounts", j.Node, k.Epoch, k.Slice, len(idx), len(j.Amounts[k]))
				continue
			}
			id := sliceID{k.Epoch, k.Slice}
			bySlice[id] = append(bySlice[id], held{j.Node, idx, j.Amounts[k]})
		}
	}
	ids := make([]sliceID, 0, len(bySlice))
	for id := range bySlice {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b sliceID) int { return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.id, b.id)) })
	for _, id := range ids {
		checkSlice(v, id, desc[id], bySlice[id])
	}
}

// checkSlice checks the journaled packets of one slice (d is its descriptor, zero if unknown).
func checkSlice(v *Verdict, id sliceID, d rain.Slice, hs []held) {
	slices.SortFunc(hs, func(a, b held) int { return cmp.Compare(a.node, b.node) })
	var amounts rain.Amounts
	size := 0
	if d.Count == 0 {
		v.Fail("slice %d/%d: %d packet(s) journaled (by %s), but no journal holds the slice", id.epoch, id.id,
			heldCount(hs), heldNodes(hs))
	} else if a, err := rain.Generate(d); err != nil {
		v.Fail("slice %d/%d: cannot regenerate: %v", id.epoch, id.id, err)
	} else {
		amounts, size = a, a.Len()
	}
	if amounts.Len() == 0 {
		for _, h := range hs {
			for _, idx := range h.idx {
				size = max(size, min(int(idx)+1, maxBitmap))
			}
		}
	}
	seen := make([]uint64, (size+63)/64)
	far := map[uint32]bool{} // indices past the bitmap (out of the slice, or a slice no journal holds)
	for _, h := range hs {
		for i, idx := range h.idx {
			var twice bool
			if int(idx) < size {
				twice = seen[idx/64]&(1<<(idx%64)) != 0
				seen[idx/64] |= 1 << (idx % 64)
			} else {
				twice, far[idx] = far[idx], true
			}
			if twice {
				v.Fail("packet %d of slice %d/%d journaled twice (paid twice): by %s", idx, id.epoch, id.id,
					holdersOf(hs, idx))
			}
			switch {
			case amounts.Len() == 0:
			case int(idx) >= amounts.Len():
				v.Fail("%s journaled packet %d of slice %d/%d, which has %d packets", h.node, idx, id.epoch, id.id, amounts.Len())
			case amounts.At(int(idx)) != h.amt[i]:
				v.Fail("%s journaled packet %d of slice %d/%d as %d cents, the slice's seed gives %d", h.node, idx,
					id.epoch, id.id, h.amt[i], amounts.At(int(idx)))
			}
		}
	}
}

func heldCount(hs []held) (n int) {
	for _, h := range hs {
		n += len(h.idx)
	}
	return n
}

func heldNodes(hs []held) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.node)
	}
	return fmt.Sprint(out)
}

// holdersOf names every journal entry of packet idx: a node once per time it journaled it.
func holdersOf(hs []held, idx uint32) string {
	var out []string
	for _, h := range hs {
		for _, x := range h.idx {
			if x == idx {
				out = append(out, h.node)
			}
		}
	}
	return fmt.Sprint(out)
}
