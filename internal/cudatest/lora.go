package cudatest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
)

// LoRA runs each of ModelConfigs with a LoRA adapter on every projection
// (rank 3, which divides none of the widths, and rsLoRA on Qwen2) on the
// CPU backend and on the CUDA backend over a fresh driver: `steps` GRPO
// steps training the adapter alone (its log-probs, entropies and losses,
// the first step's A and B gradients, all within modelTol), and KV-cached
// decoding through the adapter.
func LoRA(t *testing.T, newDriver func() (cuda.Driver, error), steps int) {
	for name, cfg := range ModelConfigs() {
		t.Run(name, func(t *testing.T) {
			drv, err := newDriver()
			if err != nil {
				t.Fatal(err)
			}
			defer drv.Close()
			params := initParams(t, cfg, 5)
			lc := model.LoRAConfig{R: 3, Alpha: 6, RSLoRA: name == "qwen2", Targets: model.AllLinear}
			a, err := model.NewAdapter(cfg, lc, cpu.New(1))
			if err != nil {
				t.Fatal(err)
			}
			lora := &loraSetup{cfg: lc, params: make([]float32, a.NumParams())}
			r := rand.New(rand.NewPCG(6, 1))
			for i := range lora.params {
				lora.params[i] = float32(r.NormFloat64() * 0.2)
			}
			ref := runGRPOWith(t, cfg, cpu.New(2), params, lora, steps)
			got := runGRPOWith(t, cfg, cuda.New(drv), params, lora, steps)
			for k := range ref.logp {
				if e := relDiff(got.logp[k], ref.logp[k]); !(e <= modelTol) {
					t.Errorf("step %d: log-probs differ by %.3g > %.0g", k+1, e, modelTol)
				}
				if e := relDiff(got.entropy[k], ref.entropy[k]); !(e <= modelTol) {
					t.Errorf("step %d: entropies differ by %.3g > %.0g", k+1, e, modelTol)
				}
				if d := math.Abs(got.loss[k] - ref.loss[k]); !(d <= modelTol*max(1e-3, math.Abs(ref.loss[k]))) {
					t.Errorf("step %d: loss %.9g, CPU %.9g", k+1, got.loss[k], ref.loss[k])
				}
			}
			if e := relDiff(got.grads, ref.grads); !(e <= modelTol) {
				t.Errorf("first-step adapter gradients differ by %.3g > %.0g", e, modelTol)
			}
			if len(ref.loss) > 1 && ref.loss[len(ref.loss)-1] == ref.loss[0] {
				t.Errorf("the adapter's updates did not change the loss")
			}
			refLogits := runDecodeWith(t, cfg, cpu.New(2), params, lora)
			gotLogits := runDecodeWith(t, cfg, cuda.New(drv), params, lora)
			for k := range refLogits {
				if e := relDiff(gotLogits[k], refLogits[k]); !(e <= modelTol) {
					t.Errorf("decode step %d: logits differ by %.3g > %.0g", k, e, modelTol)
				}
			}
		})
	}
}
