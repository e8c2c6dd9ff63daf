package rain

import (
	"errors"
	"slices"
	"testing"
)

// FuzzConfig: any body either fails with a FieldError or yields a config that can be planned
// and generated (amount >= count, everything within SPEC.md's limits). Never panics.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"anchor_id":1,"room_id":2,"total_amount":1000000,"total_count":100000,"max_per_user":3,"duration_s":60,"algorithm":"double_average","min_claim_interval_ms":0,"remark":"..."}`,
		`{"anchor_id":1,"total_amount":1,"total_count":1}`,
		`{"anchor_id":1,"total_amount":1000000000000,"total_count":100000000,"algorithm":"line_cut"}`,
		`{"anchor_id":1,"total_amount":5,"total_count":6}`,
		`{"anchor_id":-1}`, `{"remark":"红包"}`, `{"algorithm":"equal","max_per_user":1000}`,
		`{"anchor_id":1e3}`, `{"total_count":"5"}`, `{"x":1}`, `[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeConfig(data)
		var fe *FieldError
		if err != nil {
			if errors.As(err, &fe) && (fe.Field == "" || !errors.Is(err, ErrInvalid)) {
				t.Fatalf("bad FieldError %#v", fe)
			}
			return
		}
		if c.AnchorID <= 0 || c.RoomID < 0 || c.TotalCount < 1 || c.TotalCount > MaxTotalCount ||
			c.TotalAmount < c.TotalCount || c.TotalAmount > MaxTotalAmount ||
			c.MaxPerUser < 1 || c.MaxPerUser > MaxMaxPerUser || c.DurationS < 1 || c.DurationS > MaxDurationS ||
			c.MinClaimIntervalMS < 0 || c.MinClaimIntervalMS > MaxMinClaimInterval || len(c.Remark) > MaxRemarkBytes {
			t.Fatalf("valid config breaks a rule: %+v", c)
		}
		if _, err := ParseAlgorithm(string(c.Algorithm)); err != nil || c.Algorithm == "" {
			t.Fatalf("valid config with algorithm %q", c.Algorithm)
		}
		plan, err := Plan(PlanInput{Code: "f", TotalAmount: c.TotalAmount, TotalCount: c.TotalCount, Algorithm: c.Algorithm, Nodes: nodeNames(3)})
		if err != nil {
			t.Fatalf("valid config %+v cannot be planned: %v", c, err)
		}
		for _, s := range plan {
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzGenerate: every slice of up to 5000 packets sums exactly, has no empty packet, and is
// the same when generated twice.
func FuzzGenerate(f *testing.F) {
	f.Add(int64(100), uint16(10), uint64(1), uint8(0))
	f.Add(int64(10), uint16(10), uint64(2), uint8(1))
	f.Add(int64(MaxTotalAmount), uint16(3), uint64(3), uint8(1))
	f.Add(int64(1<<32), uint16(5000), uint64(4), uint8(2))
	f.Add(int64(9000), uint16(1000), uint64(5), uint8(1))
	f.Add(int64(1), uint16(1), uint64(0), uint8(0))
	f.Fuzz(func(t *testing.T, amount int64, count16 uint16, seed uint64, alg uint8) {
		count := 1 + int64(count16)%5000
		if amount < 0 {
			amount = -(amount + 1)
		}
		amount = count + amount%(MaxTotalAmount-count+1)
		s := Slice{Code: "f", Count: count, Amount: amount, Seed: seed, Algorithm: algorithms[int(alg)%len(algorithms)]}
		a, err := Generate(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		checkAmounts(t, &a, count, amount)
		b, _ := Generate(s)
		if !slices.Equal(values(&a), values(&b)) {
			t.Fatalf("%+v: not deterministic", s)
		}
	})
}

// FuzzPlan: Plan either refuses the input with one of its errors or returns slices that meet
// its whole contract.
func FuzzPlan(f *testing.F) {
	f.Add(int64(1000), int64(10), uint8(3), []byte{}, uint64(1), uint8(0))
	f.Add(int64(MaxTotalAmount), int64(MaxTotalCount), uint8(200), []byte{1, 2, 3, 0, 255}, uint64(2), uint8(1))
	f.Add(int64(5), int64(5), uint8(9), []byte{0, 0, 1}, uint64(3), uint8(2))
	f.Add(int64(5), int64(6), uint8(2), []byte{0, 0}, uint64(4), uint8(9))
	f.Add(int64(-1), int64(0), uint8(0), []byte(nil), uint64(5), uint8(0))
	f.Fuzz(func(t *testing.T, amount, count int64, k uint8, w []byte, seed uint64, alg uint8) {
		in := PlanInput{Code: "f", Epoch: 1, TotalAmount: amount, TotalCount: count, Nodes: nodeNames(int(k)), Seed: seed}
		if alg < 3 {
			in.Algorithm = algorithms[alg]
		} else if alg == 3 {
			in.Algorithm = "bogus"
		}
		if len(w) > 0 { // one weight per node, cycling through w; or len(w) when w[0] == 7
			n := len(in.Nodes)
			if w[0] == 7 {
				n = len(w)
			}
			in.Weights = make([]int64, n)
			for i := range in.Weights {
				switch b := w[i%len(w)]; b {
				case 255:
					in.Weights[i] = MaxWeight
				case 254:
					in.Weights[i] = -1
				default:
					in.Weights[i] = int64(b) / 4 // 0 now and then
				}
			}
		}
		got, err := Plan(in)
		if err != nil {
			if got != nil || !(errors.Is(err, ErrNoNodes) || errors.Is(err, ErrBadNodes) || errors.Is(err, ErrBadWeights) || errors.Is(err, ErrBadPlan)) {
				t.Fatalf("%+v: %v, %v", in, got, err)
			}
			return
		}
		checkPlanOutput(t, in, got)
	})
}
