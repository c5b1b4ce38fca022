package train

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"runtime"
	"slices"

	"github.com/rltrain/rltrain/internal/dist"
	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/model"
	"github.com/rltrain/rltrain/optim"
	"github.com/rltrain/rltrain/reward"
	"github.com/rltrain/rltrain/rollout"
	"github.com/rltrain/rltrain/train/config"
)

// Data parallelism. Every rank runs the same trainer on the same data
// stream and keeps the whole step's rollouts, rewards and advantages, so
// that everything computed over "the batch" is computed over the whole
// batch exactly as one process would; only the expensive work is split:
//   - each rank samples the completions of a contiguous share of the
//     step's prompts (whole groups; the sampler's streams are keyed by
//     global prompt index, so they are the one-process completions), and
//     every rank gathers all of them;
//   - rank 0 scores the whole batch (so stateful rewards see what they
//     would see in one process) and broadcasts the scores;
//   - reference, old-policy and value passes run on a share of the
//     sequences each and are gathered;
//   - each minibatch's groups are split across ranks; gradients are summed
//     in rank order before clipping and every rank takes the same AdamW
//     step;
//   - the update's statistics (loss, clip fractions, ...) are summed
//     across ranks.
// Rank 0 alone writes checkpoints, metrics and plots.

// stepDone, when set (by tests), is called after each RL step with the
// step's number; gradsSummed after each update's gradients are summed
// across ranks, before the optimizer step.
var (
	stepDone    func(t *Trainer, step int, s *rlStep)
	gradsSummed func(t *Trainer)
)

// world is the trainer's group of ranks.
func (t *Trainer) world() dist.Comm {
	if t.comm == nil {
		return dist.Local
	}
	return t.comm
}

// leader reports whether this rank writes files and the console log.
func (t *Trainer) leader() bool { return t.world().Rank() == 0 }

// shard returns rank's part [lo, hi) of n items split in order as evenly as
// possible.
func shard(n, rank, size int) (lo, hi int) { return n * rank / size, n * (rank + 1) / size }

// myShard is shard for this rank.
func (t *Trainer) myShard(n int) (lo, hi int) {
	w := t.world()
	return shard(n, w.Rank(), w.Size())
}

// anyRank reports whether v is true on any rank.
func (t *Trainer) anyRank(v bool) (bool, error) {
	if t.world().Size() == 1 {
		return v, nil
	}
	x := []int64{0}
	if v {
		x[0] = 1
	}
	if err := dist.AllReduceSum(t.world(), x, nil); err != nil {
		return false, err
	}
	return x[0] > 0, nil
}

// wireCompletion is a completion as ranks exchange it.
type wireCompletion struct {
	Prompt, Sample int
	IDs            []int32
	Text           string
	Logprobs       []float32
	Finish         rollout.FinishReason
}

