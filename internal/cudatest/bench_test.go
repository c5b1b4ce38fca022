package cudatest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rltrain/rltrain/kernels/cuda"
)

// The benchmark harness runs on the emulator at a tiny shape, so that
// scripts/gpu-ci.sh's first run on a GPU does not fail on a harness bug.
func TestBenchHarnessOnEmulator(t *testing.T) {
	cfg := ModelConfigs()["qwen2"]
	res, err := BenchKernels(cuda.NewEmu(), ShapeOf(cfg, 24, 12), H100, 1)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteResults(&out, "tiny", res)
	for _, r := range res {
		if !(r.Seconds > 0) || !(r.Floor > 0) {
			t.Errorf("%s: time %v, floor %v", r.Name, r.Seconds, r.Floor)
		}
	}
	rep := &BenchReport{Device: "emulator", FloorsFor: H100.Name}
	rep.AddKernels(res)
	for _, prec := range []cuda.Precision{cuda.PrecisionFP32, cuda.PrecisionBF16} {
		mb, err := BenchModel(cuda.NewEmu(), cfg, H100, prec, 2, 8, 3, 4, 2)
		if err != nil {
			t.Fatal(err)
		}
		rep.AddModel(mb)
		WriteModelBench(&out, "tiny", mb)
		if !(mb.DecodeTokensPS > 0) || !(mb.MFU > 0) || mb.Precision != prec {
			t.Errorf("%s: incomplete model measurement %+v", prec, mb)
		}
	}
	if !strings.Contains(out.String(), "attention_backward") || !strings.Contains(out.String(), "bf16 GEMMs") {
		t.Errorf("incomplete report:\n%s", out.String())
	}
	// bench-gpu.json: what scripts/bench_compare reads.
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Device  string
		Metrics []struct {
			Name, Better string
			Value        float64
		}
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range back.Metrics {
		if names[m.Name] || !(m.Value > 0) || (m.Better != "lower" && m.Better != "higher") {
			t.Errorf("bad metric %+v", m)
		}
		names[m.Name] = true
	}
	for _, want := range []string{"kernel/attention_backward/seconds", "model/bf16/mfu", "model/fp32/decode_tokens_per_s", "model/fp32/train_step_seconds"} {
		if !names[want] {
			t.Errorf("bench-gpu.json lacks %s:\n%s", want, js.String())
		}
	}
}

// Floors of the 0.5B model's kernels on an H100, printed with -v: the
// numbers a first GPU run is compared with.
func TestFloorsQwen05B(t *testing.T) {
	res, err := BenchKernels(nil, ShapeOf(Qwen05B(), 4096, 1024), H100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteResults(&out, "Qwen2.5-0.5B shapes, 4096 tokens (4×1024), floors on "+H100.Name, res)
	t.Log("\n" + out.String())
	for _, r := range res {
		if !(r.Floor > 0) {
			t.Errorf("%s: floor %v", r.Name, r.Floor)
		}
	}
}
