package rain

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
)

func TestApportion(t *testing.T) {
	for _, tc := range []struct {
		total   uint64
		weights []uint64
		want    []uint64
	}{
		{10, []uint64{1}, []uint64{10}},
		{10, []uint64{1, 1, 1}, []uint64{4, 3, 3}},      // equal remainders: lower index first
		{11, []uint64{1, 1, 1}, []uint64{4, 4, 3}},      //
		{2, []uint64{1, 1, 1, 1}, []uint64{1, 1, 0, 0}}, // fewer cents than shares
		{10, []uint64{0, 1, 0}, []uint64{0, 10, 0}},     // zero weight gets nothing
		{100, []uint64{1, 2, 3, 4}, []uint64{10, 20, 30, 40}},
		{10, []uint64{2, 3, 5, 7}, []uint64{1, 2, 3, 4}}, // quotas 1.18 1.76 2.94 4.12
		{7, []uint64{5, 5, 1}, []uint64{3, 3, 1}},        // quotas 3.18 3.18 0.64
		{1000, []uint64{333, 333, 334}, []uint64{333, 333, 334}},
		// 10^12 * 4*10^7 overflows 64 bits: the product must be 128-bit.
		{MaxTotalAmount, []uint64{30_000_000, 30_000_001, 39_999_999},
			[]uint64{300_000_000_000, 300_000_010_000, 399_999_990_000}},
		{MaxTotalAmount - 1, []uint64{1, 1, 1}, []uint64{333_333_333_333, 333_333_333_333, 333_333_333_333}},
		{MaxTotalAmount, []uint64{MaxWeight, 1}, []uint64{999_999_999_767, 233}},
	} {
		if got := apportion(tc.total, tc.weights); !slices.Equal(got, tc.want) {
			t.Errorf("apportion(%d, %v) = %v, want %v", tc.total, tc.weights, got, tc.want)
		}
	}
}

// splitAmount's table: each slice's amount is floor or ceil of its exact share, the cents
// left over going to the largest remainders.
func TestSplitAmount(t *testing.T) {
	for _, tc := range []struct {
		amount uint64
		counts []uint64
		want   []uint64
	}{
		{100, []uint64{10}, []uint64{100}},
		{100, []uint64{4, 3, 3}, []uint64{40, 30, 30}},
		{101, []uint64{4, 3, 3}, []uint64{41, 30, 30}}, // remainders 4, 3, 3 (of 10)
		{102, []uint64{4, 3, 3}, []uint64{41, 31, 30}},
		{10, []uint64{4, 3, 3}, []uint64{4, 3, 3}}, // one cent a packet
		{MaxTotalAmount, []uint64{33_333_334, 33_333_333, 33_333_333},
			[]uint64{333_333_340_000, 333_333_330_000, 333_333_330_000}},
		{MaxTotalAmount, []uint64{1, MaxTotalCount - 1}, []uint64{10_000, 999_999_990_000}},
		{MaxTotalAmount - 1, []uint64{1, MaxTotalCount - 1}, []uint64{10_000, 999_999_989_999}},
	} {
		if got := splitAmount(tc.amount, tc.counts); !slices.Equal(got, tc.want) {
			t.Errorf("splitAmount(%d, %v) = %v, want %v", tc.amount, tc.counts, got, tc.want)
		}
	}
}

func nodeNames(k int) []string {
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("n%d", i+1)
	}
	return out
}

func randomPlanInput(r *Rand) PlanInput {
	k := 1 + int(r.Uint64n(40))
	in := PlanInput{Code: "p", Epoch: r.Uint64(), Nodes: nodeNames(k), Seed: r.Uint64(), Algorithm: algorithms[r.Uint64n(3)]}
	switch r.Uint64n(3) {
	case 0:
		in.TotalCount = 1 + int64(r.Uint64n(100))
	case 1:
		in.TotalCount = 1 + int64(r.Uint64n(MaxTotalCount))
	default:
		in.TotalCount = MaxTotalCount - int64(r.Uint64n(10))
	}
	in.TotalAmount = in.TotalCount + int64(r.Uint64n(uint64(MaxTotalAmount-in.TotalCount+1)))
	if r.Uint64n(3) == 0 {
		in.TotalAmount = in.TotalCount + int64(r.Uint64n(uint64(in.TotalCount))) // tight
	}
	if r.Uint64n(2) == 0 {
		in.Weights = make([]int64, k)
		for i := range in.Weights {
			switch r.Uint64n(4) {
			case 0: // zero
			case 1:
				in.Weights[i] = MaxWeight - int64(r.Uint64n(10))
			default:
				in.Weights[i] = int64(r.Uint64n(100))
			}
		}
		in.Weights[r.Uint64n(uint64(k))] = 1 + int64(r.Uint64n(1000))
	}
	return in
}

