package optim

import (
	"fmt"
	"math"
	"path"

	"github.com/rltrain/rltrain/kernels"
)

// Param is one named trainable tensor and its gradient buffer.
type Param struct {
	Name        string
	Value, Grad kernels.Buf
	// Decay, when non-nil, says whether the tensor is decayed and
	// overrides the optim.no_decay patterns (e.g. the model's own
	// per-tensor flag).
	Decay *bool
}

// AdamW is the optimizer over a list of parameters: torch.optim.AdamW's
// update, decoupled weight decay only on parameters that no_decay does not
// match, global grad-norm clipping and the learning-rate schedule.
type AdamW struct {
	be     kernels.Backend
	cfg    Optim
	params []Param
	m, v   []kernels.Buf
	decay  []bool
	step   int
}

// NewAdamW allocates zeroed moments for every parameter.
func NewAdamW(be kernels.Backend, cfg Optim, params []Param) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &AdamW{be: be, cfg: cfg, params: params}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Name] {
			return nil, fmt.Errorf("adamw: parameter %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Value.Len() != p.Grad.Len() {
			return nil, fmt.Errorf("adamw: parameter %q has %d values but %d gradients", p.Name, p.Value.Len(), p.Grad.Len())
		}
		d, err := o.decays(p.Name)
		if err != nil {
			return nil, err
		}
		if p.Decay != nil {
			d = *p.Decay
		}
		o.decay = append(o.decay, d)
		o.m = append(o.m, be.Alloc(p.Value.Len()))
		o.v = append(o.v, be.Alloc(p.Value.Len()))
	}
	return o, nil
}

func (o *AdamW) decays(name string) (bool, error) {
	for _, pat := range o.cfg.NoDecay {
		ok, err := matchName(pat, name)
		if err != nil {
			return false, fmt.Errorf("optim.no_decay: pattern %q: %w", pat, err)
		}
		if ok {
			return false, nil
		}
	}
	return true, nil
}

// matchName reports whether a parameter name matches a no_decay glob.
func matchName(pattern, name string) (bool, error) { return path.Match(pattern, name) }

// Decays reports whether parameter i receives weight decay.
func (o *AdamW) Decays(i int) bool { return o.decay[i] }

// StepCount is the number of updates taken so far.
func (o *AdamW) StepCount() int { return o.step }

// SetStepCount restores the update count from a checkpoint.
func (o *AdamW) SetStepCount(n int) { o.step = n }

// Moments returns parameter i's first and second moment buffers, for
// checkpointing.
func (o *AdamW) Moments(i int) (m, v kernels.Buf) { return o.m[i], o.v[i] }

// Params returns the parameter list.
func (o *AdamW) Params() []Param { return o.params }

// UpdateStats are the metrics of one optimizer step.
type UpdateStats struct {
	GradNorm float64 `json:"grad_norm"` // before clipping
	LR       float64 `json:"lr"`
	Clipped  bool    `json:"-"`
}

// Update takes one optimizer step from the accumulated gradients: clips
// the global gradient norm to max_grad_norm, applies AdamW at the
// scheduled learning rate for this step (of totalSteps), and zeroes the
// gradients for the next accumulation. A non-finite gradient norm skips
// the update (and still zeroes the gradients) and is reported as an error.
func (o *AdamW) Update(totalSteps int) (UpdateStats, error) {
	grads := make([]kernels.Buf, len(o.params))
	for i, p := range o.params {
		grads[i] = p.Grad
	}
	st := UpdateStats{LR: o.cfg.LRAt(o.step, totalSteps)}
	norm, clipped := ClipGradNorm(o.be, grads, o.cfg.MaxGradNorm)
	st.GradNorm, st.Clipped = norm, clipped
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		o.ZeroGrad()
		return st, fmt.Errorf("adamw: gradient norm is %v at step %d; update skipped", norm, o.step+1)
	}
	o.Step(st.LR)
	o.ZeroGrad()
	return st, nil
}

// Step applies one AdamW update at learning rate lr without clipping.
func (o *AdamW) Step(lr float64) {
	o.step++
	for i, p := range o.params {
		wd := 0.0
		if o.decay[i] {
			wd = o.cfg.WeightDecay
		}
		o.be.AdamW(p.Value, p.Grad, o.m[i], o.v[i], p.Value.Len(), kernels.AdamWParams{
			LR: float32(lr), Beta1: float32(o.cfg.Betas[0]), Beta2: float32(o.cfg.Betas[1]),
			Eps: float32(o.cfg.Eps), WeightDecay: float32(wd), Step: o.step,
		})
	}
}

// Free releases the moment buffers; the optimizer is unusable afterwards.
func (o *AdamW) Free() {
	for i := range o.m {
		o.be.Free(o.m[i])
		o.be.Free(o.v[i])
	}
	o.m, o.v = nil, nil
}

// ZeroGrad clears every gradient buffer.
func (o *AdamW) ZeroGrad() {
	for _, p := range o.params {
		o.be.Zero(p.Grad)
	}
}

// ClipGradNorm computes the global L2 norm of grads and, when maxNorm > 0
// and the norm exceeds it, scales every gradient by maxNorm/(norm + 1e-6)
// (torch.nn.utils.clip_grad_norm_). It returns the norm before clipping.
func ClipGradNorm(be kernels.Optim, grads []kernels.Buf, maxNorm float64) (norm float64, clipped bool) {
	var ss float64
	for _, g := range grads {
		ss += be.SumSquares(g)
	}
	norm = math.Sqrt(ss)
	if maxNorm <= 0 || !(norm > maxNorm) || math.IsInf(norm, 0) {
		return norm, false
	}
	s := float32(maxNorm / (norm + 1e-6))
	for _, g := range grads {
		be.Scale(g, s)
	}
	return norm, true
}

// LRAt is the learning rate of the update with 0-based index step out of
// total: a linear warm-up reaching LR at step warmup_steps−1, then constant,
// linear or cosine decay to min_lr_ratio·LR at the last step.
func (o Optim) LRAt(step, total int) float64 {
	if step < o.WarmupSteps {
		return o.LR * float64(step+1) / float64(o.WarmupSteps)
	}
	if o.Schedule == "constant" || o.Schedule == "" {
		return o.LR
	}
	span := total - 1 - o.WarmupSteps
	p := 1.0
	if span > 0 {
		p = math.Min(1, float64(step-o.WarmupSteps)/float64(span))
	}
	floor := o.MinLRRatio
	var f float64
	switch o.Schedule {
	case "linear":
		f = 1 - p
	case "cosine":
		f = 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return o.LR * (floor + (1-floor)*f)
}
