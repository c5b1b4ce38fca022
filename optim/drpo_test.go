package optim

import (
	"math"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
)

// A mixed group by hand: L = 4, λ = 0.5, τ = 1.
// Positives 0 (|o| = 2) and 1 (|o| = 4): w = e^{(1−½)/½} = e and e^0 = 1,
// ŵ = e/(e+1), 1/(e+1). Negatives 2 (s = −0.5) and 3 (s = −3):
// −τ·log(e^{−0.5} + e^{−3}); gradient −softmax(s/τ).
var (
	drpoScores = []float64{-1, -2, -0.5, -3}
	drpoLens   = []float64{2, 4, 3, 1}
	drpoPos    = []bool{true, true, false, false}
	drpoW0     = math.E / (math.E + 1)
	drpoNeg    = math.Exp(-0.5) + math.Exp(-3)
	drpoJ      = drpoW0*-1 + (1-drpoW0)*-2 - math.Log(drpoNeg)
	drpoDJ     = []float64{drpoW0, 1 - drpoW0, -math.Exp(-0.5) / drpoNeg, -math.Exp(-3) / drpoNeg}
)

func TestDRPOGroupTable(t *testing.T) {
	cases := []struct {
		name   string
		pos    []bool
		lambda float64
		ok     bool
		J      float64
		dJ     []float64
	}{
		{"mixed", drpoPos, 0.5, true, drpoJ, drpoDJ},
		{"all correct", []bool{true, true, true, true}, 0.5, false, 0, []float64{0, 0, 0, 0}},
		{"all wrong", []bool{false, false, false, false}, 0.5, false, 0, []float64{0, 0, 0, 0}},
		// λ → ∞: DisCO's uniform weights 1/|P| on the positives.
		{"λ→∞ is DisCO", drpoPos, 1e12, true, 0.5*-1 + 0.5*-2 - math.Log(drpoNeg),
			[]float64{0.5, 0.5, drpoDJ[2], drpoDJ[3]}},
	}
	for _, tc := range cases {
		J, dJ, ok := DRPOGroup(drpoScores, drpoLens, tc.pos, 4, tc.lambda, 1)
		if ok != tc.ok || math.Abs(J-tc.J) > 1e-12 {
			t.Errorf("%s: J %v ok %v, want %v %v", tc.name, J, ok, tc.J, tc.ok)
		}
		closeSlice(t, tc.name+" dJ/ds", dJ, tc.dJ, 1e-12)
	}
	// Large scores must not overflow the negatives' log-sum-exp.
	J, dJ, _ := DRPOGroup([]float64{0, 5000, 5000}, []float64{1, 1, 1}, []bool{true, false, false}, 1, 0.1, 1)
	if math.IsNaN(J) || math.IsInf(J, 0) || math.Abs(dJ[1]+0.5) > 1e-12 {
		t.Errorf("overflow: J %v dJ %v", J, dJ)
	}
}

// TestDRPOLossKernelPath runs the two-pass DRPO on the CPU backend: one
// mixed group (the table above), one all-correct and one all-wrong group,
// so three prompts. Token log-probs are chosen so each sequence's mean is
// its score; a padding token sits in sequence 0.
func TestDRPOLossKernelPath(t *testing.T) {
	a := DefaultAlgorithm()
	a.Loss, a.Lambda, a.Tau, a.DRPOBeta, a.Delta = LossDRPO, 0.5, 1, 1000, 1e-4
	// Sequences: lens 2, 4, 3, 1 (group 0), then 1, 1 (group 1, correct),
	// then 2 (group 2, wrong alone).
	logp := []float32{-0.5, -1.5, 99, -2, -2, -2, -2, -1, 0, -0.5, -3, -1, -1, -0.25, -0.75}
	mask := []float32{1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	off := []int{0, 3, 7, 10, 11, 12, 13, 15}
	correct := []bool{true, true, false, false, true, true, false}
	groups := []int{0, 0, 0, 0, 1, 1, 2}
	tokens := 14.0
	for _, drift := range []float32{0, 0.01} {
		old := make([]float32, len(logp))
		for i := range old {
			old[i] = logp[i] + drift // KL to the rollout policy = drift
		}
		dl := make(cpu.F32, len(logp))
		st, err := a.DRPOLoss(cpu.New(1), DRPOInput{
			Logp: cpu.F32(logp), OldLogp: cpu.F32(old), Mask: cpu.F32(mask), DLogp: dl,
			Offsets: off, Correct: correct, Groups: groups, Prompts: 3, Tokens: tokens, MaxLen: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		klCoef := 1000 * math.Max(float64(drift)-1e-4, 0)
		if st.Groups != 1 || st.Dropped != 2 || math.Abs(st.Objective-drpoJ) > 1e-6 ||
			math.Abs(st.KL-float64(drift)) > 1e-6 || math.Abs(st.KLCoef-klCoef) > 1e-3 {
			t.Errorf("drift %v: stats %+v", drift, st)
		}
		wantLoss := -drpoJ/3 + klCoef*float64(drift)
		if math.Abs(st.Loss-wantLoss) > 1e-5 {
			t.Errorf("drift %v: loss %v, want %v", drift, st.Loss, wantLoss)
		}
		// dL/dℓ_t = −dJ/ds_i/(3·|o_i|) − c_KL/14 on loss tokens.
		for i := range 7 {
			var dj float64
			if i < 4 {
				dj = drpoDJ[i]
			}
			n := 1.0
			if i < 4 {
				n = drpoLens[i]
			} else if i == 6 {
				n = 2
			}
			want := -dj/(3*n) - st.KLCoef/tokens
			for tk := off[i]; tk < off[i+1]; tk++ {
				w := want
				if mask[tk] == 0 {
					w = 0
				}
				if math.Abs(float64(dl[tk])-w) > 1e-6 {
					t.Errorf("drift %v: dL/dℓ[%d] = %v, want %v", drift, tk, dl[tk], w)
				}
			}
		}
	}
}