// checkPlan asserts Plan's contract for in and its slices.
func checkPlanOutput(t *testing.T, in PlanInput, got []Slice) {
	t.Helper()
	weights := in.Weights
	if weights == nil {
		weights = slices.Repeat([]int64{1}, len(in.Nodes))
	}
	var wsum int64
	for _, w := range weights {
		wsum += w
	}
	byNode := make(map[string]Slice)
	var count, amount int64
	for i, s := range got {
		if err := s.Validate(); err != nil {
			t.Fatalf("slice %d: %v", i, err)
		}
		if s.ID != uint32(i+1) || s.Seed != DeriveSeed(in.Seed, uint64(s.ID)) || s.Code != in.Code || s.Epoch != in.Epoch {
			t.Fatalf("slice %d: %+v has wrong id, seed, code or epoch", i, s)
		}
		if want, _ := ParseAlgorithm(string(in.Algorithm)); s.Algorithm != want {
			t.Fatalf("slice %d: algorithm %q, want %q", i, s.Algorithm, want)
		}
		byNode[s.Node] = s
		count += s.Count
		amount += s.Amount
		// |amount/count - TotalAmount/TotalCount| < 1 cent, in exact integers.
		diff := new(big.Int).Sub(new(big.Int).Mul(big.NewInt(s.Amount), big.NewInt(in.TotalCount)),
			new(big.Int).Mul(big.NewInt(in.TotalAmount), big.NewInt(s.Count)))
		if diff.Abs(diff).Cmp(new(big.Int).Mul(big.NewInt(s.Count), big.NewInt(in.TotalCount))) >= 0 {
			t.Fatalf("slice %d: mean %d/%d more than 1 cent from %d/%d", i, s.Amount, s.Count, in.TotalAmount, in.TotalCount)
		}
	}
	if count != in.TotalCount || amount != in.TotalAmount {
		t.Fatalf("slices hold %d packets, %d cents; want %d, %d", count, amount, in.TotalCount, in.TotalAmount)
	}
	prev := -1
	for i, node := range in.Nodes {
		s, ok := byNode[node]
		// Largest remainder: each count is floor or ceil of the exact quota.
		quota := new(big.Int).Mul(big.NewInt(in.TotalCount), big.NewInt(weights[i]))
		floor := new(big.Int).Quo(quota, big.NewInt(wsum)).Int64()
		if s.Count != floor && s.Count != floor+1 {
			t.Fatalf("node %s: count %d, quota floor %d", node, s.Count, floor)
		}
		if ok {
			if int(s.ID) <= prev {
				t.Fatalf("node %s: slice ids not in node order", node)
			}
			prev = int(s.ID)
		}
	}
}

func TestPlanProperties(t *testing.T) {
	r := NewRand(testSeed(t, 20))
	for range 2000 {
		in := randomPlanInput(r)
		got, err := Plan(in)
		if err != nil {
			t.Fatalf("%+v: %v", in, err)
		}
		checkPlanOutput(t, in, got)
		if again, _ := Plan(in); !slices.Equal(got, again) {
			t.Fatalf("%+v: two plans differ", in)
		}
	}
}

