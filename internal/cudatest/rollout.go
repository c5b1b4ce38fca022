package cudatest

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/rollout"
)

// launchCounter counts a driver's launches of one kernel.
type launchCounter struct {
	cuda.Driver
	kernel string
	n      int
}

func (d *launchCounter) Launch(name string, grid, block cuda.Dim3, shared int, args []uint64) error {
	if name == d.kernel {
		d.n++
	}
	return d.Driver.Launch(name, grid, block, shared, args)
}

// Rollout generates completions of tiny models with the rollout engine on
// the CPU backend and on the CUDA backend, which samples on the device
// (kernels.RowSampler: a token and a log-prob per completion leave the
// device, not its logits): greedy and seeded sampling with each filter
// must give the CPU's completions token for token, with log-probs within
// 1e-5·max(1, |log-prob|). (A token could differ only if a draw fell
// within rounding of a cumulative boundary, which these inputs do not
// produce.) A repetition penalty samples on the host: checked too.
func Rollout(t *testing.T, newDriver func() (cuda.Driver, error)) {
	samplings := []rollout.Sampling{
		{Temperature: 0, TopP: 1, RepetitionPenalty: 1},
		{Temperature: 1, TopP: 1, RepetitionPenalty: 1},
		{Temperature: 0.8, TopK: 8, TopP: 0.9, MinP: 0.02, RepetitionPenalty: 1},
		{Temperature: 1.2, TopP: 1, RepetitionPenalty: 1.3},
	}
	for _, name := range []string{"llama", "qwen3"} {
		cfg := ModelConfigs()[name]
		t.Run(name, func(t *testing.T) {
			drv, err := newDriver()
			if err != nil {
				t.Fatal(err)
			}
			counted := &launchCounter{Driver: drv, kernel: "sample_rows"}
			defer drv.Close()
			params := initParams(t, cfg, 5)
			prompts := rollout.Prompts([][]int32{{1, 5, 9, 13}, {1, 40, 3}, {1, 7, 7, 7, 7, 7, 20}})
			for si, sp := range samplings {
				rc := rollout.DefaultConfig()
				rc.Sampling, rc.GroupSize, rc.MaxNewTokens, rc.Seed, rc.KVCacheMB = sp, 4, 12, uint64(100+si), 1
				want := generate(t, cfg, cpu.New(2), params, rc, prompts)
				before := counted.n
				got := generate(t, cfg, cuda.New(counted), params, rc, prompts)
				if device := counted.n > before; device != (sp.RepetitionPenalty == 1) {
					t.Errorf("sampling %+v: sampled on the device: %v", sp, device)
				}
				if len(got) != len(want) {
					t.Fatalf("%d completions, want %d", len(got), len(want))
				}
				for i := range want {
					what := fmt.Sprintf("sampling %+v, prompt %d sample %d", sp, want[i].Prompt, want[i].Sample)
					if !slices.Equal(got[i].IDs, want[i].IDs) || got[i].Finish != want[i].Finish {
						t.Errorf("%s: cuda %v (%s), cpu %v (%s)", what, got[i].IDs, got[i].Finish, want[i].IDs, want[i].Finish)
						continue
					}
					for j, lp := range want[i].Logprobs {
						if d := math.Abs(float64(got[i].Logprobs[j] - lp)); !(d <= 1e-5*max(1, math.Abs(float64(lp)))) {
							t.Errorf("%s token %d: log-prob %v, cpu %v", what, j, got[i].Logprobs[j], lp)
						}
					}
				}
			}
		})
	}
}

func generate(t *testing.T, cfg model.Config, be kernels.Backend, params []float32, rc rollout.Config, prompts []rollout.Prompt) []rollout.Completion {
	t.Helper()
	m, err := model.New(cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	be.Upload(m.Params, params)
	e, err := rollout.New(m, rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out, _, err := e.Generate(prompts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
