package train

import (
	"fmt"
	"strings"

	"github.com/rltrain/rltrain/kernels/cuda"
	"github.com/rltrain/rltrain/kernels/cuda/cudrv"
)

// stopped is Run's last word on an error that ends the run: a device error
// (the CUDA backend panics with *cuda.DeviceError: a kernel fault, out of
// memory, a failed cuBLAS call) becomes an error like any other, and every
// such error says which checkpoint is intact, so that --resume continues
// from it. Checkpoints are written only from healthy weights and complete
// atomically, so the newest complete one is the last good one. A panic
// that is not a device error is a bug and is not hidden.
func (t *Trainer) stopped(r any, err error) error {
	if r != nil {
		de, ok := r.(*cuda.DeviceError)
		if !ok {
			panic(r)
		}
		err = fmt.Errorf("step %d: device error: %w", t.state.Step+1, de)
		if cudrv.OutOfMemory(de) {
			err = fmt.Errorf("%w (the GPU is out of memory: lower train.micro_batch_size or rollout.batch_size)", err)
		}
	}
	if err == nil || strings.Contains(err.Error(), "last good checkpoint") {
		return err
	}
	return fmt.Errorf("%w; %s", err, t.lastGood())
}

func (t *Trainer) lastGood() string {
	dir, err := LatestCheckpoint(t.ckptDir)
	if err != nil || dir == "" {
		return "no checkpoint has been written yet"
	}
	return "the last good checkpoint is " + dir + " (continue from it with --resume)"
}
