package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/model/safetensors"
)

// refTol is the largest max-relative error allowed against PyTorch in fp32.
const refTol = 1e-4

const python = "/usr/bin/python3"

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needTorch skips only where the reference interpreter is genuinely absent;
// `make setup` installs it, so CI always runs these tests.
func needTorch(t testing.TB) {
	t.Helper()
	if err := exec.Command(python, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("PyTorch reference unavailable (%v): run `make setup`", err)
	}
}

// testConfigs are the architectures checked against the reference.
func testConfigs() map[string]Config {
	base := Config{Vocab: 97, Hidden: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, FFN: 96,
		RMSEps: 1e-5, RopeTheta: 10000, MaxPositions: 128, BOS: 1, EOS: []int{2}}
	llama := base
	llama.Architecture, llama.ModelType = "LlamaForCausalLM", "llama"
	llama.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}
	qwen2 := base
	qwen2.Architecture, qwen2.ModelType = "Qwen2ForCausalLM", "qwen2"
	qwen2.AttnBias, qwen2.TieEmbeddings, qwen2.KVHeads, qwen2.RopeTheta = true, true, 1, 1e6
	qwen3 := base
	qwen3.Architecture, qwen3.ModelType = "Qwen3ForCausalLM", "qwen3"
	qwen3.QKNorm, qwen3.HeadDim, qwen3.TieEmbeddings = true, 24, true
	return map[string]Config{"llama": llama, "qwen2": qwen2, "qwen3": qwen3}
}

// randomModel initialises m and then perturbs every parameter, so norms
// and biases are not at their trivial values.
func randomModel(t testing.TB, cfg Config, seed uint64) *Model {
	t.Helper()
	m, err := New(cfg, cpu.New(2))
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(seed, 0.15)
	host := make([]float32, m.NumParams())
	m.be.Download(host, m.Params)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range host {
		host[i] += float32(r.NormFloat64() * 0.05)
	}
	m.be.Upload(m.Params, host)
	return m
}

func maxRel(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = max(den, math.Abs(float64(want[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func TestMatchesPyTorch(t *testing.T) {
	needTorch(t)
	for name, cfg := range testConfigs() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			m := randomModel(t, cfg, 7)
			if err := m.Save(filepath.Join(dir, "m"), safetensors.F32); err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			batch := Batch{B: 3, T: 11, Lens: []int{11, 7, 4}}
			ids := make([][]int32, batch.B)
			for i := range ids {
				ids[i] = make([]int32, batch.T)
				for j := range ids[i] {
					if j < batch.Lens[i] {
						ids[i][j] = int32(r.IntN(cfg.Vocab))
					}
				}
				batch.IDs = append(batch.IDs, ids[i]...)
			}
			in, _ := json.Marshal(map[string]any{"ids": ids, "lens": batch.Lens})
			inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.safetensors")
			if err := os.WriteFile(inPath, in, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(python, filepath.Join(repoRoot(t), "scripts", "torch_ref.py"), "forward",
				"--model", filepath.Join(dir, "m"), "--input", inPath, "--out", outPath, "--grads")
			cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("reference: %v\n%s", err, out)
			}
			ref, _, err := safetensors.ReadFile(outPath)
			if err != nil {
				t.Fatal(err)
			}

			ws := m.NewWorkspace()
			if _, err := m.Forward(ws, batch); err != nil {
				t.Fatal(err)
			}
			all := logits(m, ws)
			// Padding rows are undefined in the reference output (zeros);
			// compare valid rows only.
			for b := 0; b < batch.B; b++ {
				for j := batch.Lens[b]; j < batch.T; j++ {
					row := (b*batch.T + j) * cfg.Vocab
					clear(all[row : row+cfg.Vocab])
					clear(ref["logits"].Data[row : row+cfg.Vocab])
				}
			}
			if e := maxRel(all, ref["logits"].Data); e > refTol {
				t.Errorf("logits: relative error %.3g > %g", e, refTol)
			}

			targets := NextTokenTargets(batch)
			out := Output{Targets: targets, InvTemp: 1}
			logp, _, err := m.LogProbs(ws, out)
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			var loss float64
			for _, tg := range targets {
				if tg >= 0 {
					count++
				}
			}
			dlogp := make([]float32, len(logp))
			for i, tg := range targets {
				if tg >= 0 {
					loss -= float64(logp[i])
					dlogp[i] = -1 / float32(count)
				}
			}
			loss /= float64(count)
			if want := float64(ref["loss"].Data[0]); math.Abs(loss-want) > refTol*math.Abs(want) {
				t.Errorf("loss %.7g, reference %.7g", loss, want)
			}
			m.ZeroGrads()
			lossGrad(t, m, ws, out, dlogp)
			for _, g := range m.HostTensors(true) {
				want, ok := ref["grad."+g.Name]
				if !ok {
					t.Errorf("reference has no gradient for %s", g.Name)
					continue
				}
				if e := maxRel(g.Data, want.Data); e > refTol {
					t.Errorf("grad %s: relative error %.3g > %g", g.Name, e, refTol)
				}
			}
		})
	}
}
