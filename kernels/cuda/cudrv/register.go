//go:build cuda

package cudrv

import "github.com/rltrain/rltrain/kernels/cuda"

func init() {
	cuda.RegisterGPU(func(ordinal int) (cuda.Driver, error) { return Open(ordinal) })
}
