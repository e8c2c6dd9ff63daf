package sim

import (
	"fmt"
	"hash/fnv"
	"io"
)

// traceLog hashes every line and keeps the last ones.
type traceLog struct {
	out  io.Writer
	h    uint64
	ring [40]string
	n    int
	buf  []byte
}

func (t *traceLog) init(out io.Writer) { t.out, t.h = out, fnv.New64a().Sum64() }

func (t *traceLog) printf(step int, now int64, format string, args ...any) {
	t.buf = fmt.Appendf(t.buf[:0], "%5d %6.1fms ", step, float64(now%1e12)/1e6)
	t.buf = fmt.Appendf(t.buf, format, args...)
	t.buf = append(t.buf, '\n')
	h := fnv.New64a()
	var b [8]byte
	for i := range 8 {
		b[i] = byte(t.h >> (8 * i))
	}
	h.Write(b[:])
	h.Write(t.buf)
	t.h = h.Sum64()
	t.ring[t.n%len(t.ring)] = string(t.buf)
	t.n++
	if t.out != nil {
		t.out.Write(t.buf)
	}
}

func (t *traceLog) digest() uint64 { return t.h }

func (t *traceLog) tail() []string {
	var out []string
	for i := max(0, t.n-len(t.ring)); i < t.n; i++ {
		out = append(out, t.ring[i%len(t.ring)])
	}
	return out
}
