package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/rltrain/rltrain/kernels"
)

// Model holds a transformer's parameters (and, when training, their
// gradients) in one flat device buffer each, in the order of
// Config.tensorLayout, the way llm.c does: the optimizer, gradient clipping
// and checkpointing then work on a single buffer.
type Model struct {
	Cfg    Config
	be     kernels.Backend
	lay    layout
	Params kernels.Buf
	// Grads has the layout of Params; nil until EnableGrads.
	Grads kernels.Buf
	// GradReady, when not nil, is called during Backward with each range
	// [off, off+n) of Grads that the pass has finished writing, in the
	// order of GradRanges. A caller that sums gradients across processes
	// starts on a range while the pass computes the next (as PyTorch's DDP
	// does with its buckets).
	GradReady func(off, n int)
	rope      *ropeTable
	// w and dw are the typed views of Params and Grads (dw once
	// EnableGrads has run).
	w, dw weights
	// lora is the attached adapter (Attach); frozen marks a view of the
	// weights that is never trained (Base).
	lora   *Adapter
	frozen bool
	// rowInvariant computes every row of Forward as a decoding step
	// computes it (SetRowInvariant).
	rowInvariant bool
}

// frozenBase reports whether the model's own weights are frozen: an
// adapter is attached (only it trains), or m is a Base view.
func (m *Model) frozenBase() bool { return m.lora != nil || m.frozen }

// New allocates a model with zero parameters.
func New(cfg Config, be kernels.Backend) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	lay := cfg.layout()
	m := &Model{Cfg: cfg, be: be, lay: lay, Params: be.Alloc(lay.size), rope: newRopeTable(cfg)}
	m.w = lay.views(be, m.Params)
	return m, nil
}

// GradRanges partitions the parameter buffer into the ranges Backward
// finishes one after another: the final norm with an untied output layer,
// each layer from the last to the first, then the embedding (which, when
// tied, is also the output layer and so finishes last).
func (m *Model) GradRanges() [][2]int {
	l := m.lay
	out := [][2]int{{l.norm.off, l.size - l.norm.off}}
	for i := len(l.layers) - 1; i >= 0; i-- {
		end := l.norm.off
		if i+1 < len(l.layers) {
			end = l.layers[i+1].attnNorm.off
		}
		out = append(out, [2]int{l.layers[i].attnNorm.off, end - l.layers[i].attnNorm.off})
	}
	return append(out, [2]int{l.embed.off, l.embed.n})
}

// gradReady reports range i of GradRanges finished.
func (m *Model) gradReady(ranges [][2]int, i int) {
	if m.GradReady != nil && ranges != nil {
		m.GradReady(ranges[i][0], ranges[i][1])
	}
}

// Backend returns the device the model lives on.
func (m *Model) Backend() kernels.Backend { return m.be }

// Tensors lists the parameter tensors in buffer order.
func (m *Model) Tensors() []Tensor { return m.lay.tensors }

// NumParams is the number of trainable floats.
func (m *Model) NumParams() int { return m.lay.size }

// EnableGrads allocates the gradient buffer (zeroed).
func (m *Model) EnableGrads() {
	if m.Grads == nil {
		m.Grads = m.be.Alloc(m.lay.size)
		m.dw = m.lay.views(m.be, m.Grads)
	}
}

// ZeroGrads clears the gradients.
func (m *Model) ZeroGrads() {
	if m.Grads != nil {
		m.be.Zero(m.Grads)
	}
}

// InitRandom fills the parameters from seed: matrices and embeddings from
// N(0, std²), norms with 1 and biases with 0, as transformers'
// _init_weights does.
func (m *Model) InitRandom(seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	host := make([]float32, m.lay.size)
	for _, t := range m.lay.tensors {
		dst := host[t.Offset : t.Offset+t.Size()]
		switch {
		case len(t.Shape) == 2:
			for i := range dst {
				dst[i] = float32(r.NormFloat64() * std)
			}
		case isNorm(t.Name):
			for i := range dst {
				dst[i] = 1
			}
		}
	}
	m.be.Upload(m.Params, host)
}

func isNorm(name string) bool {
	n := len(name)
	return n > 11 && (name[n-11:] == "norm.weight")
}

// LMHead returns the [vocab, hidden] output matrix (the embedding matrix
// when tied).
func (m *Model) LMHead() kernels.Buf { return m.w.lmHead }

// ropeTable caches cos/sin of position·inv_freq, computed as Hugging Face
// does in float32: inv_freq rounded to float32, the angle a float32
// product, and the cosine of that float32 angle.
type ropeTable struct {
	invFreq  []float32
	posScale float32
	cos, sin []float32 // [positions, half]
}

func newRopeTable(c Config) *ropeTable {
	half := c.HeadDim / 2
	t := &ropeTable{invFreq: make([]float32, half), posScale: 1}
	for i := range half {
		t.invFreq[i] = float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim)))
	}
	if s := c.RopeScaling; s != nil {
		switch s.Type {
		case "linear":
			t.posScale = float32(1 / s.Factor)
		case "llama3":
			lowWavelen := float64(s.OriginalMaxPos) / s.LowFreqFactor
			highWavelen := float64(s.OriginalMaxPos) / s.HighFreqFactor
			for i, f := range t.invFreq {
				wavelen := 2 * math.Pi / float64(f)
				switch {
				case wavelen < highWavelen:
				case wavelen > lowWavelen:
					t.invFreq[i] = float32(float64(f) / s.Factor)
				default:
					smooth := (float64(s.OriginalMaxPos)/wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
					t.invFreq[i] = float32((1-smooth)*float64(f)/s.Factor + smooth*float64(f))
				}
			}
		}
	}
	return t
}

// ensure grows the cached table to cover positions [0, n).
func (t *ropeTable) ensure(n int) {
	half := len(t.invFreq)
	for p := len(t.cos) / half; p < n; p++ {
		pos := float32(p) * t.posScale
		for _, f := range t.invFreq {
			a := float64(pos * f)
			t.cos = append(t.cos, float32(math.Cos(a)))
			t.sin = append(t.sin, float32(math.Sin(a)))
		}
	}
}

// fill writes the rows of cos/sin for the given positions.
func (t *ropeTable) fill(cos, sin []float32, positions []int32) {
	half := len(t.invFreq)
	maxPos := int32(0)
	for _, p := range positions {
		maxPos = max(maxPos, p)
	}
	t.ensure(int(maxPos) + 1)
	for i, p := range positions {
		copy(cos[i*half:(i+1)*half], t.cos[int(p)*half:int(p+1)*half])
		copy(sin[i*half:(i+1)*half], t.sin[int(p)*half:int(p+1)*half])
	}
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
