package cuda_test

import (
	"fmt"
	"testing"

	"github.com/rltrain/rltrain/internal/cudatest"
	"github.com/rltrain/rltrain/kernels/cuda"
)

func emu() (cuda.Driver, error) { return cuda.NewEmu(), nil }

// TestKernelsMatchCPU runs every kernel on the emulated driver against the
// CPU backend.
func TestKernelsMatchCPU(t *testing.T) { cudatest.Kernels(t, emu) }

// TestModelMatchesCPU runs tiny models end to end (forward, 5 GRPO steps,
// decoding) on the emulated driver against the CPU backend.
func TestModelMatchesCPU(t *testing.T) { cudatest.Model(t, emu, 5) }

// TestLoRAMatchesCPU trains tiny models' LoRA adapters (3 GRPO steps) and
// decodes through them on the emulated driver against the CPU backend.
func TestLoRAMatchesCPU(t *testing.T) { cudatest.LoRA(t, emu, 3) }

// TestBF16 checks the bf16 building blocks on the emulated driver.
func TestBF16(t *testing.T) { cudatest.BF16(t, emu) }

// TestSampling checks device sampling on the emulated driver.
func TestSampling(t *testing.T) { cudatest.Sampling(t, emu) }

// TestRollout: the rollout engine sampling on the emulated device gives
// the CPU backend's completions token for token.
func TestRollout(t *testing.T) { cudatest.Rollout(t, emu) }

// TestModelBF16 runs tiny models with bf16 GEMM operands against the fp32
// CPU backend.
func TestModelBF16(t *testing.T) { cudatest.ModelBF16(t, emu, 5) }

// TestModelTF32 runs them with TF32 GEMMs.
func TestModelTF32(t *testing.T) { cudatest.ModelTF32(t, emu, 5) }

// auditDriver is the emulator with a check around every launch: the kernel
// may change only the allocations that hold the pointer arguments which
// writes (the table the bf16 weight cache trusts) lists for it.
type auditDriver struct {
	*cuda.Emu
	writes   map[string][]int
	launches int
	errs     []string
}

func (d *auditDriver) Launch(name string, grid, block cuda.Dim3, shared int, args []uint64) error {
	before := d.Contents()
	if err := d.Emu.Launch(name, grid, block, shared, args); err != nil {
		return err
	}
	d.launches++
	idx, ok := d.writes[name]
	if !ok {
		d.errs = append(d.errs, "kernel "+name+" is not in the table")
		return nil
	}
	allowed := map[cuda.DevPtr]bool{}
	for _, i := range idx {
		if i < len(args) {
			allowed[d.AllocationOf(cuda.DevPtr(args[i]))] = true
		}
	}
	for p, h := range d.Contents() {
		if h != before[p] && !allowed[p] {
			d.errs = append(d.errs, fmt.Sprintf("kernel %s changed the allocation at %#x, which none of its writable arguments points into", name, uint64(p)))
		}
	}
	return nil
}

// TestKernelWritesAudit runs tiny models (fp32 and bf16) with every launch
// audited: no kernel writes memory its signature does not declare
// writable, so a stamp is never missing.
func TestKernelWritesAudit(t *testing.T) {
	d := &auditDriver{Emu: cuda.NewEmu(), writes: cuda.KernelWrites()}
	open := func() (cuda.Driver, error) { return d, nil }
	cudatest.Model(t, open, 2)
	cudatest.ModelBF16(t, open, 2)
	if d.launches == 0 {
		t.Fatal("no launches audited")
	}
	for _, e := range d.errs[:min(len(d.errs), 10)] {
		t.Error(e)
	}
	t.Logf("%d launches audited", d.launches)

	// The audit itself: a table that says add writes nothing is caught.
	planted := &auditDriver{Emu: cuda.NewEmu(), writes: map[string][]int{"add": nil}}
	be := cuda.New(planted)
	x := be.Alloc(3)
	be.Upload(x, []float32{1, 2, 3})
	be.Add(x, x, x)
	if len(planted.errs) != 1 {
		t.Errorf("a kernel writing an undeclared argument gave %d audit errors, want 1: %v", len(planted.errs), planted.errs)
	}
}
