package main

import (
	"github.com/spf13/pflag"

	"github.com/rltrain/rltrain/kernels"
	"github.com/rltrain/rltrain/train"
	"github.com/rltrain/rltrain/train/config"
)

// deviceFlags choose the backend of the commands that load a model without
// a config (generate, logprobs, model): --backend, --device and
// --precision mean what the config's backend section does.
type deviceFlags struct {
	typ, precision string
	device         int
}

func (d *deviceFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&d.typ, "backend", "cpu", "compute backend: cpu, cuda (an NVIDIA GPU) or cuda-emu (the CUDA kernels on the CPU emulator)")
	fl.IntVar(&d.device, "device", 0, "CUDA device index (--backend cuda)")
	fl.StringVar(&d.precision, "precision", "fp32", "GEMM precision of the CUDA backends: fp32 or bf16")
}

// open returns the backend, with threads CPU threads for --backend cpu.
func (d deviceFlags) open(threads int) (kernels.Backend, error) {
	return train.NewBackend(config.Backend{Type: d.typ, Threads: threads, Device: d.device, Precision: d.precision})
}