func TestPlanEqualSplit(t *testing.T) {
	got, err := Plan(PlanInput{Code: "p", TotalAmount: 1000, TotalCount: 10, Nodes: nodeNames(4), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var counts, amounts []int64
	for _, s := range got {
		counts, amounts = append(counts, s.Count), append(amounts, s.Amount)
	}
	if !slices.Equal(counts, []int64{3, 3, 2, 2}) || !slices.Equal(amounts, []int64{300, 300, 200, 200}) {
		t.Errorf("counts %v amounts %v", counts, amounts)
	}
}

// Nodes with no packet get no slice, and ids stay dense: more nodes than packets, or a zero weight.
func TestPlanSkipsEmptyNodes(t *testing.T) {
	for _, in := range []PlanInput{
		{Code: "p", TotalAmount: 5, TotalCount: 2, Nodes: nodeNames(5), Seed: 1},
		{Code: "p", TotalAmount: 50, TotalCount: 20, Nodes: nodeNames(3), Weights: []int64{0, 1, 1}, Seed: 1},
	} {
		got, err := Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		checkPlanOutput(t, in, got)
		if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
			t.Errorf("%+v: got %+v, want two slices with ids 1 and 2", in, got)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	ok := PlanInput{Code: "p", TotalAmount: 100, TotalCount: 10, Nodes: nodeNames(2), Seed: 1}
	for _, tc := range []struct {
		name string
		mut  func(*PlanInput)
		want error
	}{
		{"nil nodes", func(in *PlanInput) { in.Nodes = nil }, ErrNoNodes},
		{"empty nodes", func(in *PlanInput) { in.Nodes = []string{} }, ErrNoNodes},
		{"empty node id", func(in *PlanInput) { in.Nodes = []string{"a", ""} }, ErrBadNodes},
		{"repeated node", func(in *PlanInput) { in.Nodes = []string{"a", "a"} }, ErrBadNodes},
		{"too many nodes", func(in *PlanInput) { in.Nodes = nodeNames(MaxPlanNodes + 1) }, ErrBadNodes},
		{"short weights", func(in *PlanInput) { in.Weights = []int64{1} }, ErrBadWeights},
		{"long weights", func(in *PlanInput) { in.Weights = []int64{1, 1, 1} }, ErrBadWeights},
		{"empty weights", func(in *PlanInput) { in.Weights = []int64{} }, ErrBadWeights},
		{"negative weight", func(in *PlanInput) { in.Weights = []int64{2, -1} }, ErrBadWeights},
		{"weight too big", func(in *PlanInput) { in.Weights = []int64{MaxWeight + 1, 1} }, ErrBadWeights},
		{"all weights zero", func(in *PlanInput) { in.Weights = []int64{0, 0} }, ErrBadWeights},
		{"empty code", func(in *PlanInput) { in.Code = "" }, ErrBadPlan},
		{"zero count", func(in *PlanInput) { in.TotalCount = 0 }, ErrBadPlan},
		{"count over max", func(in *PlanInput) { in.TotalCount, in.TotalAmount = MaxTotalCount+1, MaxTotalAmount }, ErrBadPlan},
		{"amount < count", func(in *PlanInput) { in.TotalAmount = 9 }, ErrBadPlan},
		{"amount over max", func(in *PlanInput) { in.TotalAmount = MaxTotalAmount + 1 }, ErrBadPlan},
		{"unknown algorithm", func(in *PlanInput) { in.Algorithm = "lottery" }, ErrBadPlan},
	} {
		in := ok
		tc.mut(&in)
		if got, err := Plan(in); !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: Plan = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := Plan(ok); err != nil {
		t.Fatal(err)
	}
	edge := ok
	edge.Weights = []int64{MaxWeight, 0}
	if _, err := Plan(edge); err != nil {
		t.Errorf("weights at their limits: %v", err)
	}
}

// Golden plan: slice seeds (and so every node's packets) are pinned, like generation's.
func TestPlanGolden(t *testing.T) {
	got, err := Plan(PlanInput{Code: "gold", Epoch: 3, TotalAmount: 1_000_003, TotalCount: 1_001,
		Nodes: []string{"a", "b", "c", "d"}, Weights: []int64{1, 2, 0, 3}, Seed: 42, Algorithm: LineCut})
	if err != nil {
		t.Fatal(err)
	}
	want := []Slice{
		{Code: "gold", ID: 1, Epoch: 3, Node: "a", Count: 167, Amount: 166_834, Seed: 0x801f73bdbaaf2059, Algorithm: LineCut},
		{Code: "gold", ID: 2, Epoch: 3, Node: "b", Count: 334, Amount: 333_667, Seed: 0x8f6e19650eb4540e, Algorithm: LineCut},
		{Code: "gold", ID: 3, Epoch: 3, Node: "d", Count: 500, Amount: 499_502, Seed: 0x0900d55f665a0fae, Algorithm: LineCut},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Plan =\n%#v\nwant\n%#v", got, want)
	}
}

// A planned rain, generated slice by slice, adds up to the rain.
func TestPlanThenGenerate(t *testing.T) {
	r := NewRand(testSeed(t, 21))
	for range 50 {
		in := PlanInput{Code: "p", Nodes: nodeNames(1 + int(r.Uint64n(20))), Seed: r.Uint64(), Algorithm: algorithms[r.Uint64n(3)]}
		in.TotalCount = 1 + int64(r.Uint64n(20_000))
		in.TotalAmount = in.TotalCount + int64(r.Uint64n(uint64(in.TotalCount)*100))
		plan, err := Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		var count, amount int64
		for _, s := range plan {
			a, err := Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			checkAmounts(t, &a, s.Count, s.Amount)
			count += int64(a.Len())
			amount += a.Sum()
		}
		if count != in.TotalCount || amount != in.TotalAmount {
			t.Fatalf("%+v: generated %d packets, %d cents", in, count, amount)
		}
	}
}
