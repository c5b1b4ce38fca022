package optim

import (
	"math"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
)

// TestLRSchedules checks each schedule by hand: LR 1, two warm-up steps,
// six steps in all.
func TestLRSchedules(t *testing.T) {
	cases := []struct {
		schedule string
		floor    float64
		want     []float64
	}{
		{"constant", 0, []float64{0.5, 1, 1, 1, 1, 1}},
		// After warm-up: p = (step − 2)/3.
		{"linear", 0, []float64{0.5, 1, 1, 2.0 / 3, 1.0 / 3, 0}},
		{"linear", 0.5, []float64{0.5, 1, 1, 0.5 + 0.5*2/3, 0.5 + 0.5/3, 0.5}},
		// 0.1 + 0.9·½(1 + cos πp).
		{"cosine", 0.1, []float64{0.5, 1, 1, 0.1 + 0.9*0.75, 0.1 + 0.9*0.25, 0.1}},
	}
	for _, tc := range cases {
		o := DefaultOptim()
		o.LR, o.WarmupSteps, o.Schedule, o.MinLRRatio = 1, 2, tc.schedule, tc.floor
		got := make([]float64, 6)
		for s := range got {
			got[s] = o.LRAt(s, 6)
		}
		closeSlice(t, tc.schedule, got, tc.want, 1e-12)
		if past := o.LRAt(10, 6); math.Abs(past-tc.want[5]) > 1e-12 {
			t.Errorf("%s: past the end %v, want the floor %v", tc.schedule, past, tc.want[5])
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	b := cpu.New(1)
	cases := []struct {
		max     float64
		norm    float64
		clipped bool
		scale   float32
	}{
		{6.5, 13, true, float32(6.5 / (13 + 1e-6))},
		{13.5, 13, false, 1},
		{0, 13, false, 1},
	}
	for _, tc := range cases {
		g1, g2 := cpu.F32{3, 4}, cpu.F32{12}
		norm, clipped := ClipGradNorm(b, []kernels.Buf{g1, g2}, tc.max)
		if math.Abs(norm-tc.norm) > 1e-12 || clipped != tc.clipped {
			t.Errorf("max %v: norm %v clipped %v, want %v %v", tc.max, norm, clipped, tc.norm, tc.clipped)
		}
		if g1[0] != 3*tc.scale || g1[1] != 4*tc.scale || g2[0] != 12*tc.scale {
			t.Errorf("max %v: gradients %v %v, want scale %v", tc.max, g1, g2, tc.scale)
		}
	}
}

// TestAdamWNoDecay checks which parameters are decayed: with zero
// gradients the only change is p·(1 − lr·wd) on decayed tensors.
func TestAdamWNoDecay(t *testing.T) {
	names := []struct {
		name  string
		shape []int
		decay bool
	}{
		{"model.embed_tokens.weight", []int{1, 2}, false},
		{"model.layers.0.input_layernorm.weight", []int{2}, false},
		{"model.layers.0.self_attn.q_proj.bias", []int{2}, false},
		{"model.norm.weight", []int{2}, false},
		{"model.layers.0.mlp.down_proj.weight", []int{2, 1}, true},
		{"lm_head.weight", []int{1, 2}, true},
	}
	b := cpu.New(1)
	cfg := DefaultOptim()
	cfg.LR, cfg.WeightDecay, cfg.MaxGradNorm = 0.1, 0.1, 0
	var params []Param
	for _, n := range names {
		params = append(params, Param{Name: n.name, Shape: n.shape, Value: cpu.F32{2, -4}, Grad: make(cpu.F32, 2)})
	}
	o, err := NewAdamW(b, cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Update(10); err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		want := float32(1)
		if n.decay {
			want = float32(1 - 0.1*0.1)
		}
		v := cpu.Data(params[i].Value)
		if v[0] != 2*want || v[1] != -4*want {
			t.Errorf("%s: values %v, want decay %v: values %v", n.name, v, n.decay, []float32{2 * want, -4 * want})
		}
	}
	// The patterns exempt matrices too; a vector is never decayed.
	cfg.NoDecay = []string{"*down_proj*"}
	exempt := []Param{
		{Name: "model.layers.0.mlp.down_proj.weight", Shape: []int{2, 1}, Value: cpu.F32{1, 1}, Grad: cpu.F32{0, 0}},
		{Name: "model.layers.0.input_layernorm.weight", Shape: []int{2}, Value: cpu.F32{1, 1}, Grad: cpu.F32{0, 0}},
		{Name: "model.embed_tokens.weight", Shape: []int{1, 2}, Value: cpu.F32{1, 1}, Grad: cpu.F32{0, 0}}}
	o2, err := NewAdamW(b, cfg, exempt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o2.Update(10); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{1, 1, 1 - 0.1*0.1} {
		if v := cpu.Data(exempt[i].Value); v[0] != want {
			t.Errorf("no_decay [*down_proj*]: %s is %v, want %v", exempt[i].Name, v[0], want)
		}
	}
	if o.StepCount() != 1 {
		t.Errorf("step count %d, want 1", o.StepCount())
	}
}

// TestAdamWUpdate checks one full update by hand: first AdamW step moves
// every coordinate by lr·g/(|g| + ε/√(1−β2)·…) ≈ lr·sign(g); with clipping
// the direction is unchanged, and gradients are zeroed afterwards.
func TestAdamWUpdate(t *testing.T) {
	b := cpu.New(1)
	cfg := DefaultOptim()
	cfg.LR, cfg.WeightDecay, cfg.MaxGradNorm, cfg.Eps = 0.01, 0, 1, 1e-12
	p := Param{Name: "w", Value: cpu.F32{1, 1, 1}, Grad: cpu.F32{3, -4, 0}}
	o, err := NewAdamW(b, cfg, []Param{p})
	if err != nil {
		t.Fatal(err)
	}
	st, err := o.Update(1)
	if err != nil {
		t.Fatal(err)
	}
	if st.GradNorm != 5 || !st.Clipped || st.LR != 0.01 {
		t.Errorf("stats %+v", st)
	}
	closeSlice(t, "params", to64(cpu.Data(p.Value)), []float64{0.99, 1.01, 1}, 1e-6)
	closeSlice(t, "grads", to64(cpu.Data(p.Grad)), []float64{0, 0, 0}, 0)

	p.Grad.(cpu.F32)[0] = float32(math.NaN())
	if _, err := o.Update(2); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN gradient: error %v", err)
	}
	if cpu.Data(p.Grad)[0] != 0 {
		t.Error("gradients not zeroed after a skipped update")
	}
}

func TestAdamWErrors(t *testing.T) {
	b := cpu.New(1)
	cfg := DefaultOptim()
	if _, err := NewAdamW(b, cfg, []Param{{Name: "a", Value: cpu.F32{1}, Grad: cpu.F32{1, 2}}}); err == nil {
		t.Error("size mismatch accepted")
	}
	if _, err := NewAdamW(b, cfg, []Param{{Name: "a", Value: cpu.F32{1}, Grad: cpu.F32{1}}, {Name: "a", Value: cpu.F32{1}, Grad: cpu.F32{1}}}); err == nil {
		t.Error("duplicate name accepted")
	}
	cfg.NoDecay = []string{"[a"}
	if _, err := NewAdamW(b, cfg, nil); err == nil || !strings.Contains(err.Error(), "no_decay") {
		t.Errorf("bad pattern: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultAlgorithm().Validate(); err != nil {
		t.Errorf("default algorithm: %v", err)
	}
	if err := DefaultOptim().Validate(); err != nil {
		t.Errorf("default optim: %v", err)
	}
	algo := []struct {
		mut  func(*Algorithm)
		want string
	}{
		{func(a *Algorithm) { a.Advantage = "ppo2" }, "algorithm.advantage"},
		{func(a *Algorithm) { a.ScaleRewards = "yes" }, "algorithm.scale_rewards"},
		{func(a *Algorithm) { a.LossAggMode = "mean" }, "algorithm.loss_agg_mode"},
		{func(a *Algorithm) { a.KLEstimator = "k4" }, "algorithm.kl_estimator"},
		{func(a *Algorithm) { a.KLIn = "both" }, "algorithm.kl_in"},
		{func(a *Algorithm) { a.Epsilon = 0 }, "algorithm.epsilon"},
		{func(a *Algorithm) { a.TargetKL = 6 }, "algorithm.target_kl"},
		{func(a *Algorithm) { a.TISCap = 0.5 }, "algorithm.tis_cap"},
		{func(a *Algorithm) { a.Loss = "dpo" }, "algorithm.loss"},
		{func(a *Algorithm) { a.Tau = 0 }, "algorithm.tau"},
	}
	for _, c := range algo {
		a := DefaultAlgorithm()
		c.mut(&a)
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
	opt := []struct {
		mut  func(*Optim)
		want string
	}{
		{func(o *Optim) { o.Schedule = "step" }, "optim.schedule"},
		{func(o *Optim) { o.LR = 0 }, "optim.lr"},
		{func(o *Optim) { o.Betas[1] = 1 }, "optim.betas"},
		{func(o *Optim) { o.NoDecay = []string{"[x"} }, "optim.no_decay"},
	}
	for _, c := range opt {
		o := DefaultOptim()
		c.mut(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error naming %s, got %v", c.want, err)
		}
	}
}

func TestPolicyParams(t *testing.T) {
	a := DefaultAlgorithm()
	a.EpsilonHigh, a.Beta, a.KLEstimator, a.LossAggMode = 0.28, 0.04, "low_var_kl", "seq-mean-token-sum-norm"
	norm := BatchNormalizers([]Sequence{{Tokens: 3}, {Tokens: 5, Truncated: true}, {Tokens: 0}}, 8, false)
	if norm != (kernels.Normalizers{Tokens: 8, Seqs: 2, MaxLen: 8}) {
		t.Errorf("normalizers %+v", norm)
	}
	p, err := a.PolicyParams(norm)
	if err != nil {
		t.Fatal(err)
	}
	if p.EpsLow != 0.2 || p.EpsHigh != 0.28 || p.Beta != 0.04 || p.KL != kernels.KLK3 || p.Agg != kernels.AggSeqMeanTokenSumNorm || p.ClipRatioC != 3 {
		t.Errorf("params %+v", p)
	}
	a.KLIn = "reward"
	if p, _ := a.PolicyParams(norm); p.Beta != 0 {
		t.Errorf("kl_in: reward put β = %v in the loss", p.Beta)
	}
	if got := BatchNormalizers([]Sequence{{Tokens: 3}, {Tokens: 5, Truncated: true}}, 8, true); got != (kernels.Normalizers{Tokens: 3, Seqs: 1, MaxLen: 8}) {
		t.Errorf("mask_truncated normalizers %+v", got)
	}
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// countingBackend counts AdamW kernel calls.
type countingBackend struct {
	kernels.Backend
	adamw int
}

func (c *countingBackend) AdamW(param, grad, m, v kernels.Buf, n int, hp kernels.AdamWParams) {
	c.adamw++
	c.Backend.AdamW(param, grad, m, v, n, hp)
}

// testShape is a Llama tensor's shape with n elements: norms and biases
// are vectors, the rest [n/8 × 8] matrices.
func testShape(name string, n int) []int {
	if strings.HasSuffix(name, "norm.weight") || strings.HasSuffix(name, ".bias") {
		return []int{n}
	}
	return []int{n / 8, 8}
}

// TestFlatAdamWMatchesPerTensor: parameters stored back to back are
// updated with one kernel call per run of equal weight decay (one call in
// all without weight decay), to the same bits as one call per tensor, over
// several steps with clipping; the moments are views in the same order.
func TestFlatAdamWMatchesPerTensor(t *testing.T) {
	// Runs under the default no_decay patterns: embed norm | q k | bias |
	// o down | norm | lm_head.
	t.Run("decay", func(t *testing.T) { flatAdamWMatchesPerTensor(t, 0.1, 6) })
	t.Run("no decay", func(t *testing.T) { flatAdamWMatchesPerTensor(t, 0, 1) })
}

func flatAdamWMatchesPerTensor(t *testing.T, wd float64, runs int) {
	tensors := []struct {
		name string
		n    int
	}{
		{"model.embed_tokens.weight", 40}, {"model.layers.0.input_layernorm.weight", 8},
		{"model.layers.0.self_attn.q_proj.weight", 64}, {"model.layers.0.self_attn.k_proj.weight", 32},
		{"model.layers.0.self_attn.q_proj.bias", 8}, {"model.layers.0.self_attn.o_proj.weight", 64},
		{"model.layers.0.mlp.down_proj.weight", 48}, {"model.norm.weight", 8}, {"lm_head.weight", 40},
	}
	cfg := DefaultOptim()
	cfg.LR, cfg.WeightDecay, cfg.MaxGradNorm = 0.01, wd, 0.5
	total := 0
	for _, x := range tensors {
		total += x.n
	}
	init := make([]float32, total)
	for i := range init {
		init[i] = float32(math.Sin(float64(i)))
	}
	grads := func(step int) []float32 {
		g := make([]float32, total)
		for i := range g {
			g[i] = float32(math.Cos(float64(i*(step+3)))) * 0.3
		}
		return g
	}
	// Per tensor: separate buffers.
	cb := &countingBackend{Backend: cpu.New(2)}
	var sep []Param
	off := 0
	for _, x := range tensors {
		sep = append(sep, Param{Name: x.name, Shape: testShape(x.name, x.n), Value: append(cpu.F32(nil), init[off:off+x.n]...), Grad: make(cpu.F32, x.n)})
		off += x.n
	}
	o1, err := NewAdamW(cb, cfg, sep)
	if err != nil {
		t.Fatal(err)
	}
	// Flat: one buffer each.
	fb := &countingBackend{Backend: cpu.New(2)}
	values, gbuf := append(cpu.F32(nil), init...), make(cpu.F32, total)
	flat := Flat{Values: values, Grads: gbuf}
	off = 0
	for _, x := range tensors {
		flat.Params = append(flat.Params, Param{Name: x.name, Shape: testShape(x.name, x.n), Value: values[off : off+x.n], Grad: gbuf[off : off+x.n]})
		off += x.n
	}
	o2, err := NewFlatAdamW(fb, cfg, flat)
	if err != nil {
		t.Fatal(err)
	}
	for step := range 4 {
		g := grads(step)
		off = 0
		for _, p := range sep {
			copy(p.Grad.(cpu.F32), g[off:])
			off += p.Value.Len()
		}
		copy(gbuf, g)
		s1, err1 := o1.Update(4)
		s2, err2 := o2.Update(4)
		if err1 != nil || err2 != nil || s1 != s2 {
			t.Fatalf("step %d: stats %+v (%v) and %+v (%v)", step, s1, err1, s2, err2)
		}
	}
	off = 0
	for i, p := range sep {
		m1, v1 := o1.Moments(i)
		m2, v2 := o2.Moments(i)
		for j, x := range cpu.Data(p.Value) {
			if values[off+j] != x || cpu.Data(m1)[j] != cpu.Data(m2)[j] || cpu.Data(v1)[j] != cpu.Data(v2)[j] {
				t.Fatalf("%s[%d]: flat %v (m %v v %v), per tensor %v (m %v v %v)", p.Name, j, values[off+j], cpu.Data(m2)[j], cpu.Data(v2)[j], x, cpu.Data(m1)[j], cpu.Data(v1)[j])
			}
		}
		off += p.Value.Len()
	}
	if cb.adamw != 4*len(tensors) || fb.adamw != 4*runs {
		t.Errorf("%d and %d kernel calls in 4 steps, want %d per tensor and %d per run", cb.adamw, fb.adamw, 4*len(tensors), 4*runs)
	}
	if _, err := NewFlatAdamW(fb, cfg, Flat{Values: make(cpu.F32, 3), Grads: make(cpu.F32, 3), Params: sep[:1]}); err == nil {
		t.Error("a group whose parameters do not fill its buffers was accepted")
	}
}
