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
	// Shape decides weight decay: as nanoGPT does, AdamW decays the
	// tensors of two or more dimensions (the matrices of matmuls and
	// embeddings), never norms and biases, except those whose Name an
	// optim.no_decay pattern matches.
	Shape []int
}

// Flat is a list of parameters stored back to back, in order, in one value
// buffer and one gradient buffer (a model's Params and Grads, as llm.c lays
// them out): Params[i].Value and .Grad are the views of the buffers that
// follow Params[i−1]'s.
type Flat struct {
	Values, Grads kernels.Buf
	Params        []Param
}

// AdamW is the optimizer over a list of parameters: torch.optim.AdamW's
// update, decoupled weight decay on the tensors of two or more dimensions
// that no_decay does not match, global grad-norm clipping and the
// learning-rate schedule. The moments are stored like the parameters, and
// each run of consecutive parameters of a Flat group that share a
// weight-decay flag is updated by one kernel call (the update of an
// element depends only on that flag and the step's scalars, so this is the
// same arithmetic as one call per tensor).
type AdamW struct {
	be     kernels.Backend
	cfg    Optim
	params []Param
	m, v   []kernels.Buf // views of the groups' moments, per parameter
	groups []group
	step   int
}

// group is one Flat group's buffers and its runs of equal decay.
type group struct {
	values, grads, m, v kernels.Buf
	runs                []decayRun
}

// decayRun is a range of a group's floats with one weight-decay flag.
type decayRun struct {
	off, n int
	decay  bool
}

// NewAdamW allocates zeroed moments for every parameter; each parameter is
// its own group.
func NewAdamW(be kernels.Backend, cfg Optim, params []Param) (*AdamW, error) {
	groups := make([]Flat, len(params))
	for i, p := range params {
		groups[i] = Flat{Values: p.Value, Grads: p.Grad, Params: params[i : i+1]}
	}
	return NewFlatAdamW(be, cfg, groups...)
}

// NewFlatAdamW allocates zeroed moments for parameters stored back to back
// in each group.
func NewFlatAdamW(be kernels.Backend, cfg Optim, groups ...Flat) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &AdamW{be: be, cfg: cfg}
	seen := map[string]bool{}
	for _, f := range groups {
		g := group{values: f.Values, grads: f.Grads}
		size := 0
		for _, p := range f.Params {
			if seen[p.Name] {
				return nil, fmt.Errorf("adamw: parameter %q listed twice", p.Name)
			}
			seen[p.Name] = true
			if p.Value.Len() != p.Grad.Len() {
				return nil, fmt.Errorf("adamw: parameter %q has %d values but %d gradients", p.Name, p.Value.Len(), p.Grad.Len())
			}
			d, err := o.decays(p)
			if err != nil {
				return nil, err
			}
			// Without weight decay every run is alike: one call per group.
			d = d && cfg.WeightDecay != 0
			n := p.Value.Len()
			if k := len(g.runs) - 1; k >= 0 && g.runs[k].decay == d {
				g.runs[k].n += n
			} else {
				g.runs = append(g.runs, decayRun{off: size, n: n, decay: d})
			}
			size += n
			o.params = append(o.params, p)
		}
		if f.Values.Len() != size || f.Grads.Len() != size {
			return nil, fmt.Errorf("adamw: a group of %d parameter floats in buffers of %d values and %d gradients", size, f.Values.Len(), f.Grads.Len())
		}
		g.m, g.v = be.Alloc(size), be.Alloc(size)
		off := 0
		for _, p := range f.Params {
			n := p.Value.Len()
			o.m = append(o.m, be.View(g.m, off, n))
			o.v = append(o.v, be.View(g.v, off, n))
			off += n
		}
		o.groups = append(o.groups, g)
	}
	return o, nil
}

// decays applies the weight-decay rule to p (see Param.Shape).
func (o *AdamW) decays(p Param) (bool, error) {
	if len(p.Shape) < 2 {
		return false, nil
	}
	for _, pat := range o.cfg.NoDecay {
		ok, err := matchName(pat, p.Name)
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

// Step applies one AdamW update at learning rate lr without clipping: one
// kernel call per run of equal weight decay. The Hugging Face layout
// interleaves decayed matrices with undecayed norms and biases (two runs
// or more per layer); a single launch would need a per-range decay table
// in the kernel, for a launch overhead measured in microseconds per run.
// Without weight decay it is one call per parameter group.
func (o *AdamW) Step(lr float64) {
	o.step++
	be := o.be
	for _, g := range o.groups {
		for _, r := range g.runs {
			wd := 0.0
			if r.decay {
				wd = o.cfg.WeightDecay
			}
			be.AdamW(be.View(g.values, r.off, r.n), be.View(g.grads, r.off, r.n), be.View(g.m, r.off, r.n), be.View(g.v, r.off, r.n), r.n, kernels.AdamWParams{
				LR: float32(lr), Beta1: float32(o.cfg.Betas[0]), Beta2: float32(o.cfg.Betas[1]),
				Eps: float32(o.cfg.Eps), WeightDecay: float32(wd), Step: o.step,
			})
		}
	}
}

// Free releases the moment buffers; the optimizer is unusable afterwards.
func (o *AdamW) Free() {
	for _, g := range o.groups {
		o.be.Free(g.m)
		o.be.Free(g.v)
	}
	o.groups, o.m, o.v = nil, nil, nil
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
