package rain

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Limits of Plan's input.
const (
	MaxPlanNodes = 1 << 16 // nodes in one plan
	MaxWeight    = 1 << 32 // largest node weight
)

// Errors of Plan.
var (
	ErrNoNodes    = errors.New("plan: no nodes")
	ErrBadNodes   = errors.New("plan: bad node list") // an empty or repeated name, or too many
	ErrBadWeights = errors.New("plan: bad weights")   // wrong length, negative, too big, or all zero
	ErrBadPlan    = errors.New("plan: bad input")     // code, totals or algorithm invalid
)

// PlanInput is what the coordinator knows when it splits a rain among live nodes.
type PlanInput struct {
	Code        string    // the rain's code, copied into every slice
	Epoch       uint64    // the prepare's epoch, copied into every slice
	TotalAmount int64     // cents, TotalCount..MaxTotalAmount
	TotalCount  int64     // packets, 1..MaxTotalCount
	Algorithm   Algorithm // "" means DoubleAverage
	Nodes       []string  // distinct, non-empty node ids, in the order slices are numbered
	Weights     []int64   // nil: equal shares; else one per node, each 0..MaxWeight, not all 0
	Seed        uint64    // the rain's random seed; slice id gets DeriveSeed(Seed, id)
}

// Plan splits a rain into per-node slices. The count is split as evenly as possible (or in
// proportion to the weights, by largest remainder) and the amount in proportion to each
// slice's count, so every slice's mean is within 1 cent of the rain's, every slice has
// amount >= count, and the slices add up exactly. Nodes that would get no packet get no
// slice; slice ids are 1, 2, ... in node order.
func Plan(in PlanInput) ([]Slice, error) {
	alg, weights, err := checkPlan(in)
	if err != nil {
		return nil, err
	}
	counts := apportion(uint64(in.TotalCount), weights)
	amounts := splitAmount(uint64(in.TotalAmount), counts)
	out := make([]Slice, 0, len(in.Nodes))
	for i, node := range in.Nodes {
		if counts[i] == 0 {
			continue
		}
		id := uint32(len(out) + 1)
		out = append(out, Slice{
			Code: in.Code, ID: id, Epoch: in.Epoch, Node: node,
			Count: int64(counts[i]), Amount: int64(amounts[i]),
			Seed: DeriveSeed(in.Seed, uint64(id)), Algorithm: alg,
		})
	}
	return out, nil
}

// checkPlan validates in and returns its algorithm and the node weights to use.
func checkPlan(in PlanInput) (Algorithm, []uint64, error) {
	alg, err := ParseAlgorithm(string(in.Algorithm))
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("%w: %w", ErrBadPlan, err)
	case in.Code == "":
		return "", nil, fmt.Errorf("%w: code is empty", ErrBadPlan)
	case in.TotalCount < 1 || in.TotalCount > MaxTotalCount:
		return "", nil, fmt.Errorf("%w: total_count %d out of range 1..%d", ErrBadPlan, in.TotalCount, MaxTotalCount)
	case in.TotalAmount < in.TotalCount || in.TotalAmount > MaxTotalAmount:
		return "", nil, fmt.Errorf("%w: total_amount %d out of range %d..%d", ErrBadPlan, in.TotalAmount, in.TotalCount, int64(MaxTotalAmount))
	}
	if err := checkNodes(in.Nodes); err != nil {
		return "", nil, err
	}
	weights, err := planWeights(in.Weights, len(in.Nodes))
	return alg, weights, err
}

func checkNodes(nodes []string) error {
	if len(nodes) == 0 {
		return ErrNoNodes
	}
	if len(nodes) > MaxPlanNodes {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrBadNodes, len(nodes), MaxPlanNodes)
	}
	seen := make(map[string]struct{}, len(nodes))
	for _, n := range nodes {
		if _, dup := seen[n]; dup || n == "" {
			return fmt.Errorf("%w: node %q empty or repeated", ErrBadNodes, n)
		}
		seen[n] = struct{}{}
	}
	return nil
}

// planWeights checks w (nil means n equal weights) and returns it as uint64s.
func planWeights(w []int64, n int) ([]uint64, error) {
	out := make([]uint64, n)
	if w == nil {
		for i := range out {
			out[i] = 1
		}
		return out, nil
	}
	if len(w) != n {
		return nil, fmt.Errorf("%w: %d weights for %d nodes", ErrBadWeights, len(w), n)
	}
	var sum uint64
	for i, x := range w {
		if x < 0 || x > MaxWeight {
			return nil, fmt.Errorf("%w: weight %d of node %d out of range 0..%d", ErrBadWeights, x, i, int64(MaxWeight))
		}
		out[i] = uint64(x)
		sum += out[i] // at most 2^16 * 2^32: no overflow
	}
	if sum == 0 {
		return nil, fmt.Errorf("%w: all weights are zero", ErrBadWeights)
	}
	return out, nil
}

// splitAmount splits amount among slices in proportion to their counts (largest remainder),
// so slice i gets floor or ceil of amount*counts[i]/sum(counts): its mean is within 1 cent of
// the rain's, and amount >= sum(counts) gives every slice at least its count.
func splitAmount(amount uint64, counts []uint64) []uint64 {
	return apportion(amount, counts)
}

// apportion splits total into shares proportional to weights by the largest-remainder
// method: share i is floor(total*w[i]/W) (W = sum of weights, > 0), and the cents left over
// go one each to the largest remainders, ties to the lower index. total*w[i] is computed in
// 128 bits (10^12 * 10^8 overflows int64). Shares sum to total exactly.
func apportion(total uint64, weights []uint64) []uint64 {
	var sum uint64
	for _, w := range weights {
		sum += w
	}
	shares := make([]uint64, len(weights))
	rems := make([]uint64, len(weights))
	left := total
	for i, w := range weights {
		hi, lo := bits.Mul64(total, w)
		shares[i], rems[i] = bits.Div64(hi, lo, sum) // hi < sum since w <= sum
		left -= shares[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if rems[a] != rems[b] {
			return cmpDesc(rems[a], rems[b])
		}
		return a - b
	})
	for _, i := range order[:left] { // left < len(weights): the remainders add up to left*sum
		shares[i]++
	}
	return shares
}

func cmpDesc(a, b uint64) int {
	if a > b {
		return -1
	}
	return 1
}
