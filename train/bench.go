package train

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/rltrain/rltrain/kernels"
)

// BenchResult is what `rltrain bench` reports.
type BenchResult struct {
	Steps                  int
	StepSeconds            float64            // mean wall time of one RL step
	Timing                 map[string]float64 // mean timing_s/* per step
	RolloutTokensPerSec    float64            // generated tokens / rollout time
	TrainTokensPerSec      float64            // tokens through forward+backward / update time
	ThroughputTokensPerSec float64            // all tokens / step time (perf/throughput)
	PeakRSSMB              float64
	GEMMPeakGFLOPS         float64 // measured on this backend
	AchievedGFLOPS         float64
	MFU                    float64 // achieved / GEMM peak
	Params                 int
	TrainableParams        int // the LoRA adapter's, or Params
	KVBytesPerToken        int
	KVCacheBytes           int64
	KVCacheBlocks          int
	KVBlockSize            int
	// Data parallel: the number of ranks (the token rates and GEMM peak
	// are the job's, summed over ranks) and the fraction of the time in
	// gradient all-reduces that overlapped a backward pass.
	WorldSize        int
	AllreduceOverlap float64
}

// Bench runs warmup untimed RL steps and then steps timed ones, without
// checkpoints or metrics files.
func (t *Trainer) Bench(ctx context.Context, warmup, steps int) (*BenchResult, error) {
	if t.state.Phase != "rl" {
		return nil, fmt.Errorf("bench: the config starts with a supervised warm-up; set sft.steps=0")
	}
	for i := 0; i < warmup; i++ {
		if _, err := t.step(ctx); err != nil {
			return nil, err
		}
		t.state.Step++
	}
	r := &BenchResult{Steps: steps, Timing: map[string]float64{}, Params: t.pol.Model.NumParams(), WorldSize: t.world().Size()}
	r.TrainableParams = r.Params
	if a := t.pol.Model.Adapter(); a != nil {
		r.TrainableParams = a.NumParams()
	}
	var gen, trainTok, allTok, rollSec, updSec, total float64
	for i := 0; i < steps; i++ {
		start := time.Now()
		st, err := t.step(ctx)
		if err != nil {
			return nil, err
		}
		m := st.metrics
		t.state.Step++
		sec := time.Since(start).Seconds()
		total += sec
		for k, v := range m {
			if len(k) > 9 && k[:9] == "timing_s/" {
				r.Timing[k] += v / float64(steps)
			}
		}
		gen += m["perf/generated_tokens"]
		allTok += m["perf/throughput"] * sec
		rollSec += m["timing_s/rollout"]
		updSec += m["timing_s/update"]
		trainTok += float64(t.trainTokens(st))
		r.AllreduceOverlap += m["perf/allreduce_overlap"] / float64(steps)
	}
	r.StepSeconds = total / float64(steps)
	if rollSec > 0 {
		r.RolloutTokensPerSec = gen / rollSec
	}
	if updSec > 0 {
		r.TrainTokensPerSec = trainTok / updSec
	}
	r.ThroughputTokensPerSec = allTok / total
	// Model FLOPs: 2·P per token forward (rollout prefill+decode and the
	// old/ref passes are forward-only), 6·P per token trained; with a LoRA
	// adapter the frozen base needs no weight gradients: 4·P per token
	// trained, plus 6 per adapter parameter.
	flops := 6*float64(r.Params)*trainTok + 2*float64(r.Params)*gen
	if r.TrainableParams != r.Params {
		flops = (4*float64(r.Params)+6*float64(r.TrainableParams))*trainTok + 2*float64(r.Params)*gen
	}
	r.AchievedGFLOPS = flops / total / 1e9
	r.GEMMPeakGFLOPS = kernels.GemmGFLOPS(t.be, 1024, 3) * float64(r.WorldSize)
	if r.GEMMPeakGFLOPS > 0 {
		r.MFU = r.AchievedGFLOPS / r.GEMMPeakGFLOPS
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		r.PeakRSSMB = float64(ru.Maxrss) / 1024
	}
	cache := t.engine.Cache()
	r.KVBytesPerToken = t.pol.Model.Cfg.KVBytesPerToken()
	r.KVCacheBytes, r.KVCacheBlocks, r.KVBlockSize = cache.Bytes(), cache.NumBlocks, cache.BlockSize
	return r, nil
}