// gatherCompletions sends this rank's completions (their Prompt relative to
// promptBase) to every rank and returns all of them, ordered by prompt then
// sample, with global prompt positions.
func (t *Trainer) gatherCompletions(mine []rollout.Completion, promptBase int) ([]rollout.Completion, error) {
	w := t.world()
	if w.Size() == 1 {
		return mine, nil
	}
	wire := make([]wireCompletion, len(mine))
	for i, c := range mine {
		wire[i] = wireCompletion{Prompt: c.Prompt + promptBase, Sample: c.Sample, IDs: c.IDs, Text: c.Text, Logprobs: c.Logprobs, Finish: c.Finish}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(wire); err != nil {
		return nil, fmt.Errorf("encode completions: %w", err)
	}
	parts, err := dist.AllGatherBytes(w, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gather completions: %w", err)
	}
	var all []rollout.Completion
	for r, p := range parts {
		var got []wireCompletion
		if err := gob.NewDecoder(bytes.NewReader(p)).Decode(&got); err != nil {
			return nil, fmt.Errorf("decode rank %d's completions: %w", r, err)
		}
		for _, c := range got {
			all = append(all, rollout.Completion{Prompt: c.Prompt, Sample: c.Sample, IDs: c.IDs, Text: c.Text, Logprobs: c.Logprobs, Finish: c.Finish})
		}
	}
	return all, nil
}

// reduceStats sums the sampler's token counts over ranks. PeakBlocks is
// each rank's own KV cache peak, a memory figure: the job reports the
// largest (each rank's peak sits in its own slot of the sum).
func (t *Trainer) reduceStats(st rollout.Stats) (rollout.Stats, error) {
	w := t.world()
	if w.Size() == 1 {
		return st, nil
	}
	const sums = 8
	v := make([]int64, sums+w.Size())
	v[0], v[1], v[2], v[3] = int64(st.Prompts), int64(st.Completions), int64(st.PrefillTokens), int64(st.GeneratedTokens)
	v[4], v[5], v[6], v[7] = int64(st.Forks), int64(st.ForkDepths), int64(st.Aborted), int64(st.Continued)
	v[sums+w.Rank()] = int64(st.PeakBlocks)
	if err := dist.AllReduceSum(w, v, nil); err != nil {
		return st, fmt.Errorf("sum rollout statistics: %w", err)
	}
	st.Prompts, st.Completions, st.PrefillTokens, st.GeneratedTokens = int(v[0]), int(v[1]), int(v[2]), int(v[3])
	st.Forks, st.ForkDepths, st.Aborted, st.Continued = int(v[4]), int(v[5]), int(v[6]), int(v[7])
	st.PeakBlocks = int(slices.Max(v[sums:]))
	return st, nil
}

// broadcastGob sends rank 0's v to every rank (v must be a pointer).
func (t *Trainer) broadcastGob(v any) error {
	w := t.world()
	if w.Size() == 1 {
		return nil
	}
	var msg []byte
	if w.Rank() == 0 {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(v); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		msg = buf.Bytes()
	}
	got, err := dist.BcastBytes(w, msg, 0)
	if err != nil {
		return err
	}
	if w.Rank() != 0 {
		return gob.NewDecoder(bytes.NewReader(got)).Decode(v)
	}
	return nil
}

// groupStarts returns the index of the first sequence of each group in
// seqs (laid out group by group) and len(seqs) at the end.
func groupStarts(seqs []*seq) []int {
	var starts []int
	for i, q := range seqs {
		if i == 0 || q.group != seqs[i-1].group {
			starts = append(starts, i)
		}
	}
	return append(starts, len(seqs))
}

// groupShard is rank's share of seqs, laid out group by group: a
// contiguous run of whole groups.
func groupShard(seqs []*seq, rank, size int) (lo, hi int) {
	starts := groupStarts(seqs)
	glo, ghi := shard(len(starts)-1, rank, size)
	return starts[glo], starts[ghi]
}

// shardedPass runs sequenceLogProbsValues over this rank's share of seqs
// (whole groups) and gathers every rank's results, so every rank gets the
// per-token log-probs (and values) of every sequence.
func (t *Trainer) shardedPass(m *model.Model, ws *model.Workspace, seqs []*seq, micro int, invTemp float32, vh *model.ValueHead) (logp, values [][]float32, err error) {
	w := t.world()
	if w.Size() == 1 {
		return sequenceLogProbsValues(m, ws, seqs, micro, invTemp, vh)
	}
	lo, hi := groupShard(seqs, w.Rank(), w.Size())
	lp, vals, err := sequenceLogProbsValues(m, ws, seqs[lo:hi], micro, invTemp, vh)
	if err != nil {
		return nil, nil, err
	}
	if logp, err = t.gatherPerToken(seqs, lp); err != nil {
		return nil, nil, fmt.Errorf("gather log-probs: %w", err)
	}
	if vh != nil {
		if values, err = t.gatherPerToken(seqs, vals); err != nil {
			return nil, nil, fmt.Errorf("gather values: %w", err)
		}
	}
	return logp, values, nil
}

// shardedLogProbs is shardedPass without values.
func (t *Trainer) shardedLogProbs(m *model.Model, ws *model.Workspace, seqs []*seq, micro int, invTemp float32) ([][]float32, error) {
	lp, _, err := t.shardedPass(m, ws, seqs, micro, invTemp, nil)
	return lp, err
}

// gatherPerToken gathers per-completion-token vectors, computed by each
// rank for its groupShard of seqs, into one slice per sequence on every
// rank.
func (t *Trainer) gatherPerToken(seqs []*seq, mine [][]float32) ([][]float32, error) {
	w := t.world()
	counts := make([]int, w.Size())
	for r := range counts {
		lo, hi := groupShard(seqs, r, w.Size())
		for _, q := range seqs[lo:hi] {
			counts[r] += 4 * q.completionLen()
		}
	}
	var flat []float32
	for _, v := range mine {
		flat = append(flat, v...)
	}
	if 4*len(flat) != counts[w.Rank()] {
		return nil, fmt.Errorf("rank %d computed %d values, %d expected", w.Rank(), len(flat), counts[w.Rank()]/4)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	all := make([]float32, total/4)
	if err := w.AllGatherV(dist.Float32Bytes(flat), dist.Float32Bytes(all), counts); err != nil {
		return nil, err
	}
	out := make([][]float32, len(seqs))
	off := 0
	for i, q := range seqs {
		n := q.completionLen()
		out[i] = all[off : off+n : off+n]
		off += n
	}
	return out, nil
}

// bucketBytes is the size gradient buckets are merged up to before their
// sum across ranks starts (PyTorch DDP's default).
const bucketBytes = 25 << 20

// gradSync sums the policy's gradients across ranks in buckets of
// consecutive layers. Armed for the last backward pass of a minibatch, it
// starts each bucket's sum as soon as the pass has finished the bucket's
// layers (model.GradReady), so sums overlap the rest of the pass; finish
// starts whatever is left, waits, and sums the value head's gradient.
// Every rank starts the same buckets in the same order: a rank with no
// backward pass in the minibatch starts them all in finish.
type gradSync struct {
	t       *Trainer
	red     *dist.Reducer
	buckets []bucket
	last    map[int]int // GradRanges index -> the bucket it completes
	started int         // buckets started in this minibatch
	grads   kernels.Buf // the trained gradients: the model's or its adapter's
	host    []float32   // the gradient buffer in host memory
	direct  bool        // host is the CPU backend's buffer itself
	armed   bool
	overlap bool // start sums during the backward pass (see overlapSums)

	// On GPUs with NCCL: buckets are summed on the device, enqueued on
	// the backend's stream as they finish, in the context onDevice sets.
	nccl     *dist.NCCL
	onDevice func(func() error) error
	err      error // the first NCCL error of the minibatch
}

// bucket is [lo, hi) of the gradient buffer.
type bucket struct{ lo, hi int }

// gradSync returns the trainer's gradient synchroniser (built with the
// trainer in a data-parallel run; a no-op otherwise).
func (t *Trainer) gradSync() *gradSync {
	if t.sync == nil {
		t.sync = &gradSync{t: t}
	}
	return t.sync
}

// newGradSync prepares the gradient sums of a data-parallel run: NCCL on
// the device for a CUDA backend when every rank can load it, else through
// host memory and MPI. Every rank calls it (it may run collectives).
func (t *Trainer) newGradSync() (*gradSync, error) {
	g := &gradSync{t: t}
	if t.world().Size() == 1 {
		return g, nil
	}
	m := t.pol.Model
	g.last = map[int]int{}
	var ranges [][2]int
	if a := m.Adapter(); a != nil {
		// A LoRA adapter's gradients are one small buffer, summed in one
		// bucket after the pass (a frozen base reports no ranges).
		a.EnableGrads()
		g.grads = a.Grads
		g.buckets = []bucket{{0, a.Grads.Len()}}
	} else {
		m.EnableGrads()
		g.grads = m.Grads
		ranges = m.GradRanges()
	}
	cur := bucket{lo: -1}
	for i, r := range ranges {
		lo, hi := r[0], r[0]+r[1]
		if cur.lo < 0 {
			cur = bucket{lo, hi}
		} else {
			// Ranges come from the end of the buffer to its start, each
			// adjacent to the previous one.
			cur.lo = lo
		}
		if 4*(cur.hi-cur.lo) >= bucketBytes || i == len(ranges)-1 {
			g.last[i] = len(g.buckets)
			g.buckets = append(g.buckets, cur)
			cur = bucket{lo: -1}
		}
	}
	if err := g.openNCCL(); err != nil {
		return nil, err
	}
	if g.nccl != nil {
		g.overlap = true // enqueued on the device's stream; the host does not wait
		return g, nil
	}
	g.red = dist.NewReducer(t.world())
	g.overlap = t.overlapSums()
	if _, ok := t.be.(*cpu.Backend); ok {
		g.host, g.direct = cpu.Data(g.grads), true
	} else {
		g.host = make([]float32, g.grads.Len())
	}
	return g, nil
}

// openNCCL sets up NCCL for a CUDA backend: on a GPU when every rank finds
// libnccl.so.2, on the emulated backend (cuda-emu) only when
// RLTRAIN_NCCL_LIB names a library (the stand-in over MPI, which treats
// the emulator's host addresses as device memory).
func (g *gradSync) openNCCL() error {
	t := g.t
	cb, ok := t.be.(*cuda.Backend)
	if !ok {
		return nil
	}
	if _, gpu := cb.DeviceInfo(); !gpu && os.Getenv(dist.NCCLLibraryEnv) == "" {
		return nil
	}
	missing, err := t.anyRank(!dist.NCCLAvailable())
	if err != nil {
		return err
	}
	if missing {
		t.logf("data parallel: NCCL (libnccl.so.2) not found on every rank; gradients are summed through host memory and MPI")
		return nil
	}
	g.onDevice = cb.OnDevice
	err = g.onDevice(func() error {
		var err error
		g.nccl, err = dist.OpenNCCL(t.world())
		return err
	})
	if err != nil {
		return fmt.Errorf("data parallel: %w", err)
	}
	t.logf("data parallel: gradients summed by %s", g.nccl)
	return nil
}

// OverlapEnv overrides when gradient sums through host memory start:
// "on" during the backward pass, "off" after it, "auto" (default).
const OverlapEnv = "RLTRAIN_GRAD_OVERLAP"

// overlapSums decides whether host-memory gradient sums start during the
// backward pass. MPI waits by polling: a sum running beside the backward
// pass takes a core from it, which pays only when the ranks on the machine
// leave a core free (on a GPU backend the host thread is idle anyway).
func (t *Trainer) overlapSums() bool {
	switch os.Getenv(OverlapEnv) {
	case "on":
		return true
	case "off":
		return false
	}
	cb, ok := t.be.(*cpu.Backend)
	if !ok {
		return true
	}
	return cb.Threads()*t.world().LocalSize() < runtime.NumCPU()
}

// arm makes the next backward pass start bucket sums as it goes.
func (g *gradSync) arm() {
	if g.t.world().Size() == 1 || !g.overlap {
		return
	}
	g.armed = true
	if g.red != nil {
		g.red.Computing(true)
	}
	g.t.pol.Model.GradReady = func(off, n int) {
		idx := g.rangeIndex(off)
		if b, ok := g.last[idx]; ok {
			for g.started <= b {
				g.start(g.started)
			}
		}
	}
}

// rangeIndex finds off among GradRanges' starts.
func (g *gradSync) rangeIndex(off int) int {
	for i, r := range g.t.pol.Model.GradRanges() {
		if r[0] == off {
			return i
		}
	}
	return -1
}

// disarm ends the armed pass.
func (g *gradSync) disarm() {
	if !g.armed {
		return
	}
	g.armed = false
	if g.red != nil {
		g.red.Computing(false)
	}
	g.t.pol.Model.GradReady = nil
}

func (g *gradSync) start(b int) {
	bk := g.buckets[b]
	g.started++
	if g.nccl != nil {
		p := uintptr(cuda.DevicePtr(g.grads)) + uintptr(4*bk.lo)
		err := g.onDevice(func() error { return g.nccl.AllReduceSum(p, p, bk.hi-bk.lo, dist.Float32, 0) })
		if err != nil && g.err == nil {
			g.err = err
		}
		return
	}
	part := g.host[bk.lo:bk.hi]
	if !g.direct {
		g.t.be.Download(part, g.t.be.View(g.grads, bk.lo, bk.hi-bk.lo))
	}
	g.red.Start(part)
}

// finish completes the minibatch's sums: every rank's gradients added in
// rank order, on every rank.
func (g *gradSync) finish() error {
	t := g.t
	if t.world().Size() == 1 {
		return nil
	}
	g.disarm()
	for g.started < len(g.buckets) {
		g.start(g.started)
	}
	g.started = 0
	if g.nccl != nil {
		return g.finishNCCL()
	}
	if err := g.red.Wait(); err != nil {
		return fmt.Errorf("sum gradients across ranks: %w", err)
	}
	if !g.direct {
		t.be.Upload(g.grads, g.host)
	}
	if t.vh != nil {
		host := make([]float32, t.vh.Grads.Len())
		t.be.Download(host, t.vh.Grads)
		if err := dist.AllReduceSum(t.world(), host, nil); err != nil {
			return fmt.Errorf("sum value-head gradients across ranks: %w", err)
		}
		t.be.Upload(t.vh.Grads, host)
	}
	return nil
}

// finishNCCL sums the value head's gradient too and waits for the device
// (under the collective watchdog: a peer that died or hangs stops NCCL).
func (g *gradSync) finishNCCL() error {
	t := g.t
	err := g.err
	g.err = nil
	if err == nil && t.vh != nil {
		p := uintptr(cuda.DevicePtr(t.vh.Grads))
		err = g.onDevice(func() error { return g.nccl.AllReduceSum(p, p, t.vh.Grads.Len(), dist.Float32, 0) })
	}
	if err == nil {
		cb := t.be.(*cuda.Backend)
		err = dist.Guard(t.world(), "NCCL all-reduce", func() error {
			if err := cb.Driver().Sync(); err != nil {
				return err
			}
			return g.nccl.AsyncError()
		})
	}
	if err != nil {
		return fmt.Errorf("sum gradients across ranks: %w", err)
	}
	return nil
}

// close releases the reducer or the NCCL communicator.
func (g *gradSync) close() {
	if g.red != nil {
		g.red.Close()
	}
	if g.nccl != nil {
		g.onDevice(g.nccl.Close)
	}
}

// stats returns and resets the time account of the sums: the time in
// all-reduces, the part of it that overlapped a backward pass, and the
// time the trainer waited for them.
func (g *gradSync) stats() dist.ReduceStats {
	if g.red == nil {
		return dist.ReduceStats{}
	}
	return g.red.Stats(true)
}

// sumFloats sums v over ranks in place.
func (t *Trainer) sumFloats(v []float64) error {
	if t.world().Size() == 1 {
		return nil
	}
	return dist.AllReduceSum(t.world(), v, nil)
}

// checkWeightsSame verifies that every rank holds the same weights (and
// value head): called before every checkpoint; a difference is fatal.
func (t *Trainer) checkWeightsSame() error {
	w := t.world()
	if w.Size() == 1 {
		return nil
	}
	var parts [][]byte
	bufs := []kernels.Buf{t.pol.Model.Params}
	if a := t.pol.Model.Adapter(); a != nil {
		bufs = append(bufs, a.Params)
	}
	for _, b := range bufs {
		host := make([]float32, b.Len())
		t.be.Download(host, b)
		parts = append(parts, dist.Float32Bytes(host))
	}
	if t.vh != nil {
		host := make([]float32, t.vh.Params.Len())
		t.be.Download(host, t.vh.Params)
		parts = append(parts, dist.Float32Bytes(host))
	}
	return dist.CheckSame(w, fmt.Sprintf("weights at step %d", t.state.Step), parts...)
}

// rankBackend adapts the backend config to this rank: the GPU at the
// rank's local index (after backend.device), and, when backend.threads is
// 0, the machine's cores shared among its ranks.
func (t *Trainer) rankBackend(c config.Backend) config.Backend {
	w := t.world()
	if w.Size() == 1 {
		return c
	}
	c.Device += w.LocalRank()
	if c.Threads == 0 {
		c.Threads = max(1, runtime.NumCPU()/max(w.LocalSize(), 1))
	}
	return c
}

// scoreAll scores the whole batch: on rank 0 only in a data-parallel run (a
// stateful reward then learns from the batch one process would give it,
// and an external scorer sees each sample once), the scores broadcast to
// every rank.
func (t *Trainer) scoreAll(ctx context.Context, samples []reward.Sample) (*reward.Result, error) {
	w := t.world()
	if w.Size() == 1 {
		return t.rewards.Score(ctx, samples)
	}
	var res *reward.Result
	var scoreErr string
	if w.Rank() == 0 {
		var err error
		if res, err = t.rewards.Score(ctx, samples); err != nil {
			scoreErr = err.Error()
		}
	}
	// The error travels too, so every rank stops on it together.
	msg := struct {
		Res *reward.Result
		Err string
	}{res, scoreErr}
	if err := t.broadcastGob(&msg); err != nil {
		return nil, fmt.Errorf("broadcast rewards: %w", err)
	}
	if msg.Err != "" {
		return nil, errors.New(msg.Err)
	}
	return msg.Res, nil
}

// minibatchShare is this rank's share of a minibatch's sequences (laid
// out group by group): a contiguous run of whole groups.
func (t *Trainer) minibatchShare(seqs []*seq) []*seq {
	w := t.world()
	if w.Size() == 1 {
		return seqs
	}
	lo, hi := groupShard(seqs, w.Rank(), w.Size())
	return seqs[lo:hi]
}

// reduceUpdateStats sums the update's statistics over ranks: the policy
// loss sums and the extra scalars (value loss, DRPO terms).
func (t *Trainer) reduceUpdateStats(pm *optim.PolicyMetrics, extra ...*float64) error {
	if t.world().Size() == 1 {
		return nil
	}
	s := pm.Sum()
	v := statsVector(&s)
	base := len(v)
	for _, e := range extra {
		v = append(v, *e)
	}
	if err := t.sumFloats(v); err != nil {
		return fmt.Errorf("sum update statistics across ranks: %w", err)
	}
	setStatsVector(&s, v[:base])
	*pm = optim.PolicyMetrics{}
	pm.Add(s)
	for i, e := range extra {
		*e = v[base+i]
	}
	return nil
}

// statsVector lists every numeric field of a PolicyLossStats (they are all
// sums over tokens or sequences), so that none is missed when one is
// added.
func statsVector(s *kernels.PolicyLossStats) []float64 {
	rv := reflect.ValueOf(s).Elem()
	var out []float64
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Float64:
			out = append(out, f.Float())
		case reflect.Int:
			out = append(out, float64(f.Int()))
		default:
			panic(fmt.Sprintf("PolicyLossStats.%s: a %s cannot be summed across ranks", rv.Type().Field(i).Name, f.Kind()))
		}
	}
	return out
}

func setStatsVector(s *kernels.PolicyLossStats, v []float64) {
	rv := reflect.ValueOf(s).Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if f.Kind() == reflect.Int {
			f.SetInt(int64(math.Round(v[i])))
		} else {
			f.SetFloat(v[i])
		}
	}
}
